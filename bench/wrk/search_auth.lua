-- wrk script: FHIR search with authentication. GET /Patient?family=<random surname of the 50 used by
-- load_patients.py>, with `Authorization: Bearer $BEARER` when BEARER is set and not empty (without it,
-- the same requests as search.lua). Used by bench/check.
local families = {"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
  "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood",
  "Jackson", "Clarke", "Patel", "Khan", "Lewis", "James", "Phillips", "Mason", "Mitchell", "Rose",
  "Davis", "Rodriguez", "Cox", "Alexander", "Morgan", "Moore", "Mills", "King", "Begum", "Hughes",
  "Martin", "Edwards", "Hill", "Shaw", "Chalmers", "Turner", "Lee", "Ward", "Baker", "Harris",
  "Cooper", "Allen"}
local prefix = os.getenv("FHIR_PREFIX") or ""
local bearer = os.getenv("BEARER") or ""
function init(args)
  math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0))
end
wrk.headers["Accept"] = "application/fhir+json"
if #bearer > 0 then wrk.headers["Authorization"] = "Bearer " .. bearer end
function request()
  return wrk.format("GET", prefix .. "/Patient?family=" .. families[math.random(#families)])
end

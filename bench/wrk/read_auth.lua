-- wrk script: FHIR read with authentication. GET /Patient/{id} for random ids from the file $IDS_FILE
-- (one id per line), with `Authorization: Bearer $BEARER` when BEARER is set and not empty (without it,
-- the same requests as read.lua). Used by bench/security.sh.
local path = os.getenv("IDS_FILE") or "results/ids.txt"
local ids = {}
for line in io.lines(path) do
  if #line > 0 then ids[#ids + 1] = line end
end
assert(#ids > 0, "no ids in " .. path)
local prefix = os.getenv("FHIR_PREFIX") or ""
local bearer = os.getenv("BEARER") or ""
function init(args)
  math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0))
end
wrk.headers["Accept"] = "application/fhir+json"
if #bearer > 0 then wrk.headers["Authorization"] = "Bearer " .. bearer end
function request()
  return wrk.format("GET", prefix .. "/Patient/" .. ids[math.random(#ids)])
end

-- wrk script: FHIR create of a new patient each time. POST /Patient with data/patient.json (id and meta
-- removed, ~600 B), its NHS number and MRN replaced per request by values no other request of the run
-- uses: the gateway keeps one Patient per identifier (docs/security.md), so the same body twice is a 409,
-- not a create. The NHS numbers carry a valid Modulus 11 check digit, so a profile that checks them (the
-- partnership Patient profile of samples/gateway.json) accepts the body.
-- env: PATIENT_JSON (path to the Patient JSON; default ../../data/patient.json relative to cwd);
--      BEARER (sent as `Authorization: Bearer ...` when set and not empty);
--      NHS_TAG (0-98: the run's tag in the NHS numbers; default the run's start second mod 99).
local path = os.getenv("PATIENT_JSON") or "data/patient.json"
local f = assert(io.open(path, "rb"))
local template = f:read("*a"):gsub("%s+$", "")
f:close()
template = template:gsub('"id":"[^"]*",', '', 1):gsub('"meta":{[^}]*},', '', 1)
template = template:gsub('"value":"9434765919"', '"value":"NHS@"', 1):gsub('"value":"RX1%-0042731"', '"value":"MRN@"', 1)
local prefix = (os.getenv("FHIR_PREFIX") or "") .. "/Patient"
local headers = {["Content-Type"] = "application/fhir+json", ["Accept"] = "application/fhir+json"}
local bearer = os.getenv("BEARER") or ""
if #bearer > 0 then headers["Authorization"] = "Bearer " .. bearer end
-- NHS numbers are 9 <tag, 2 digits> <thread, 1 digit> <counter, 5 digits> <check digit>, a stem whose check
-- digit would be 10 being skipped; MRNs carry the full start time (and NHS_TAG when set). Runs of one bench
-- on one database start seconds apart (or get their own NHS_TAG), so no two requests share either. The tag
-- stops at 98: 999 is the range of load_patients.py's Patients.
local counter = 0
local threads = 0
local run = os.time()
local run_tag = tonumber(os.getenv("NHS_TAG") or "") or run % 99
assert(run_tag >= 0 and run_tag <= 98, "NHS_TAG must be 0-98")

function setup(thread)
  threads = threads + 1
  thread:set("stem_prefix", string.format("9%02d%d", run_tag, threads % 10))
  thread:set("long_tag", string.format("%d-%d-%d", run, run_tag, threads))
end

local function nhs_number(stem)  -- 9 digits -> 10 with the Modulus 11 check digit, or nil when it is 10
  local sum = 0
  for i = 1, 9 do sum = sum + tonumber(stem:sub(i, i)) * (11 - i) end
  local check = (11 - sum % 11) % 11
  if check == 10 then return nil end
  return stem .. check
end

function request()
  local nhs
  repeat
    counter = counter + 1
    nhs = nhs_number(stem_prefix .. string.format("%05d", counter % 100000))
  until nhs
  local body = template:gsub("NHS@", nhs, 1):gsub("MRN@", "B-" .. long_tag .. "-" .. counter, 1)
  return wrk.format("POST", prefix, headers, body)
end

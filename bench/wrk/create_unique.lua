-- wrk script: FHIR create of a new patient each time. POST /Patient with data/patient.json (id and meta
-- removed, ~600 B), its NHS number and MRN replaced per request by values no other request of the run
-- uses: the gateway keeps one Patient per identifier (docs/security.md), so the same body twice is a 409,
-- not a create.
-- env: PATIENT_JSON (path to the Patient JSON; default ../../data/patient.json relative to cwd)
local path = os.getenv("PATIENT_JSON") or "data/patient.json"
local f = assert(io.open(path, "rb"))
local template = f:read("*a"):gsub("%s+$", "")
f:close()
template = template:gsub('"id":"[^"]*",', '', 1):gsub('"meta":{[^}]*},', '', 1)
template = template:gsub('"value":"9434765919"', '"value":"NHS@"', 1):gsub('"value":"RX1%-0042731"', '"value":"MRN@"', 1)
local prefix = (os.getenv("FHIR_PREFIX") or "") .. "/Patient"
local headers = {["Content-Type"] = "application/fhir+json", ["Accept"] = "application/fhir+json"}
-- Each run (one wrk process) starts at its own second, each thread has its own digit: NHS numbers are
-- 9 <second mod 1000> <thread> <counter>, MRNs the same with the full time, so no two requests of a bench
-- (runs seconds apart, on one database) share either.
local counter = 0
local threads = 0
local run = os.time()

function setup(thread)
  threads = threads + 1
  thread:set("tag", string.format("%03d%d", run % 1000, threads % 10))
  thread:set("long_tag", string.format("%d-%d", run, threads))
end

function request()
  counter = counter + 1
  local body = template:gsub("NHS@", "9" .. tag .. string.format("%05d", counter % 100000), 1)
                       :gsub("MRN@", "B-" .. long_tag .. "-" .. counter, 1)
  return wrk.format("POST", prefix, headers, body)
end

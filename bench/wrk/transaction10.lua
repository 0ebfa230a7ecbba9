-- wrk script: FHIR transaction of 10 entries. POST / with a transaction Bundle of 5 new Patients
-- (urn:uuid fullUrls) and 5 Consents referring to them, the resource shapes bench/bundles.sh builds
-- (~4.2 KB). Each Patient carries an NHS number no other Patient of the run uses: the gateway keeps one
-- Patient per identifier (docs/security.md), so the same Patient twice is a 409 and fails the whole
-- transaction. The NHS numbers carry a valid Modulus 11 check digit, so the partnership Patient profile
-- (which checks them) accepts the body. Used by bench/batches.sh.
-- env: BEARER (sent as `Authorization: Bearer ...` when set and not empty);
--      NHS_TAG (0-98: the run's tag in the NHS numbers; default the run's start second mod 99).
local prefix = os.getenv("FHIR_PREFIX") or ""
local headers = {["Content-Type"] = "application/fhir+json", ["Accept"] = "application/fhir+json"}
local bearer = os.getenv("BEARER") or ""
if #bearer > 0 then headers["Authorization"] = "Bearer " .. bearer end
-- NHS numbers are 9 <tag, 2 digits> <thread, 1 digit> <counter, 5 digits> <check digit>, a stem whose check
-- digit would be 10 being skipped: about 90,000 numbers (18,000 Bundles) per thread and tag. Runs of one
-- bench on one database get their own NHS_TAG (or start seconds apart), so no two Patients share one; a
-- thread that runs out of counter stops with an error rather than reuse a number. The tag stops at 98: 999
-- is the range of load_patients.py's Patients. The urn:uuid fullUrls are made of the same tag, thread and
-- counter, so they are unique too (they need only be unique within their Bundle).
local PER_BUNDLE = 5
local counter = 0
local threads = 0
local run = os.time()
local run_tag = tonumber(os.getenv("NHS_TAG") or "") or run % 99
assert(run_tag >= 0 and run_tag <= 98, "NHS_TAG must be 0-98")

function setup(thread)
  threads = threads + 1
  assert(threads <= 10, "transaction10.lua: at most 10 wrk threads (one digit of the NHS number each)")
  thread:set("stem_prefix", string.format("9%02d%d", run_tag, threads % 10))
  thread:set("uuid_tag", string.format("%02d%d", run_tag, threads % 10))
end

local function nhs_number(stem)  -- 9 digits -> 10 with the Modulus 11 check digit, or nil when it is 10
  local sum = 0
  for i = 1, 9 do sum = sum + tonumber(stem:sub(i, i)) * (11 - i) end
  local check = (11 - sum % 11) % 11
  if check == 10 then return nil end
  return stem .. check
end

local function next_nhs()
  local nhs
  repeat
    counter = counter + 1
    assert(counter < 100000, "transaction10.lua: this thread ran out of NHS numbers for NHS_TAG " .. run_tag)
    nhs = nhs_number(stem_prefix .. string.format("%05d", counter))
  until nhs
  return nhs
end

local PATIENT = '{"fullUrl":"%s","resource":{"resourceType":"Patient",' ..
  '"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"%s"}],' ..
  '"name":[{"family":"Bench","given":["Load"]}],"gender":"female","birthDate":"1970-01-01"},' ..
  '"request":{"method":"POST","url":"Patient"}}'
local CONSENT = '{"resource":{"resourceType":"Consent","status":"active",' ..
  '"scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},' ..
  '"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],' ..
  '"patient":{"reference":"%s"},"dateTime":"2026-01-01",' ..
  '"policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},' ..
  '"provision":{"type":"permit"}},"request":{"method":"POST","url":"Consent"}}'

function request()
  local entries = {}
  for _ = 1, PER_BUNDLE do
    local nhs = next_nhs()
    local full_url = string.format("urn:uuid:b5a7c000-%s0-4000-8000-%012d", uuid_tag, counter)
    entries[#entries + 1] = string.format(PATIENT, full_url, nhs)
    entries[#entries + 1] = string.format(CONSENT, full_url)
  end
  local body = '{"resourceType":"Bundle","type":"transaction","entry":[' .. table.concat(entries, ",") .. "]}"
  return wrk.format("POST", prefix .. "/", headers, body)
end

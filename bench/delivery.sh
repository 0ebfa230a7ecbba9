#!/usr/bin/env bash
# fhirgate delivery bench: deliveries/s to a local HTTP partner (bench/delivery_sink.cpp, answers 200).
# Security on: every delivery is checked against the receiver's consent and audited. PATIENTS Patients
# (each with a Consent permitting the receiver) are written by gp-practice in transactions of 500
# entries while the partner is down (so the outbox fills; the first attempts fail and back off), then the
# partner starts and the clock runs until no delivery is pending (backoff is capped at 100 ms so that
# waiting for retry timers does not dominate). Target (issue 8): >= 5,000 deliveries/s.
#
#   bash bench/delivery.sh        (PATIENTS=5000; FHIRGATE_BIN to use another binary)
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
RESULTS="$BENCH/results"
PATIENTS="${PATIENTS:-5000}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
SINK_PORT="${SINK_PORT:-18099}"
mkdir -p "$RESULTS"
exec > >(tee "$RESULTS/delivery_run.log") 2>&1
. "$BENCH/lib.sh"
bench_tmpdir fhirgate-delivery

build_release fhirgate delivery_sink
SINK="$ROOT/build-release/bench/delivery_sink"
echo "== fhirgate delivery bench $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs: $PATIENTS deliveries"

CFG="$TMPD/gateway.json"
cat > "$CFG" <<JSON
{ "security": {"enabled": true, "consentPolicy": "opt-in"},
  "server": {"bodyLimitBytes": 67108864, "threads": 2},
  "profilesDir": "$ROOT/profiles",
  "cachedTypes": ["Patient", "Consent", "AuditEvent", "Organization"],
  "partners": [
    {"id": "gp-practice", "name": "Riverside Medical Practice", "odsCode": "Y12345", "consentRegistrar": true,
     "access": {"Patient": ["create"], "Consent": ["create"]}, "inbound": ["fhir-rest"]},
    {"id": "acute-trust", "name": "Northfield Hospitals NHS Trust", "odsCode": "RX1",
     "endpoint": {"fhirBaseUrl": "http://127.0.0.1:$SINK_PORT/fhir", "timeoutMs": 2000}}],
  "roles": [{"id": "operator", "name": "Operations", "role": "operator", "access": {}}],
  "routes": [{"id": "patients", "from": "gp-practice", "types": ["Patient"], "to": ["acute-trust"]}],
  "delivery": {"maxAttempts": 1000, "baseDelayMs": 50, "maxDelayMs": 100} }
JSON
GP="$("$BIN" partner add-token gp-practice --config "$CFG" --db "$TMPD/bench.db" | tail -1)"
OPS="$("$BIN" partner add-token operator --config "$CFG" --db "$TMPD/bench.db" | tail -1)"
serve_gateway "$CFG" "$TMPD/bench.db"

python3 - "$URL" "$GP" "$OPS" "$PATIENTS" "$SINK" "$SINK_PORT" <<'PY'
import json, subprocess, sys, time, urllib.request, uuid
url, gp, ops, patients, sink, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
def call(method, path, token, body=None):
    req = urllib.request.Request(url + path, data=body, method=method, headers={
        "Authorization": "Bearer " + token, "Content-Type": "application/fhir+json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read())
t0 = time.perf_counter()
for start in range(0, patients, 250):
    entries = []
    for i in range(start, min(patients, start + 250)):
        u = "urn:uuid:" + str(uuid.uuid4())
        entries.append({"fullUrl": u, "resource": {"resourceType": "Patient", "name": [{"family": "Routed"}],
                        "gender": "female"}, "request": {"method": "POST", "url": "Patient"}})
        entries.append({"resource": {"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": u}, "dateTime": "2026-01-01",
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": {"type": "permit", "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                          "reference": {"reference": "Organization/acute-trust"}}]}},
            "request": {"method": "POST", "url": "Consent"}})
    call("POST", "/", gp, json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}).encode())
print(f"   loaded {patients} Patients with Consents in {time.perf_counter() - t0:.1f} s (partner down)")
time.sleep(1.5)  # let every first attempt fail and back off
proc = subprocess.Popen([sink, port], stdout=subprocess.PIPE, text=True)
t0 = time.perf_counter()
while True:
    pending = call("GET", "/_ops/deliveries?status=pending&_count=1", ops)["deliveries"]
    if not pending:
        break
    time.sleep(0.05)
dt = time.perf_counter() - t0
proc.terminate()
received = int(proc.communicate(timeout=10)[0].strip() or 0)
delivered = len(call("GET", "/_ops/deliveries?status=delivered&_count=1000", ops)["deliveries"])
print(f"   {patients} deliveries done in {dt:.2f} s = {patients / dt:.0f} deliveries/s "
      f"(partner received {received}; first page of delivered rows: {delivered}) (target >= 5000)")
PY

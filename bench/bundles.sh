#!/usr/bin/env bash
# fhirgate transaction bench: RUNS transaction Bundles of ENTRIES entries (half Patients with urn:uuid
# fullUrls, half Consents referring to them), POSTed to / as gp-practice with security on (agreement check,
# supplier tags, an AuditEvent per entry) and the partnership profiles enforced. Each Bundle is one SQLite
# transaction. Reports seconds and resources/s per Bundle and the median. Target (issue 8): >= 20,000
# resources/s.
#
#   bash bench/bundles.sh        (ENTRIES=1000 RUNS=5; FHIRGATE_BIN to use another binary; PERF=1 to profile)
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
RESULTS="$BENCH/results"
ENTRIES="${ENTRIES:-1000}"
RUNS="${RUNS:-5}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
mkdir -p "$RESULTS"
exec > >(tee "$RESULTS/bundles_run.log") 2>&1
. "$BENCH/lib.sh"
bench_tmpdir fhirgate-bundles

build_release fhirgate
echo "== fhirgate transaction bench $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs: $RUNS x $ENTRIES entries"
CFG="$TMPD/gateway.json"
cat > "$CFG" <<JSON
{ "security": {"enabled": true, "consentPolicy": "opt-in"},
  "server": {"bodyLimitBytes": 67108864, "threads": 2},
  "profilesDir": "$ROOT/profiles",
  "profiles": {"Patient": ["https://fhir.partnership.example/StructureDefinition/partnership-patient"],
               "Consent": ["https://fhir.partnership.example/StructureDefinition/partnership-consent"]},
  "cachedTypes": ["Patient", "Consent", "AuditEvent", "Organization"],
  "partners": [{"id": "gp-practice", "name": "Riverside Medical Practice", "odsCode": "Y12345", "consentRegistrar": true,
    "access": {"Patient": ["create", "read"], "Consent": ["create", "read"]}, "inbound": ["fhir-rest"]}] }
JSON
TOKEN="$("$BIN" partner add-token gp-practice --config "$CFG" --db "$TMPD/bench.db" | tail -1)"
serve_gateway "$CFG" "$TMPD/bench.db"
if [ -n "${PERF:-}" ]; then perf record -g -o "$RESULTS/bundles.perf" -p "$PID" 2>/dev/null & PERF_PID=$!; fi

python3 - "$URL" "$TOKEN" "$ENTRIES" "$RUNS" <<'PY'
import json, sys, time, urllib.request, uuid, statistics
url, token, entries, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def nhs(stem):
    s = sum(int(d) * (10 - i) for i, d in enumerate(stem)); c = 11 - s % 11
    return None if c == 10 else stem + str(0 if c == 11 else c)
stem = 800000000
def bundle():
    global stem
    out = []
    for _ in range(entries // 2):
        while True:
            stem += 1
            v = nhs(str(stem))
            if v: break
        u = "urn:uuid:" + str(uuid.uuid4())
        out.append({"fullUrl": u, "resource": {"resourceType": "Patient",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": v}],
            "name": [{"family": "Bench", "given": ["Load"]}], "gender": "female", "birthDate": "1970-01-01"},
            "request": {"method": "POST", "url": "Patient"}})
        out.append({"resource": {"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": u}, "dateTime": "2026-01-01",
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": {"type": "permit"}}, "request": {"method": "POST", "url": "Consent"}})
    return json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": out}).encode()
rates = []
for i in range(runs):
    body = bundle()
    req = urllib.request.Request(url + "/", data=body, method="POST", headers={
        "Authorization": "Bearer " + token, "Content-Type": "application/fhir+json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        reply = json.loads(r.read())
        status = r.status
    dt = time.perf_counter() - t0
    created = sum(1 for e in reply.get("entry", []) if e["response"]["status"].startswith("201"))
    rates.append(entries / dt)
    print(f"   bundle {i + 1}: HTTP {status}, {created}/{entries} created in {dt:.3f} s = {entries / dt:.0f} resources/s ({len(body)} bytes)")
print(f"   median {statistics.median(rates):.0f} resources/s (target >= 20000)")
PY
if [ -n "${PERF:-}" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID" || true; echo "profile: perf report -i $RESULTS/bundles.perf"; fi

#!/usr/bin/env bash
# fhirgate journal bench: how long the operators' views take on a large message journal. ENTRIES journal
# rows (default 2,000,000: four days of a busy partnership, within the 90-day retention) are written
# straight into a gateway database, spread over the last DAYS days and 12 partners (one of them rare),
# 0.5 % of them rejected or failed; then each query below is asked RUNS times over HTTP as the operator
# and the median and worst milliseconds are printed. The dashboard asks /_ops/stats every few seconds.
#
#   bash bench/journal.sh        (ENTRIES=2000000 DAYS=4 RUNS=5; FHIRGATE_BIN to use another binary)
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
RESULTS="$BENCH/results"
ENTRIES="${ENTRIES:-2000000}"
DAYS="${DAYS:-4}"
RUNS="${RUNS:-5}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
mkdir -p "$RESULTS"
exec > >(tee "$RESULTS/journal_run.log") 2>&1
. "$BENCH/lib.sh"
bench_tmpdir fhirgate-journal

build_release fhirgate
echo "== fhirgate journal bench $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs: $ENTRIES entries over $DAYS days"
CFG="$TMPD/gateway.json"
cat > "$CFG" <<JSON
{ "security": {"enabled": true, "consentPolicy": "opt-in"},
  "profilesDir": "$ROOT/profiles",
  "partners": [{"id": "gp-practice", "name": "Riverside Medical Practice", "odsCode": "Y12345",
    "access": {"Patient": ["read"]}, "inbound": ["fhir-rest"]}],
  "roles": [{"id": "operator", "name": "Operations", "role": "operator", "access": {}}] }
JSON
OPS="$("$BIN" partner add-token operator --config "$CFG" --db "$TMPD/bench.db" | tail -1)"  # makes the schema

python3 - "$TMPD/bench.db" "$ENTRIES" "$DAYS" <<'PY'
import sqlite3, sys, time
db, entries, days = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
now = int(time.time() * 1000)
start = now - int(days * 86400 * 1000)
step = (now - start) / entries
partners = ["gp-%02d" % i for i in range(11)]
types = ["ADT^A01", "ADT^A08", "ADT^A04", "create Patient", "update Patient", "transaction", "feed clients"]
def rows():
    for i in range(entries):
        partner = "rare-clinic" if i % 1000 == 7 else partners[i % 11]
        direction = "out" if i % 5 == 4 else "in"
        status = "rejected" if i % 400 == 13 else "failed" if i % 400 == 101 else (
            "delivered" if direction == "out" else "stored")
        kind = "ADT^A40" if i % 2000 == 3 else types[i % 7]
        received = start + int(i * step)
        yield ("c-%d" % i, received, partner, direction, "mllp", "hl7v2", kind, 900, status,
               '[{"stage":"received","ms":0}]', "PID-3: bad check digit" if status in ("rejected", "failed") else "",
               "[]", received)
t0 = time.time()
c = sqlite3.connect(db)
c.execute("PRAGMA journal_mode = WAL")
c.executemany("INSERT INTO journal (correlation, received, partner, direction, transport, format, type, size, "
              "status, stages, error, resources, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows())
c.commit()
c.close()
print(f"   wrote {entries} journal entries in {time.time() - t0:.1f} s")
PY
serve_gateway "$CFG" "$TMPD/bench.db"

python3 - "$URL" "$OPS" "$RUNS" <<'PY'
import statistics, sys, time, urllib.request
url, token, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
yesterday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
queries = [
    ("the newest 50", "/_ops/journal"),
    ("failed ones", "/_ops/journal?status=failed"),
    ("one partner", "/_ops/journal?partner=gp-03"),
    ("a rare partner", "/_ops/journal?partner=rare-clinic"),
    ("a rare partner's rejections", "/_ops/journal?partner=rare-clinic&status=rejected"),
    ("a rare message type", "/_ops/journal?type=ADT%5EA40"),
    ("outbound, failed", "/_ops/journal?direction=out&status=failed"),
    ("one correlation id", "/_ops/journal?correlation=c-123456"),
    ("since yesterday, failed", "/_ops/journal?since=" + yesterday + "&status=failed"),
    ("stats of the last hour (dashboard)", "/_ops/stats"),
    ("stats of the last day", "/_ops/stats?window=86400&bucket=3600"),
]
print(f"   {'query':<38} {'median ms':>10} {'worst ms':>10} {'entries':>8}")
for name, path in queries:
    times, n = [], 0
    for _ in range(runs):
        req = urllib.request.Request(url + path, headers={"Authorization": "Bearer " + token})
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=600) as r:
            body = r.read()
        times.append((time.perf_counter() - t0) * 1000)
        n = body.count(b'"correlationId"')
    print(f"   {name:<38} {statistics.median(times):>10.1f} {max(times):>10.1f} {n:>8}")
PY

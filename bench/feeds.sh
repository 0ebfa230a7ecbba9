#!/usr/bin/env bash
# fhirgate feed bench: a ROWS-row client list CSV (social-care sample mapping) end to end into the store
# over POST /$ingest: CSV parse, mapping, validation against the partnership Patient profile, identity
# lookup, write, index and durable commit, with security on (supplier tags, one AuditEvent per chunk).
# Then the same file again (every row matched and unchanged: the idempotent path).
# MODE=folder drops the file into the feed's watched folder instead (written as .part, then renamed) and
# waits for its result file: the streaming path, for large files (ROWS=1000000 MODE=folder shows the
# memory stays bounded: the gateway's resident memory before and its peak after are printed).
# Target (issue 7): >= 50,000 rows/s on 2 cores.
#
#   bash bench/feeds.sh        (ROWS=100000; FHIRGATE_BIN to use another binary)
#
# Output: console (and results/feeds_run.log). Everything binds 127.0.0.1; the gateway is stopped by
# PID on exit and the temp dir removed (KEEP_DB=1 keeps it).
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
RESULTS="$BENCH/results"
ROWS="${ROWS:-100000}"
MODE="${MODE:-rest}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
mkdir -p "$RESULTS"
exec > >(tee "$RESULTS/feeds_run.log") 2>&1
. "$BENCH/lib.sh"
bench_tmpdir fhirgate-feeds

build_release fhirgate
echo "== fhirgate feed bench $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs: $ROWS rows"

CSV="$TMPD/clients.csv"
python3 - "$ROWS" "$CSV" <<'PY'
import random, sys
rows, out = int(sys.argv[1]), sys.argv[2]
random.seed(1)
def nhs(stem):
    s = sum(int(d) * (10 - i) for i, d in enumerate(stem)); c = 11 - s % 11
    return None if c == 10 else stem + str(0 if c == 11 else c)
surnames = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "O'Brien"]
given = ["Margaret", "John", "Ann", "Ravi", "Zofia", "Sean", "Ingrid", "Chidi", "Akosua", "Willem"]
with open(out, "w", encoding="utf-8", newline="") as f:
    f.write("Client ID,NHS Number,Surname,Forename,Date of Birth,Sex,Address Line 1,Town,Postcode,Status\r\n")
    n, stem = 0, 900000000
    while n < rows:
        stem += 1
        v = nhs(str(stem))
        if not v: continue
        n += 1
        f.write(f"WSC-{n},{v[:3]} {v[3:6]} {v[6:]},{random.choice(surnames).upper()},{random.choice(given).lower()},"
                f"{random.randint(1,28):02d}/{random.randint(1,12):02d}/{random.randint(1930,2005)},"
                f"{random.choice(['Male','Female','M','F'])},\"{random.randint(1,200)} Mill Lane, Flat {n % 9}\",Westshire,"
                f"WS{random.randint(1,9)} {random.randint(1,9)}AB,Active\r\n")
PY
echo "   $(wc -c < "$CSV") bytes"

CFG="$TMPD/gateway.json"
cat > "$CFG" <<JSON
{ "security": {"enabled": true, "consentPolicy": "opt-in"},
  "server": {"bodyLimitBytes": 268435456, "threads": 2},
  "profilesDir": "$ROOT/profiles",
  "profiles": {"Patient": ["https://fhir.partnership.example/StructureDefinition/partnership-patient"]},
  "cachedTypes": ["Patient", "Consent", "AuditEvent", "Organization"],
  "partners": [{"id": "social-care", "name": "Westshire Council Adult Social Care", "odsCode": "W00001",
    "access": {"Patient": ["read", "create", "update"]}, "inbound": ["csv"],
    "feeds": [{"id": "clients", "mapping": "$ROOT/samples/feeds/social-care/clients.mapping.json",
               "folder": "$TMPD/inbound"}]}],
  "feedPollMs": 100 }
JSON
TOKEN="$("$BIN" partner add-token social-care --config "$CFG" --db "$TMPD/bench.db" | tail -1)"
serve_gateway "$CFG" "$TMPD/bench.db"

run() {  # run LABEL
  local c0 c1 t0 t1 code
  c0="$(cpu_ticks "$PID")"; t0="$(now)"
  code="$(curl -s -o "$TMPD/response.json" -D "$TMPD/headers.txt" -w '%{http_code}' -X POST "$URL/\$ingest?feed=clients" \
    -H "Authorization: Bearer $TOKEN" -H "Content-Type: text/csv" --data-binary @"$CSV")"
  t1="$(now)"; c1="$(cpu_ticks "$PID")"
  awk -v l="$1" -v r="$ROWS" -v s="$t0" -v e="$t1" -v a="$c0" -v b="$c1" -v hz="$CLK_TCK" -v code="$code" \
    -v summary="$(grep -i '^X-Ingest-Summary' "$TMPD/headers.txt" | cut -d' ' -f2- | tr -d '\r')" \
    'BEGIN { printf "   %-28s HTTP %s in %.2f s = %.0f rows/s (server CPU %.0f%%) [%s]\n", l, code, e - s, r / (e - s), (b - a) / hz / (e - s) * 100, summary }'
}
memory() {  # memory FIELD -> MiB of VmRSS / VmHWM of the gateway
  awk -v f="$1:" '$1 == f { printf "%.0f", $2 / 1024 }' "/proc/$PID/status"
}
drop() {  # drop LABEL: the CSV through the watched folder
  local t0 t1 c0 c1 n result=""
  n=$(ls "$TMPD/inbound/done" | grep -c 'result.csv$' || true)
  c0="$(cpu_ticks "$PID")"; t0="$(now)"
  cp "$CSV" "$TMPD/inbound/clients.csv.part" && mv "$TMPD/inbound/clients.csv.part" "$TMPD/inbound/clients.csv"
  while [ "$(ls "$TMPD/inbound/done" | grep -c 'result.csv$' || true)" -le "$n" ]; do sleep 0.05; done
  t1="$(now)"; c1="$(cpu_ticks "$PID")"
  result="$(ls -t "$TMPD/inbound/done"/*result.csv | head -1)"
  awk -v l="$1" -v r="$ROWS" -v s="$t0" -v e="$t1" -v a="$c0" -v b="$c1" -v hz="$CLK_TCK" \
    -v summary="$(tail -n +2 "$result" | cut -d, -f3 | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}')" \
    'BEGIN { printf "   %-28s folder in %.2f s = %.0f rows/s (server CPU %.0f%%) [%s]\n", l, e - s, r / (e - s), (b - a) / hz / (e - s) * 100, summary }'
}
echo "   gateway resident memory at start: $(memory VmRSS) MiB"
if [ "$MODE" = folder ]; then
  drop "first load (all created)"
  drop "again (all unchanged)"
else
  run "first load (all created)"
  run "again (all unchanged)"
fi
echo "   gateway resident memory now $(memory VmRSS) MiB, peak $(memory VmHWM) MiB"
echo "   target >= 50000 rows/s"

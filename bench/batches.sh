#!/usr/bin/env bash
# bench/batches.sh: the gateway's batched writes in rows/s, next to SQLite's batch rate measured in the
# same run. Two scenarios, each right after its reference:
#
#   scenario            what                                                        SQLite reference
#   transaction-10      POST / of a transaction Bundle of 10 entries (5 Patients     batch 10
#                       with urn:uuid fullUrls, 5 Consents referring to them), wrk
#                       (wrk/transaction10.lua), as gp-practice: each Bundle is one
#                       durable transaction of 10 resources (and their AuditEvents)
#   ingest-created      POST /$ingest?feed=clients of an INGEST_ROWS-row client CSV  batch 100
#                       (bench/feeds.sh's file and configuration): every row a new
#                       Patient; the feed commits in chunks of 1,000 rows
#                       (chunk_rows, gateway/inbound/feed_ingest.hpp)
#   ingest-unchanged    the same file again: every row matched and unchanged         batch 100
#
# Reference: ../shared/bench/sqlite/sqlite_bench.cpp (built into build-release/check/ as bench/check builds
# it; its input rows from ../shared/bench/data/gen.py via check_report.py rows, the file bench/check uses)
# run with --rows SQLITE_ROWS --full-rows SQLITE_FULL_ROWS, once with --batch 10 (its
# b_batch10_sync_normal rows/s) and once with --batch 100 (b_batch100_sync_normal). Its batches are
# synchronous=NORMAL in WAL mode: a commit is not fsynced (only checkpoints are), while every gateway
# commit is durable (synchronous=FULL); its one-row-per-transaction rate at synchronous=FULL
# (a_txn_per_row_sync_full) is printed for context. The ingest's chunks are 1,000 rows, so of batch 10
# and batch 100 the closer is 100 (a conservative reference: SQLite's 1,000-row batches are a little
# faster still). Ratio = gateway rows/s / SQLite rows/s. Without ../shared/bench the figures are
# printed without references or ratios.
#
# The gateway runs as bench/bundles.sh (transaction-10) and bench/feeds.sh (ingest) run it: security on,
# opt-in consent, gp-practice a consentRegistrar, the partnership profiles enforced for Patient and
# Consent (for Patient only in the ingest's), 2 io threads, a fresh database in a temp dir each (one
# addition to bundles.sh's: gp-practice may also search-type, for the counts below); bearer
# tokens from `fhirgate partner add-token` before the start. transaction-10: a WARMUP-second warm-up,
# then `wrk -t2 -c$CONNS -d${DURATION}s --timeout ${WRK_TIMEOUT}s --latency`; rows/s = 10 x Bundles/s.
# Afterwards GET /Patient?_summary=count and /Consent?_summary=count (as gp-practice) must have grown by
# between 5 x the 2xx wrk counted and 5 x (that + CONNS): wrk does not count the requests in flight
# when it stops, which the gateway may still commit. ingest: curl, as bench/feeds.sh does; the
# X-Ingest-Summary must say every row created (first load), then every row unchanged.
# A run is an error, not a figure, when: wrk saw a non-2xx response or a socket error (warm-up
# included); the stored counts do not match; an ingest was not HTTP 200 with every row created /
# unchanged; sqlite_bench failed; a gateway did not exit 0 on SIGTERM. Errors are printed, the table is
# still printed, and the exit status is 1.
#
#   bash bench/batches.sh        (~2 minutes; plus the first build when FHIRGATE_BIN is not set)
#
# Knobs: FHIRGATE_BIN (default: build build-release/gateway/fhirgate with lib.sh build_release),
#   DURATION=8, WARMUP=2, CONNS=16, WRK_TIMEOUT=10, INGEST_ROWS=20000, SQLITE_ROWS=60000 (b_batch10 then
#   lasts about a second, the whole sqlite_bench run a few), SQLITE_FULL_ROWS=1000, IDLE_WAIT=20,
#   IDLE_MAX_BUSY=15, STOP_TIMEOUT=30, KEEP_DB=1 (keep the temp dir), SHARED_BENCH (../shared/bench).
# Output: the console (also results/batches_run.log), results/batches_summary.tsv,
#   results/batches_wrk_<warmup|run>.txt, results/batches_sqlite_batch<10|100>.txt (raw outputs),
#   results/batches_gateway_<transaction|ingest>.log (the gateway's stdout and stderr).
# Rules: everything binds 127.0.0.1; every load is time-bounded (wrk -d + timeout, curl --max-time,
# timeout); every process started here is stopped by its PID on exit (lib.sh).
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
SHARED="${SHARED_BENCH:-$ROOT/../shared/bench}"
[ -d "$SHARED" ] && SHARED="$(cd "$SHARED" && pwd)"
RESULTS="$BENCH/results"
PY=/usr/bin/python3
[ -x "$PY" ] || PY="$(command -v python3)"
REPORT="$BENCH/check_report.py"

DURATION="${DURATION:-8}"
WARMUP="${WARMUP:-2}"
CONNS="${CONNS:-16}"
WRK_TIMEOUT="${WRK_TIMEOUT:-10}"
INGEST_ROWS="${INGEST_ROWS:-20000}"
SQLITE_ROWS="${SQLITE_ROWS:-60000}"
SQLITE_FULL_ROWS="${SQLITE_FULL_ROWS:-1000}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
IDLE_WAIT="${IDLE_WAIT:-20}"
IDLE_MAX_BUSY="${IDLE_MAX_BUSY:-15}"

die() { echo "bench/batches.sh: $*" >&2; exit 1; }
for v in DURATION WARMUP CONNS WRK_TIMEOUT INGEST_ROWS SQLITE_ROWS SQLITE_FULL_ROWS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number (is '${!v}')"
done

mkdir -p "$RESULTS"
rm -f "$RESULTS"/batches_*
exec > >(tee "$RESULTS/batches_run.log") 2>&1
T_START=$SECONDS

. "$BENCH/lib.sh"  # process bookkeeping (_PIDS, stopped on exit), serve_gateway, cpu_ticks, now, alive, wait_idle
bench_tmpdir fhirgate-batches

ERRORS=()
declare -A RATE P99 CPU DETAIL REF_NAME REF_RATE STATUS
error() {  # error SCENARIO|- WHAT: the scenario's run is an error, not a figure
  [ "$1" = - ] || STATUS[$1]=ERROR
  ERRORS+=("$2"); echo "   !! $2"
}

# ---- 1. binaries ----
echo "== bench/batches.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs; $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}')"
echo "   DURATION=${DURATION}s WARMUP=${WARMUP}s CONNS=$CONNS INGEST_ROWS=$INGEST_ROWS SQLITE_ROWS=$SQLITE_ROWS SQLITE_FULL_ROWS=$SQLITE_FULL_ROWS"
if [ -n "${FHIRGATE_BIN:-}" ]; then
  BIN="$FHIRGATE_BIN"
else
  echo "== build (Release, $ROOT/build-release)"
  build_release fhirgate
fi
[ -x "$BIN" ] || die "no gateway binary at $BIN"
echo "   gateway: $BIN"

# sqlite_bench and its input, where bench/check keeps them (g++ straight into build-release/check/).
TOOLS="$ROOT/build-release/check"
SQLITE_BIN="" SQLITE_WHY="" SQLITE_ROWS_FILE=""
if [ -f "$SHARED/sqlite/sqlite_bench.cpp" ] && [ -f "$SHARED/data/gen.py" ]; then
  mkdir -p "$TOOLS"
  SQLITE_BIN="$TOOLS/sqlite_bench"
  if [ ! "$SQLITE_BIN" -nt "$SHARED/sqlite/sqlite_bench.cpp" ]; then
    echo "== build sqlite_bench ($SHARED/sqlite/sqlite_bench.cpp)"
    g++ -O2 -DNDEBUG -std=c++17 -o "$SQLITE_BIN" "$SHARED/sqlite/sqlite_bench.cpp" -lsqlite3 \
      || die "could not build $SQLITE_BIN"
  fi
  n=$((SQLITE_ROWS > 60000 ? SQLITE_ROWS : 60000))  # 60000: the file bench/check makes
  SQLITE_ROWS_FILE="$TOOLS/sqlite_rows_$n.ndjson"
  if [ ! -s "$SQLITE_ROWS_FILE" ]; then
    echo "== SQLite input: $n rows from $SHARED/data/gen.py -> $SQLITE_ROWS_FILE"
    "$PY" "$REPORT" rows --gen "$SHARED/data/gen.py" --out "$SQLITE_ROWS_FILE" --count "$n"
  fi
else
  SQLITE_WHY="no $SHARED/sqlite/sqlite_bench.cpp or $SHARED/data/gen.py"
  echo "   !! $SQLITE_WHY: no SQLite reference; the figures are printed without ratios"
fi
CHUNK="$(sed -n 's/.*std::size_t chunk_rows = \([0-9]*\);.*/\1/p' "$ROOT/gateway/inbound/feed_ingest.hpp" 2>/dev/null | head -1)"
CHUNK="${CHUNK:-?}"

# sqlite_ref SCENARIO... BATCH: sqlite_bench --batch BATCH; REF_RATE[SCENARIO] = its b_batchBATCH_sync_normal
sqlite_ref() {
  local batch="${*: -1}" out="$RESULTS/batches_sqlite_batch${*: -1}.txt" rc=0 rate full s
  local scenarios=("${@:1:$#-1}")
  for s in "${scenarios[@]}"; do REF_NAME[$s]="SQLite batch $batch"; done
  if [ -z "$SQLITE_BIN" ]; then
    for s in "${scenarios[@]}"; do REF_NAME[$s]="none ($SQLITE_WHY)"; done
    return 0
  fi
  wait_idle
  mkdir -p "$TMPD/sqlite"
  timeout 300 "$SQLITE_BIN" "$SQLITE_ROWS_FILE" "$TMPD/sqlite" --rows "$SQLITE_ROWS" --full-rows "$SQLITE_FULL_ROWS" \
    --batch "$batch" >"$out" 2>&1 || rc=$?
  rm -rf "$TMPD/sqlite"
  rate="$(sed -n "s/^RESULT b_batch${batch}_sync_normal .*rows_per_s=\([0-9.]*\).*/\1/p" "$out")"
  full="$(sed -n 's/^RESULT a_txn_per_row_sync_full .*rows_per_s=\([0-9.]*\).*/\1/p' "$out")"
  if [ -z "$rate" ] || [ "$rc" != 0 ]; then
    error - "SQLite batch $batch: sqlite_bench failed (status $rc): $(tail -2 "$out" | tr '\n' ' ')"
    return 0
  fi
  for s in "${scenarios[@]}"; do REF_RATE[$s]="$rate"; done
  printf '   SQLite batch %-3s %8.0f rows/s (%s rows, %s per transaction, synchronous=NORMAL: commits not fsynced; %s s)\n' \
    "$batch" "$rate" "$SQLITE_ROWS" "$batch" "$(sed -n "s/^RESULT b_batch${batch}_sync_normal .*seconds=\([0-9.]*\).*/\1/p" "$out")"
  printf '   SQLite FULL      %8.0f rows/s (context: %s rows, one transaction each, synchronous=FULL: every commit fsynced)\n' \
    "${full:-0}" "$SQLITE_FULL_ROWS"
}

# stop_gateway NAME SCENARIO...: SIGTERM by PID, waits (STOP_TIMEOUT s, then SIGKILL), keeps its logs,
# summarises them; an exit status other than 0 is an error of the SCENARIOs.
stop_gateway() {
  local rc=0 levels s5 sc
  kill -TERM "$PID" 2>/dev/null || true
  for _ in $(seq 1 $((STOP_TIMEOUT * 10))); do alive "$PID" || break; sleep 0.1; done
  alive "$PID" && { echo "   !! gateway still running ${STOP_TIMEOUT}s after SIGTERM: SIGKILL"; kill -KILL "$PID" 2>/dev/null || true; }
  wait "$PID" 2>/dev/null || rc=$?
  cat "$TMPD/out.log" "$TMPD/err.log" >"$RESULTS/batches_gateway_$1.log"
  levels="$(grep -o '"level":"[a-z]*"' "$TMPD/err.log" | cut -d'"' -f4 | sort | uniq -c | awk '{printf "%s %s, ", $2, $1}' | sed 's/, $//' || true)"
  echo "   gateway stopped: exit status $rc; log: $(wc -l <"$TMPD/err.log") lines${levels:+ ($levels)} (results/batches_gateway_$1.log)"
  s5="$(grep '"event":"request"' "$TMPD/err.log" | grep -c '"status":5[0-9][0-9]' || true)"
  [ "$s5" = 0 ] || echo "   !! $s5 requests answered 5xx"
  grep -v '"level":"info"' "$TMPD/err.log" | grep -v 'stopped cleanly' | head -5 | cut -c1-400 | sed 's/^/      /' || true
  if [ "$rc" != 0 ]; then
    error - "gateway ($1) exited with status $rc on SIGTERM"
    for sc in "${@:2}"; do STATUS[$sc]=ERROR; done
  fi
}

# ---- 2. transaction-10: SQLite batch 10, then Bundles of 10 entries under wrk ----
echo "== reference: SQLite batch 10"
sqlite_ref transaction-10 10

echo "== transaction-10: transaction Bundles of 5 Patients + 5 Consents, as gp-practice (bench/bundles.sh's configuration)"
CFG="$TMPD/transaction.json"
cat >"$CFG" <<JSON
{ "security": {"enabled": true, "consentPolicy": "opt-in"},
  "server": {"bind": "127.0.0.1", "bodyLimitBytes": 67108864, "threads": 2},
  "profilesDir": "$ROOT/profiles",
  "profiles": {"Patient": ["https://fhir.partnership.example/StructureDefinition/partnership-patient"],
               "Consent": ["https://fhir.partnership.example/StructureDefinition/partnership-consent"]},
  "cachedTypes": ["Patient", "Consent", "AuditEvent", "Organization"],
  "partners": [{"id": "gp-practice", "name": "Riverside Medical Practice", "odsCode": "Y12345", "consentRegistrar": true,
    "access": {"Patient": ["create", "read", "search-type"], "Consent": ["create", "read", "search-type"]},
    "inbound": ["fhir-rest"]}] }
JSON
TOKEN="$(timeout 60 "$BIN" partner add-token gp-practice --config "$CFG" --db "$TMPD/transaction.db" | tail -1)"
serve_gateway "$CFG" "$TMPD/transaction.db"
echo "   gateway $URL (PID $PID)"
count() {  # count TYPE -> total of GET /TYPE?_summary=count as gp-practice, or ?
  { curl -sS --max-time 30 -H 'Accept: application/fhir+json' -H "Authorization: Bearer $TOKEN" \
      "$URL/$1?_summary=count" 2>/dev/null || true; } | sed -n 's/.*"total":\([0-9][0-9]*\).*/\1/p' | grep . || echo "?"
}
wrk_bundles() {  # wrk_bundles NAME SECONDS NHS_TAG -> WRK="rps p99 non2xx sockerr n" (or FAILED ...)
  local out="$RESULTS/batches_wrk_$1.txt" rc=0
  BEARER="$TOKEN" NHS_TAG="$3" timeout $(($2 + WRK_TIMEOUT + 30)) \
    wrk -t2 -c"$CONNS" -d"$2"s --timeout "$WRK_TIMEOUT"s --latency -s "$BENCH/wrk/transaction10.lua" "$URL" >"$out" 2>&1 || rc=$?
  WRK="$("$PY" "$REPORT" wrk "$out")"
  [ "$rc" = 0 ] || WRK="FAILED wrk exited with status $rc: $(tail -3 "$out" | tr '\n' ' ')"
}
# NHS_TAG: 20 for the warm-up, 21 for the run (transaction10.lua), so no two Patients share an NHS number.
wrk_bundles warmup "$WARMUP" 20
read -r w_rps _ w_non2xx w_sock w_n <<<"$WRK"
if [ "$w_rps" = FAILED ]; then
  echo "   warm-up ${WARMUP}s: $WRK"
else
  printf '   warm-up %ss: %.0f Bundles/s, %s Bundles, non-2xx %s, socket errors %s\n' "$WARMUP" "$w_rps" "$w_n" "$w_non2xx" "$w_sock"
fi
if [ "$w_rps" = FAILED ] || [ "$w_non2xx" != 0 ] || [ "$w_sock" != 0 ]; then
  error transaction-10 "transaction-10 warm-up: $WRK (results/batches_wrk_warmup.txt)"
fi
p_before="$(count Patient)" c_before="$(count Consent)"
wait_idle
c0="$(cpu_ticks "$PID")" t0="$(now)"
wrk_bundles run "$DURATION" 21
t1="$(now)" c1="$(cpu_ticks "$PID")"
p_after="$(count Patient)" c_after="$(count Consent)"
read -r rps p99 non2xx sock n <<<"$WRK"
if [ "$rps" = FAILED ]; then
  error transaction-10 "transaction-10: $WRK"
else
  RATE[transaction-10]="$(awk -v r="$rps" 'BEGIN { printf "%.0f", r * 10 }')"
  P99[transaction-10]="$p99"
  CPU[transaction-10]="$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", (b - a) / hz / (e - s) * 100 }')"
  DETAIL[transaction-10]="$rps Bundles/s, $n Bundles, non-2xx $non2xx, socket errors $sock"
  printf '   %.0f Bundles/s = %s resources/s, p99 %.1f ms, %s Bundles, non-2xx %s, socket errors %s, server CPU %s%%\n' \
    "$rps" "${RATE[transaction-10]}" "$p99" "$n" "$non2xx" "$sock" "${CPU[transaction-10]}"
  [ "$non2xx" = 0 ] && [ "$sock" = 0 ] || error transaction-10 "transaction-10: $non2xx non-2xx responses, $sock socket errors (results/batches_wrk_run.txt)"
  # wrk counts the completed responses; up to CONNS more Bundles may be committed while it stops.
  echo "   stored: Patients $p_before -> $p_after, Consents $c_before -> $c_after (expected +$((5 * n)) to +$((5 * (n + CONNS))))"
  for pair in "Patients $p_before $p_after" "Consents $c_before $c_after"; do
    read -r what b a <<<"$pair"
    if [ "$b" = "?" ] || [ "$a" = "?" ] || [ $((a - b)) -lt $((5 * n)) ] || [ $((a - b)) -gt $((5 * (n + CONNS))) ]; then
      error transaction-10 "transaction-10: $n Bundles answered 2xx but the $what stored went $b -> $a"
    fi
  done
fi
alive "$PID" || error transaction-10 "transaction-10: the gateway died"
stop_gateway transaction transaction-10

# ---- 3. ingest: SQLite batch 100, then the CSV feed twice (bench/feeds.sh's file and configuration) ----
echo "== reference: SQLite batch 100 (the ingest commits $CHUNK rows per transaction: batch 100 is the closer of 10 and 100)"
sqlite_ref ingest-created ingest-unchanged 100

echo "== ingest: $INGEST_ROWS-row client CSV over POST /\$ingest?feed=clients, as social-care (bench/feeds.sh's configuration)"
CSV="$TMPD/clients.csv"
"$PY" - "$INGEST_ROWS" "$CSV" <<'PY'
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
echo "   $(wc -c <"$CSV") bytes"
CFG="$TMPD/ingest.json"
cat >"$CFG" <<JSON
{ "security": {"enabled": true, "consentPolicy": "opt-in"},
  "server": {"bind": "127.0.0.1", "bodyLimitBytes": 268435456, "threads": 2},
  "profilesDir": "$ROOT/profiles",
  "profiles": {"Patient": ["https://fhir.partnership.example/StructureDefinition/partnership-patient"]},
  "cachedTypes": ["Patient", "Consent", "AuditEvent", "Organization"],
  "partners": [{"id": "social-care", "name": "Westshire Council Adult Social Care", "odsCode": "W00001",
    "access": {"Patient": ["read", "create", "update"]}, "inbound": ["csv"],
    "feeds": [{"id": "clients", "mapping": "$ROOT/samples/feeds/social-care/clients.mapping.json",
               "folder": "$TMPD/inbound"}]}],
  "feedPollMs": 100 }
JSON
TOKEN="$(timeout 60 "$BIN" partner add-token social-care --config "$CFG" --db "$TMPD/ingest.db" | tail -1)"
serve_gateway "$CFG" "$TMPD/ingest.db"
echo "   gateway $URL (PID $PID)"
ingest() {  # ingest SCENARIO EXPECTED_STATUS: POSTs the CSV once; every row must come back EXPECTED_STATUS
  local c0 c1 t0 t1 code summary
  wait_idle
  c0="$(cpu_ticks "$PID")"; t0="$(now)"
  code="$(curl -s --max-time 600 -o "$TMPD/response.json" -D "$TMPD/headers.txt" -w '%{http_code}' -X POST \
    "$URL/\$ingest?feed=clients" -H "Authorization: Bearer $TOKEN" -H "Content-Type: text/csv" \
    --data-binary @"$CSV" || true)"
  t1="$(now)"; c1="$(cpu_ticks "$PID")"
  summary="$(grep -i '^X-Ingest-Summary' "$TMPD/headers.txt" 2>/dev/null | cut -d' ' -f2- | tr -d '\r' || true)"
  RATE[$1]="$(awk -v r="$INGEST_ROWS" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.0f", r / (e - s) }')"
  CPU[$1]="$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", (b - a) / hz / (e - s) * 100 }')"
  DETAIL[$1]="HTTP $code, $summary"
  awk -v l="$1" -v r="${RATE[$1]}" -v s="$t0" -v e="$t1" -v code="$code" -v cpu="${CPU[$1]}" -v summary="$summary" \
    'BEGIN { printf "   %-17s HTTP %s in %.2f s = %s rows/s (server CPU %s%%) [%s]\n", l, code, e - s, r, cpu, summary }'
  if [ "$code" != 200 ] || [ "$summary" != "rows=$INGEST_ROWS, $2=$INGEST_ROWS" ]; then
    error "$1" "$1: HTTP $code [$summary], expected 200 [rows=$INGEST_ROWS, $2=$INGEST_ROWS]: $(head -c 300 "$TMPD/response.json" 2>/dev/null)"
  fi
}
ingest ingest-created created
ingest ingest-unchanged unchanged
alive "$PID" || error ingest-unchanged "ingest: the gateway died"
stop_gateway ingest ingest-created ingest-unchanged

# ---- 4. summary ----
echo
echo "== summary: $(basename "$BIN"), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
[ "$BUSY_RUNS" = 0 ] || echo "!! $BUSY_RUNS measured runs started while the box was busy with other processes: the figures are noisy"
SUMMARY="$RESULTS/batches_summary.tsv"
printf 'scenario\trows_per_s\tp99_ms\tserver_cpu_pct\treference\treference_rows_per_s\tratio\tstatus\tdetail\n' >"$SUMMARY"
printf '   %-17s %9s %8s %6s  %-16s %9s %6s  %s\n' scenario rows/s "p99 ms" "CPU %" "SQLite reference" rows/s ratio status
for s in transaction-10 ingest-created ingest-unchanged; do
  rate="${RATE[$s]:--}" ref="${REF_RATE[$s]:--}" ratio="-" status="${STATUS[$s]:-OK}"
  [ "$rate" != - ] && [ "$ref" != - ] && ratio="$(awk -v a="$rate" -v b="$ref" 'BEGIN { printf "%.2f", a / b }')"
  [ "$ref" != - ] || [ "$status" = ERROR ] || status="NO-REFERENCE"
  name="${REF_NAME[$s]:--}"; [ "$ref" != - ] || name="-"
  printf '   %-17s %9s %8s %6s  %-16s %9s %6s  %s\n' "$s" "$rate" "${P99[$s]:--}" "${CPU[$s]:--}" "$name" "$ref" "$ratio" "$status"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$rate" "${P99[$s]:--}" "${CPU[$s]:--}" "${REF_NAME[$s]:--}" \
    "$ref" "$ratio" "$status" "${DETAIL[$s]:--}" >>"$SUMMARY"
done
echo "   rows/s: transaction-10 counts 10 resources per Bundle (5 Patients, 5 Consents; their AuditEvents not"
echo "   counted); every gateway commit is durable (synchronous=FULL), SQLite's batches are synchronous=NORMAL"
echo "   (not fsynced per commit). The ingest commits $CHUNK rows per transaction; its reference is batch 100."
[ -z "$SQLITE_WHY" ] || echo "   no ratios: $SQLITE_WHY"
echo "(results/batches_summary.tsv; raw outputs results/batches_*; took $((SECONDS - T_START)) s)"
if [ "${#ERRORS[@]}" != 0 ]; then
  echo "RESULT: FAILED (${#ERRORS[@]} error(s)):"
  printf '   %s\n' "${ERRORS[@]}"
  exit 1
fi
echo "RESULT: OK"

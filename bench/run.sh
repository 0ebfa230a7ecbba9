#!/usr/bin/env bash
# fhirgate load bench: read / search / create under wrk, side by side with the Beast HTTP ceiling.
#
#   bash bench/run.sh            (from anywhere; ~2-3 min with the defaults, plus the first build)
#
# 1. Release build in <repo>/build-release (ninja; ccache via CMake), unless FHIRGATE_BIN is set.
# 2. Gateway on 127.0.0.1, port 0 (URL parsed from stdout), fresh temporary database, THREADS io threads.
# 3. PATIENTS synthetic Patients POSTed by load_patients.py (keep-alive, LOAD_CONNS connections),
#    ids -> results/ids.txt; per-family counts checked with _summary=count.
# 4. wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s --latency, RUNS times each (median reported):
#    read (wrk/read.lua, random ids), search (wrk/search.lua, ?family=, ~PATIENTS/50 hits each),
#    create (wrk/create_unique.lua, POST data/patient.json minus id/meta, with a new NHS number and MRN per
#    request: one Patient per identifier makes the same body twice a 409). Each scenario gets a discarded
#    WARMUP-second warm-up with 4 connections first.
# 5. CEILING=1 (default when ../shared/bench/http exists): the minimal Beast fixed-response server
#    (THREADS threads), loaded with the same wrk settings and the same read.lua, alternating run by
#    run with the gateway read, so "read >= 50% of ceiling" (and search >= 15%) compares figures taken
#    in the same run.
# 6. Summary table (req/s, p50, p99, non-2xx, socket errors, server CPU, target, PASS/BELOW) and
#    results/summary.tsv. Targets (issue 18): read >= 50% and search >= 15% of the ceiling; create >= 1.5x
#    SQLite one row per transaction at synchronous=FULL, which this script does not measure (bench/check does). Then: create accounting (rows the server stored vs 2xx wrk counted), clean
#    SIGTERM, restart on the same database and recount (durability across restart).
#
# Knobs: FHIRGATE_BIN, THREADS=2, PATIENTS=10000, LOAD_CONNS=8, DURATION=10, CONNS=64, WRK_THREADS=2,
#   RUNS=3, WARMUP=2, WRK_TIMEOUT=10 (s, per request), CEILING=0/1, SCENARIOS="read search create",
#   CONFIG (gateway --config file), KEEP_DB=1 (keep the temp database), SHARED_BENCH (../shared/bench),
#   targets: READ_CEILING_SHARE=0.5, SEARCH_CEILING_SHARE=0.15.
# Rules: everything binds 127.0.0.1; every load is bounded (wrk -d + timeout, loader --deadline +
# timeout, curl --max-time); every process started here is stopped by its PID on exit.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
SHARED="${SHARED_BENCH:-$ROOT/../shared/bench}"
[ -d "$SHARED" ] && SHARED="$(cd "$SHARED" && pwd)"
RESULTS="$BENCH/results"
PY=/usr/bin/python3
[ -x "$PY" ] || PY="$(command -v python3)"

THREADS="${THREADS:-2}"
PATIENTS="${PATIENTS:-10000}"
LOAD_CONNS="${LOAD_CONNS:-8}"
LOAD_DEADLINE="${LOAD_DEADLINE:-300}"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-64}"
WRK_THREADS="${WRK_THREADS:-2}"
RUNS="${RUNS:-3}"
WARMUP="${WARMUP:-2}"
WRK_TIMEOUT="${WRK_TIMEOUT:-10}"
SCENARIOS="${SCENARIOS:-read search create}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
if [ -z "${CEILING:-}" ]; then
  if [ -d "$SHARED/http" ]; then CEILING=1; else CEILING=0; fi
fi
export READ_CEILING_SHARE="${READ_CEILING_SHARE:-0.5}" SEARCH_CEILING_SHARE="${SEARCH_CEILING_SHARE:-0.15}"

mkdir -p "$RESULTS"
rm -f "$RESULTS"/wrk_*.txt "$RESULTS"/rows.tsv "$RESULTS"/summary.tsv
exec > >(tee "$RESULTS/run.log") 2>&1

# wrk scripts and sample Patient: the shared ones when ../shared exists, else the local copies.
if [ -d "$SHARED/fhir-peer/wrk" ]; then WRK_DIR="$SHARED/fhir-peer/wrk"; else WRK_DIR="$BENCH/wrk"; fi
if [ -f "$SHARED/data/patient.json" ]; then PATIENT_JSON="$SHARED/data/patient.json"; else PATIENT_JSON="$BENCH/data/patient.json"; fi
for f in read search create; do
  if [ "$WRK_DIR" != "$BENCH/wrk" ] && ! cmp -s "$WRK_DIR/$f.lua" "$BENCH/wrk/$f.lua"; then
    echo "note: bench/wrk/$f.lua differs from $WRK_DIR/$f.lua (using the latter)"
  fi
done
export PATIENT_JSON IDS_FILE="$RESULTS/ids.txt"

. "$BENCH/lib.sh"  # process bookkeeping, cpu_ticks, now, alive, wait_idle
bench_tmpdir fhirgate-bench
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {  # wait_port PORT PID [TIMEOUT_S]
  local i
  for i in $(seq 1 $(( ${3:-30} * 5 ))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    alive "$2" || return 1
    sleep 0.2
  done
  return 1
}

# run_wrk OUTFILE PID URL [wrk args...]: one bounded wrk run; LAST_CPU = server CPU % of one core
run_wrk() {
  local out="$1" pid="$2" url="$3"; shift 3
  local c0 c1 t0 t1 rc=0
  wait_idle
  c0="$(cpu_ticks "$pid")"; t0="$(now)"
  timeout $((DURATION + WRK_TIMEOUT + 30)) wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" \
    --timeout "${WRK_TIMEOUT}s" --latency "$@" "$url" >"$out" 2>&1 || rc=$?
  c1="$(cpu_ticks "$pid")"; t1="$(now)"
  [ "$rc" = 0 ] || echo "wrk exited with status $rc" >>"$out"
  LAST_CPU="$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$CLK_TCK" \
    'BEGIN { printf "%.1f", (b - a) / hz / (e - s) * 100 }')"
}
warmup() {  # warmup OUTFILE URL [wrk args...]: discarded, few connections
  local out="$1" url="$2"; shift 2
  [ "$WARMUP" -gt 0 ] || return 0
  timeout $((WARMUP + 30)) wrk -t1 -c4 -d"${WARMUP}s" --timeout "${WRK_TIMEOUT}s" "$@" "$url" >"$out" 2>&1 || true
}

# ---- 1. build ----
echo "== fhirgate bench $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs; $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}')"
echo "   THREADS=$THREADS PATIENTS=$PATIENTS RUNS=$RUNS DURATION=${DURATION}s CONNS=$CONNS WRK_THREADS=$WRK_THREADS CEILING=$CEILING"
echo "   wrk scripts: $WRK_DIR; PATIENT_JSON=$PATIENT_JSON"
if [ -n "${FHIRGATE_BIN:-}" ]; then
  BIN="$FHIRGATE_BIN"
else
  echo "== build (Release, $ROOT/build-release)"
  cmake -S "$ROOT" -B "$ROOT/build-release" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$RESULTS/build.log" 2>&1 \
    || { tail -30 "$RESULTS/build.log"; exit 1; }
  ninja -C "$ROOT/build-release" fhirgate >>"$RESULTS/build.log" 2>&1 || { tail -30 "$RESULTS/build.log"; exit 1; }
  tail -1 "$RESULTS/build.log"
  BIN="$ROOT/build-release/gateway/fhirgate"
fi
[ -x "$BIN" ] || { echo "no gateway binary at $BIN" >&2; exit 1; }

CEIL_BIN=""
if [ "$CEILING" = 1 ]; then
  CEIL_SRC="$SHARED/http/beast_fixed_server.cpp"
  CEIL_DIR="$ROOT/build-release/ceiling"
  CEIL_BIN="$CEIL_DIR/beast_fixed_server"
  mkdir -p "$CEIL_DIR"
  if [ ! "$CEIL_BIN" -nt "$CEIL_SRC" ]; then
    echo "== build ceiling server ($CEIL_SRC -> $CEIL_BIN)"
    g++ ${CEILING_CXXFLAGS:--O2 -DNDEBUG -std=c++17} -o "$CEIL_BIN" "$CEIL_SRC" -lpthread
  fi
fi

# ---- 2. gateway ----
GW_OUT="$RESULTS/gateway.stdout.log" GW_ERR="$RESULTS/gateway.stderr.log"
GW_PID="" GW_DEAD=0 GW_RC=""
start_gateway() {  # start_gateway LOGSUFFIX -> GW_PID, BASE
  local out="$1" err="$2" i
  "$BIN" serve --port 0 --bind 127.0.0.1 --db "$TMPD/bench.db" --threads "$THREADS" \
    ${CONFIG:+--config "$CONFIG"} >"$out" 2>"$err" &
  GW_PID=$!
  _PIDS+=("$GW_PID")
  BASE=""
  for i in $(seq 1 300); do
    BASE="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$out" | head -1 || true)"
    [ -n "$BASE" ] && break
    alive "$GW_PID" || break
    sleep 0.2
  done
  if [ -z "$BASE" ]; then
    echo "gateway did not start; stdout/stderr:"; cat "$out" "$err"; exit 1
  fi
}
stop_gateway() {  # SIGTERM, bounded wait; GW_RC = exit status
  local i
  kill -TERM "$GW_PID" 2>/dev/null || true
  for i in $(seq 1 $((STOP_TIMEOUT * 10))); do alive "$GW_PID" || break; sleep 0.1; done
  if alive "$GW_PID"; then
    echo "gateway $GW_PID still running ${STOP_TIMEOUT}s after SIGTERM: SIGKILL"
    kill -KILL "$GW_PID" 2>/dev/null || true
  fi
  GW_RC=0; wait "$GW_PID" 2>/dev/null || GW_RC=$?
}
check_gateway() {  # after each load run: did it die?
  if [ "$GW_DEAD" = 0 ] && ! alive "$GW_PID"; then
    GW_DEAD=1; GW_RC=0; wait "$GW_PID" 2>/dev/null || GW_RC=$?
    echo "!! gateway (pid $GW_PID) DIED during '$1' with exit status $GW_RC; stderr tail:"
    tail -40 "$GW_ERR" | sed 's/^/   /'
  fi
}
count_family() {  # count_family NAME -> server-reported total (or "?")
  curl -sS --max-time 10 -H 'Accept: application/fhir+json' "$BASE/Patient?family=$1&_summary=count" 2>/dev/null \
    | "$PY" -c 'import json,sys; print(json.load(sys.stdin).get("total","?"))' 2>/dev/null || echo "?"
}

echo "== start gateway ($BIN, $THREADS threads, db $TMPD/bench.db)"
start_gateway "$GW_OUT" "$GW_ERR"
echo "   $(head -1 "$GW_OUT")"

# ---- 3. load ----
echo "== load $PATIENTS Patients ($LOAD_CONNS keep-alive connections)"
LOAD_RC=0
wait_idle
timeout $((LOAD_DEADLINE + 90)) "$PY" "$BENCH/load_patients.py" --base "$BASE" --count "$PATIENTS" \
  --conns "$LOAD_CONNS" --ids "$IDS_FILE" --deadline "$LOAD_DEADLINE" --expect-exact || LOAD_RC=$?
[ "$LOAD_RC" = 0 ] || echo "!! loader reported errors (status $LOAD_RC)"
check_gateway load
[ "$GW_DEAD" = 0 ] || exit 1
[ -s "$IDS_FILE" ] || { echo "no ids were loaded"; exit 1; }
ID1="$(head -1 "$IDS_FILE")"
echo "   sanity: GET /Patient/$ID1 -> $(curl -sS --max-time 10 -o /dev/null -w 'HTTP %{http_code} %{size_download} B' "$BASE/Patient/$ID1"),"\
" GET /Patient?family=Smith -> $(curl -sS --max-time 10 -o /dev/null -w 'HTTP %{http_code} %{size_download} B' "$BASE/Patient?family=Smith")"

# ---- ceiling ----
CEIL_PID="" CEIL_URL=""
if [ -n "$CEIL_BIN" ]; then
  CPORT="$(free_port)"
  "$CEIL_BIN" "$CPORT" "$THREADS" "$PATIENT_JSON" >"$RESULTS/ceiling.log" 2>&1 &
  CEIL_PID=$!
  _PIDS+=("$CEIL_PID")
  if wait_port "$CPORT" "$CEIL_PID" 30; then
    CEIL_URL="http://127.0.0.1:$CPORT"
    echo "== ceiling: Beast fixed server ($THREADS threads) on $CEIL_URL:" \
      "$(curl -sS --max-time 10 -o /dev/null -w 'HTTP %{http_code} %{size_download} B' "$CEIL_URL/Patient/$ID1")"
  else
    echo "!! ceiling server did not start:"; cat "$RESULTS/ceiling.log"
  fi
fi

# ---- 4./5. wrk ----
ROWS="$RESULTS/rows.tsv"
LABEL_SUFFIX="c${CONNS} t${WRK_THREADS} srv${THREADS}thr"
CREATE_FILES=()
for sc in $SCENARIOS; do
  if [ "$GW_DEAD" = 1 ]; then
    "$PY" "$BENCH/report.py" add "$ROWS" "$sc gateway died earlier" - /nonexistent; continue
  fi
  echo "== $sc: warm-up ${WARMUP}s, then $RUNS x ${DURATION}s"
  script="$WRK_DIR/$sc.lua"
  [ "$sc" = create ] && script="$BENCH/wrk/create_unique.lua"  # its own: a new patient per request
  if [ "$sc" = create ]; then C0="$(count_family Chalmers)"; fi
  warmup "$RESULTS/wrk_${sc}_warmup.txt" "$BASE" -s "$script"
  if [ "$sc" = create ] && [ -s "$RESULTS/wrk_${sc}_warmup.txt" ]; then CREATE_FILES+=("$RESULTS/wrk_${sc}_warmup.txt"); fi
  files=() cpus=() cfiles=() ccpus=()
  if [ "$sc" = read ] && [ -n "$CEIL_URL" ]; then warmup "$RESULTS/wrk_ceiling_warmup.txt" "$CEIL_URL" -s "$script"; fi
  for i in $(seq 1 "$RUNS"); do
    if [ "$sc" = read ] && [ -n "$CEIL_URL" ]; then
      f="$RESULTS/wrk_ceiling-read_$i.txt"
      run_wrk "$f" "$CEIL_PID" "$CEIL_URL" -s "$script"
      cfiles+=("$f"); ccpus+=("$LAST_CPU")
      echo "   run $i ceiling: $(grep -o 'Requests/sec: *[0-9.]*' "$f" || echo 'no result') (server CPU $LAST_CPU%)"
    fi
    f="$RESULTS/wrk_${sc}_$i.txt"
    run_wrk "$f" "$GW_PID" "$BASE" -s "$script"
    files+=("$f"); cpus+=("$LAST_CPU")
    if [ "$sc" = create ]; then CREATE_FILES+=("$f"); fi
    echo "   run $i gateway: $(grep -o 'Requests/sec: *[0-9.]*' "$f" || echo 'no result') (server CPU $LAST_CPU%)" \
      "$(grep -E 'Non-2xx|Socket errors' "$f" | tr '\n' ' ' || true)"
    check_gateway "$sc run $i"
    [ "$GW_DEAD" = 0 ] || break
  done
  if [ "${#cfiles[@]}" -gt 0 ]; then
    "$PY" "$BENCH/report.py" add "$ROWS" "ceiling-read (Beast fixed 711 B) $LABEL_SUFFIX" "$(IFS=,; echo "${ccpus[*]}")" "${cfiles[@]}"
  fi
  "$PY" "$BENCH/report.py" add "$ROWS" "$sc $LABEL_SUFFIX" "$(IFS=,; echo "${cpus[*]}")" "${files[@]}"
done

# ---- create accounting: rows the server stored vs 2xx responses wrk counted ----
CREATED_SERVER="" WRK_OK=""
if [ "${#CREATE_FILES[@]}" -gt 0 ] && [ "$GW_DEAD" = 0 ]; then
  C1="$(count_family Chalmers)"
  WRK_OK="$(cat "${CREATE_FILES[@]}" | awk '/requests in/ {n += $1} /Non-2xx or 3xx/ {b += $NF} END {print n - b}')"
  if [ "$C0" != "?" ] && [ "$C1" != "?" ]; then
    CREATED_SERVER=$((C1 - C0))
    echo "== create accounting: server stored $CREATED_SERVER new Chalmers Patients; wrk counted $WRK_OK non-error" \
      "responses (warm-up included; up to $CONNS per run may still be in flight when wrk stops)"
  fi
fi

# ---- 6. summary ----
echo
echo "== summary (median of $RUNS; server CPU = % of one core used by the server process during the run)"
"$PY" "$BENCH/report.py" summary "$ROWS" "$RESULTS/summary.tsv"
echo "(written to $RESULTS/summary.tsv; raw wrk outputs in $RESULTS/wrk_*.txt)"
if [ "$BUSY_RUNS" -gt 0 ]; then
  echo "!! $BUSY_RUNS measured run(s) started while the box was busy with other processes: treat the figures with care"
fi

# ---- 7. clean stop, restart on the same database, recount ----
if [ "$GW_DEAD" = 0 ]; then
  RSS="$(awk '/VmHWM/ {print $2 / 1024 " MiB"}' "/proc/$GW_PID/status" 2>/dev/null || echo '?')"
  stop_gateway
  echo "== gateway stopped: exit status $GW_RC, peak RSS $RSS, stderr: $(tr '\n' ' ' <"$GW_ERR" | cut -c1-300)"
  if [ -n "$CREATED_SERVER" ]; then
    start_gateway "$RESULTS/gateway2.stdout.log" "$RESULTS/gateway2.stderr.log"
    C2="$(count_family Chalmers)"
    echo "== restart on the same database: Chalmers total $C2 (before stop: $C1)," \
      "GET first id -> $(curl -sS --max-time 10 -o /dev/null -w 'HTTP %{http_code}' "$BASE/Patient/$ID1")"
    stop_gateway
  fi
else
  echo "== gateway died (exit status $GW_RC); full stderr in $GW_ERR"
fi
if [ "$(wc -c <"$GW_ERR")" -gt 0 ] && grep -qv 'stopped cleanly' "$GW_ERR"; then
  echo "== gateway stderr (tail):"; tail -20 "$GW_ERR" | sed 's/^/   /'
fi

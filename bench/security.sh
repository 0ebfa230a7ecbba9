#!/usr/bin/env bash
# fhirgate security bench: read-by-id throughput with authentication, consent and audit on, against
# the same server with them off. Target: the full chain costs at most COST_TARGET (30%) of read req/s.
#
#   bash bench/security.sh       (from anywhere; ~1.5 min with the defaults, plus the build)
#
# 1. Release build in <repo>/build-release (ninja), unless FHIRGATE_BIN is set.
# 2. Two gateways, each in its own fresh temp dir with its own config and database (security_setup.py
#    config): "off" ("security": {"enabled": false}) and "on" (enabled, consentPolicy opt-in).
#    Both bind 127.0.0.1 on port 0 with THREADS io threads; no profile enforcement.
#    on: bearer tokens for gp-practice (loader) and acute-trust (reader) via `fhirgate partner
#    add-token`, created before the server starts.
# 3. Load: PATIENTS synthetic Patients, then one Consent per Patient (active, opt-in, permit
#    Organization/acute-trust), over LOAD_CONNS keep-alive connections; on: as gp-practice, off: the
#    same requests without Authorization. So the reads in "on" are by a partner that did not supply
#    the Patient: every read authenticates, checks access, searches the Patient's Consents, decides,
#    and commits an AuditEvent before the response.
#    on: sanity checks (reader 200 on a consented Patient, 401 without token, 403/404 on a Patient
#    without Consent, supplier 200 on it).
# 4. Measure: a discarded WARMUP-second warm-up per mode, then RUNS x
#    `wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s --latency -s wrk/read_auth.lua` (GET /Patient/{id},
#    random ids; BEARER = the acute-trust token in "on"), alternating off/on run by run (order flips
#    each run). Both servers stay up; the one not measured is idle.
# 5. Report: median req/s, p50, p99, non-2xx (must be 0), socket errors, server CPU per mode; cost =
#    1 - on/off; PASS when cost <= COST_TARGET, else BELOW (ERRORS appended on any non-2xx/socket error).
# 6. Audit: the audit_event rows counted before the warm-up and after a clean SIGTERM, against the
#    requests wrk completed (warm-up included; requests in flight when wrk stops are audited too, so
#    up to CONNS per run more); then `fhirgate audit verify` (exit 0 expected). The "off" database
#    must have no audit rows.
#
# Knobs: FHIRGATE_BIN, THREADS=2, PATIENTS=2000, LOAD_CONNS=8, DURATION=10, CONNS=64, WRK_THREADS=2,
#   RUNS=3, WARMUP=2, WRK_TIMEOUT=10, COST_TARGET=0.30, IDLE_WAIT=60, IDLE_MAX_BUSY=15, KEEP_DB=1,
#   NO_REGISTRAR=1 (the config without consentRegistrar, for a binary from before it existed),
#   READER=acute-trust (READER=gp-practice reads as the supplier: the consent decision is then made
#   from the Patient's supplier tag without searching Consents, which isolates auth + audit).
# Output: console (also results/security_run.log), results/security_wrk_<mode>_<run>.txt,
#   results/security_summary.tsv, results/security_gateway_<mode>.log.
# Rules: everything binds 127.0.0.1; every load is bounded (wrk -d + timeout, loader --deadline +
# timeout); every process started here is stopped by its PID on exit; the temp dir is removed.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
RESULTS="$BENCH/results"
PY=/usr/bin/python3
[ -x "$PY" ] || PY="$(command -v python3)"
SETUP="$BENCH/security_setup.py"
SCRIPT="$BENCH/wrk/read_auth.lua"

THREADS="${THREADS:-2}"
PATIENTS="${PATIENTS:-2000}"
LOAD_CONNS="${LOAD_CONNS:-8}"
LOAD_DEADLINE="${LOAD_DEADLINE:-300}"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-64}"
WRK_THREADS="${WRK_THREADS:-2}"
RUNS="${RUNS:-3}"
WARMUP="${WARMUP:-2}"
WRK_TIMEOUT="${WRK_TIMEOUT:-10}"
COST_TARGET="${COST_TARGET:-0.30}"
READER="${READER:-acute-trust}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
MODES=(off on)

mkdir -p "$RESULTS"
rm -f "$RESULTS"/security_wrk_*.txt "$RESULTS"/security_summary.tsv "$RESULTS"/security_gateway_*.log
exec > >(tee "$RESULTS/security_run.log") 2>&1

. "$BENCH/lib.sh"  # process bookkeeping, cpu_ticks, now, alive, wait_idle
bench_tmpdir fhirgate-security

# ---- 1. build ----
echo "== fhirgate security bench $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs; $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}')"
echo "   THREADS=$THREADS PATIENTS=$PATIENTS RUNS=$RUNS DURATION=${DURATION}s CONNS=$CONNS WRK_THREADS=$WRK_THREADS COST_TARGET=$COST_TARGET READER=$READER"
if [ -n "${FHIRGATE_BIN:-}" ]; then
  BIN="$FHIRGATE_BIN"
else
  echo "== build (Release, $ROOT/build-release)"
  cmake -S "$ROOT" -B "$ROOT/build-release" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$RESULTS/security_build.log" 2>&1 \
    || { tail -30 "$RESULTS/security_build.log"; exit 1; }
  ninja -C "$ROOT/build-release" fhirgate >>"$RESULTS/security_build.log" 2>&1 \
    || { tail -30 "$RESULTS/security_build.log"; exit 1; }
  tail -1 "$RESULTS/security_build.log"
  BIN="$ROOT/build-release/gateway/fhirgate"
fi
[ -x "$BIN" ] || { echo "no gateway binary at $BIN" >&2; exit 1; }

# ---- 2./3. per mode: config, tokens, gateway, load ----
declare -A DIR CFG DB PID BASE IDS BEARER_OF GP_TOKEN
new_token() {  # new_token MODE HOLDER -> the token (last line of stdout)
  local out
  out="$(timeout 60 "$BIN" partner add-token "$2" --config "${CFG[$1]}" --db "${DB[$1]}")" \
    || { echo "partner add-token $2 failed" >&2; return 1; }
  printf '%s\n' "$out" | tail -1
}
start_gateway() {  # start_gateway MODE -> PID[MODE], BASE[MODE]
  local m="$1" out err i url=""
  out="$RESULTS/security_gateway_$m.log" err="${DIR[$m]}/stderr.log"
  "$BIN" serve --config "${CFG[$m]}" --port 0 --bind 127.0.0.1 --db "${DB[$m]}" --threads "$THREADS" \
    >"$out" 2>"$err" &
  PID[$m]=$!
  _PIDS+=("${PID[$m]}")
  for i in $(seq 1 300); do
    url="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$out" | head -1 || true)"
    [ -n "$url" ] && break
    alive "${PID[$m]}" || break
    sleep 0.2
  done
  if [ -z "$url" ]; then echo "gateway ($m) did not start; stdout/stderr:"; cat "$out" "$err"; exit 1; fi
  BASE[$m]="$url"
}
stop_gateway() {  # stop_gateway MODE -> STOP_RC
  local p="${PID[$1]}" i
  kill -TERM "$p" 2>/dev/null || true
  for i in $(seq 1 $((STOP_TIMEOUT * 10))); do alive "$p" || break; sleep 0.1; done
  if alive "$p"; then echo "gateway ($1) still running ${STOP_TIMEOUT}s after SIGTERM: SIGKILL"; kill -KILL "$p" 2>/dev/null || true; fi
  STOP_RC=0; wait "$p" 2>/dev/null || STOP_RC=$?
}
GW_DEAD=0
check_alive() {  # check_alive MODE WHAT
  if ! alive "${PID[$1]}"; then
    GW_DEAD=1
    echo "!! gateway ($1, pid ${PID[$1]}) DIED during $2; stderr tail:"; tail -40 "${DIR[$1]}/stderr.log" | sed 's/^/   /'
  fi
}
audit_count() { timeout 60 "$PY" "$SETUP" audit-count --db "${DB[$1]}" 2>/dev/null || echo "?"; }

for m in "${MODES[@]}"; do
  DIR[$m]="$TMPD/$m"; mkdir -p "${DIR[$m]}"
  CFG[$m]="${DIR[$m]}/gateway.json" DB[$m]="${DIR[$m]}/bench.db" IDS[$m]="${DIR[$m]}/ids.txt"
  "$PY" "$SETUP" config --out "${CFG[$m]}" --security "$m" ${NO_REGISTRAR:+--no-registrar}
  BEARER_OF[$m]="" GP_TOKEN[$m]=""
  if [ "$m" = on ]; then
    GP_TOKEN[$m]="$(new_token "$m" gp-practice)"
    BEARER_OF[$m]="$(new_token "$m" "$READER")"
    [ -n "${GP_TOKEN[$m]}" ] && [ -n "${BEARER_OF[$m]}" ] || { echo "no tokens"; exit 1; }
  fi
  echo "== security $m: start gateway ($THREADS threads, db ${DB[$m]})"
  start_gateway "$m"
  echo "   $(grep -m1 listening "$RESULTS/security_gateway_$m.log")"
  grep -v listening "$RESULTS/security_gateway_$m.log" | sed 's/^/   /' || true
  echo "== security $m: load $PATIENTS Patients + $PATIENTS Consents ($LOAD_CONNS keep-alive connections$([ "$m" = on ] && echo ', as gp-practice'))"
  wait_idle
  LOAD_RC=0
  timeout $((LOAD_DEADLINE + 90)) "$PY" "$SETUP" load --base "${BASE[$m]}" --count "$PATIENTS" --conns "$LOAD_CONNS" \
    --ids "${IDS[$m]}" --deadline "$LOAD_DEADLINE" --consent-for Organization/acute-trust \
    ${GP_TOKEN[$m]:+--token "${GP_TOKEN[$m]}"} || LOAD_RC=$?
  check_alive "$m" load
  [ "$GW_DEAD" = 0 ] || exit 1
  [ "$LOAD_RC" = 0 ] || { echo "!! loader reported errors (status $LOAD_RC)"; exit 1; }
  [ -s "${IDS[$m]}" ] || { echo "no ids were loaded"; exit 1; }
  if [ "$m" = on ]; then
    supplier=(); [ "$READER" = gp-practice ] && supplier=(--reader-is-supplier)
    timeout 120 "$PY" "$SETUP" check --base "${BASE[$m]}" --ids "${IDS[$m]}" \
      --reader-token "${BEARER_OF[$m]}" --loader-token "${GP_TOKEN[$m]}" \
      "${supplier[@]}" || { echo "!! sanity checks failed"; exit 1; }
  fi
done

# ---- 4. measure ----
AUDIT0="$(audit_count on)"
declare -A FILES CPUS WRK_DONE
for m in "${MODES[@]}"; do FILES[$m]="" CPUS[$m]="" WRK_DONE[$m]=0; done
done_requests() { awk '/requests in/ {n += $1} END {print n + 0}' "$1" 2>/dev/null || echo 0; }
run_wrk() {  # run_wrk MODE OUTFILE DURATION_S CONNS WRK_THREADS LATENCY(0/1) -> LAST_CPU
  local m="$1" out="$2" d="$3" c="$4" t="$5" c0 c1 t0 t1 rc=0 lat=()
  [ "$6" = 1 ] && lat=(--latency)
  c0="$(cpu_ticks "${PID[$m]}")"; t0="$(now)"
  IDS_FILE="${IDS[$m]}" BEARER="${BEARER_OF[$m]}" timeout $((d + WRK_TIMEOUT + 30)) \
    wrk -t"$t" -c"$c" -d"${d}s" --timeout "${WRK_TIMEOUT}s" "${lat[@]}" \
    -s "$SCRIPT" "${BASE[$m]}" >"$out" 2>&1 || rc=$?
  c1="$(cpu_ticks "${PID[$m]}")"; t1="$(now)"
  [ "$rc" = 0 ] || echo "wrk exited with status $rc" >>"$out"
  LAST_CPU="$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$CLK_TCK" \
    'BEGIN { printf "%.1f", (b - a) / hz / (e - s) * 100 }')"
  WRK_DONE[$m]=$(( ${WRK_DONE[$m]} + $(done_requests "$out") ))
}

if [ "$WARMUP" -gt 0 ]; then
  echo "== warm-up ${WARMUP}s per mode (4 connections, discarded)"
  for m in "${MODES[@]}"; do
    run_wrk "$m" "$RESULTS/security_wrk_${m}_warmup.txt" "$WARMUP" 4 1 0
    echo "   $m: $(grep -o 'Requests/sec: *[0-9.]*' "$RESULTS/security_wrk_${m}_warmup.txt" || echo 'no result')" \
      "$(grep -E 'Non-2xx|Socket errors' "$RESULTS/security_wrk_${m}_warmup.txt" | tr '\n' ' ' || true)"
  done
fi

echo "== $RUNS x ${DURATION}s per mode, alternating (wrk -t$WRK_THREADS -c$CONNS --latency, wrk/read_auth.lua)"
for i in $(seq 1 "$RUNS"); do
  if [ $((i % 2)) = 1 ]; then order=(off on); else order=(on off); fi
  for m in "${order[@]}"; do
    f="$RESULTS/security_wrk_${m}_$i.txt"
    wait_idle
    run_wrk "$m" "$f" "$DURATION" "$CONNS" "$WRK_THREADS" 1
    FILES[$m]+="${FILES[$m]:+,}$f" CPUS[$m]+="${CPUS[$m]:+,}$LAST_CPU"
    echo "   run $i security $m: $(grep -o 'Requests/sec: *[0-9.]*' "$f" || echo 'no result')," \
      "p99 $(awk '$1 == "99%" || $1 == "99.000%" {print $2}' "$f")" \
      "(server CPU $LAST_CPU%) $(grep -E 'Non-2xx|Socket errors' "$f" | tr '\n' ' ' || true)"
    check_alive "$m" "run $i"
    [ "$GW_DEAD" = 0 ] || exit 1
  done
done

# ---- 5. summary ----
echo
echo "== summary (median of $RUNS; server CPU = % of one core used by the server process during the run)"
SUMMARY_RC=0
"$PY" "$SETUP" summary --off "${FILES[off]}" --on "${FILES[on]}" --off-cpu "${CPUS[off]}" --on-cpu "${CPUS[on]}" \
  --target "$COST_TARGET" --out "$RESULTS/security_summary.tsv" || SUMMARY_RC=$?
if [ "$BUSY_RUNS" -gt 0 ]; then
  echo "!! $BUSY_RUNS measured run(s) started while the box was busy with other processes: treat the figures with care"
fi

# ---- 6. audit trail: rows written vs requests, then verify the hash chain ----
echo
for m in "${MODES[@]}"; do
  RSS="$(awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' "/proc/${PID[$m]}/status" 2>/dev/null || echo '?')"
  stop_gateway "$m"
  echo "== security $m: gateway stopped, exit status $STOP_RC, peak RSS $RSS; stderr: $(tr '\n' ' ' <"${DIR[$m]}/stderr.log" | cut -c1-200)"
done
AUDIT_OK=1
AUDIT1="$(audit_count on)" AUDIT_OFF="$(audit_count off)"
if [ "$AUDIT0" != "?" ] && [ "$AUDIT1" != "?" ]; then
  GREW=$((AUDIT1 - AUDIT0)) DONE="${WRK_DONE[on]}" SLACK=$((CONNS * RUNS + 4))
  if [ "$GREW" -ge "$DONE" ] && [ "$GREW" -le $((DONE + SLACK)) ]; then verdict=OK; else verdict=MISMATCH; AUDIT_OK=0; fi
  echo "== audit (on): audit_event rows $AUDIT0 -> $AUDIT1 (+$GREW) for $DONE reads wrk completed (warm-up included);" \
    "+$((GREW - DONE)) were in flight when wrk stopped (allowed 0..$SLACK): $verdict"
else
  echo "== audit (on): could not count audit_event rows (before: $AUDIT0, after: $AUDIT1)"; AUDIT_OK=0
fi
echo "== audit (off): audit_event rows $AUDIT_OFF (expected 0: no audit with security off)"
[ "$AUDIT_OFF" = 0 ] || AUDIT_OK=0
VERIFY_RC=0
VERIFY_OUT="$(timeout 600 "$BIN" audit verify --config "${CFG[on]}" --db "${DB[on]}" 2>&1)" || VERIFY_RC=$?
echo "== fhirgate audit verify (on): exit $VERIFY_RC: $(printf '%s' "$VERIFY_OUT" | tail -3 | tr '\n' ' ')"
[ "$VERIFY_RC" = 0 ] || AUDIT_OK=0

echo
echo "(raw wrk outputs: $RESULTS/security_wrk_*.txt; summary: $RESULTS/security_summary.tsv)"
if [ "$SUMMARY_RC" = 0 ] && [ "$AUDIT_OK" = 1 ]; then
  echo "RESULT: PASS"
else
  STATUS="$(awk -F'\t' 'NR == 2 {printf "%s (cost %.1f%%, target <= %.0f%%)", $12, $10 * 100, $11 * 100}' \
    "$RESULTS/security_summary.tsv" 2>/dev/null || true)"
  echo "RESULT: ${STATUS:-no summary}$([ "$AUDIT_OK" = 1 ] || echo '; AUDIT CHECK FAILED')"
  exit 1
fi

#!/usr/bin/env bash
# HL7 v2 benchmarks: parse rate on one core, and MLLP end to end beside the Medplum listener.
#
#   bash bench/mllp.sh           (~2 min with the defaults, plus the first build and npm install)
#
# 1. Release build in <repo>/build-release: fhirgate, parse_bench, mllp_load (bench/*.cpp).
# 2. Parse: parse_bench on the ADT^A01 template (parse + MSH-10, PID-3.1, PID-5.1; then parse + map to
#    Patient), median of RUNS x PARSE_SECONDS on one thread; then, when node and the peers' modules are
#    available, ../shared/bench/hl7/parse_bench.mjs (@medplum/core, simple-hl7, node-hl7-client) on the
#    same file.
# 3. MLLP, CONNS=8 connections, WARMUP + DURATION s per run, RUNS runs, the scenarios alternating (their
#    order rotates each run), median reported:
#      gateway-same      every message the same patient: parse, map, validate, update one Patient, commit
#                        (synchronous=FULL), ACK
#      gateway-distinct  mllp_load --distinct: a new NHS number and local id per message, so every
#                        message creates a Patient
#      medplum           @medplum/hl7 Hl7Connection (../shared/bench/hl7/mllp_server.mjs): parse + ACK only,
#                        nothing stored; skipped with a message when node or its modules are unavailable
#    Each gateway run gets a fresh database; afterwards the stored Patients (GET Patient?_summary=count)
#    are checked against the positive ACKs (AA, or CA: enhanced-mode commit accept, which the template's
#    MSH-15=AL asks for) the load generator received, warm-up and tail included (accepted_total): equal in
#    distinct mode, exactly 1 in same mode.
# 4. Summary table with targets: parse >= PARSE_TARGET msgs/s/core; gateway-same ahead of the Medplum listener
#    measured in the same run; gateway-distinct >= 1.5x SQLite one row per transaction at synchronous=FULL
#    (issue 18), which this script does not measure (bench/check does). PASS or BELOW (or ERRORS / REJECTED /
#    STORE-MISMATCH, which say what went wrong).
#
# Knobs: DURATION=10 RUNS=3 CONNS=8 WARMUP=1 ACK_TIMEOUT=10 PARSE_SECONDS=2 SCENARIOS="gateway-same
#   gateway-distinct medplum" NODE_PARSE=1 SKIP_BUILD=0 (use the binaries already in build-release/)
#   CONFIG (gateway --config) TEMPLATE (ADT file) MEDPLUM_PORT=12576 IDLE_WAIT=30 IDLE_MAX_BUSY=15
#   KEEP_DB=1, PARSE_TARGET=500000.
# Output: console + results/mllp_run.log; raw mllp_load output results/mllp_<scenario>_<run>.txt, gateway
# logs results/mllp_gateway_<scenario>_<run>.log, results/mllp_summary.tsv.
# Rules: everything binds 127.0.0.1; every load is time-bounded (mllp_load --duration + timeout, curl
# --max-time); every process started here is stopped by its PID on exit.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
SHARED="${SHARED_BENCH:-$ROOT/../shared/bench}"
BUILD="$ROOT/build-release"
RESULTS="$BENCH/results"
PY=/usr/bin/python3
[ -x "$PY" ] || PY="$(command -v python3)"

DURATION="${DURATION:-10}"
RUNS="${RUNS:-3}"
CONNS="${CONNS:-8}"
WARMUP="${WARMUP:-1}"
ACK_TIMEOUT="${ACK_TIMEOUT:-10}"
PARSE_SECONDS="${PARSE_SECONDS:-2}"
SCENARIOS="${SCENARIOS:-gateway-same gateway-distinct medplum}"
NODE_PARSE="${NODE_PARSE:-1}"
MEDPLUM_PORT="${MEDPLUM_PORT:-12576}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
IDLE_WAIT="${IDLE_WAIT:-30}"
IDLE_MAX_BUSY="${IDLE_MAX_BUSY:-15}"
export PARSE_TARGET="${PARSE_TARGET:-500000}"
if [ -z "${TEMPLATE:-}" ]; then
  if [ -f "$SHARED/data/adt_a01.hl7" ]; then TEMPLATE="$SHARED/data/adt_a01.hl7"; else TEMPLATE="$BENCH/data/adt_a01.hl7"; fi
fi

mkdir -p "$RESULTS"
rm -f "$RESULTS"/mllp_*
exec > >(tee "$RESULTS/mllp_run.log") 2>&1

# ---- process bookkeeping: everything started here is stopped by its PID on exit ----
_PIDS=()
TMPD="$(mktemp -d /tmp/fhirgate-mllp.XXXXXX)"
alive() { kill -0 "$1" 2>/dev/null; }
stop_pid() {  # SIGTERM, bounded wait, SIGKILL; STOP_RC = exit status
  local p="$1" i
  STOP_RC=""
  if alive "$p"; then
    kill -TERM "$p" 2>/dev/null || true
    for i in $(seq 1 $((STOP_TIMEOUT * 10))); do alive "$p" || break; sleep 0.1; done
    if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
  fi
  wait "$p" 2>/dev/null && STOP_RC=0 || STOP_RC=$?
  local kept=() q
  for q in "${_PIDS[@]:-}"; do [ -n "$q" ] && [ "$q" != "$p" ] && kept+=("$q"); done
  _PIDS=("${kept[@]:-}")
}
cleanup() {
  local p
  for p in "${_PIDS[@]:-}"; do if [ -n "$p" ]; then stop_pid "$p"; fi; done
  if [ "${KEEP_DB:-0}" = 1 ]; then echo "databases kept in $TMPD"; else rm -rf "$TMPD"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CLK_TCK="$(getconf CLK_TCK)"
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0; }
now() { date +%s.%N; }
cpu_busy_1s() {
  local a b
  a="$(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)"; sleep 1
  b="$(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)"
  echo "$a $b" | awk '{ d = $4 - $2; printf "%.0f", (d > 0 ? ($3 - $1) / d * 100 : 0) }'
}
wait_idle() {  # bounded wait until the box is at most IDLE_MAX_BUSY % busy; measures anyway after IDLE_WAIT s
  local t0=$SECONDS busy said=0
  while :; do
    busy="$(cpu_busy_1s)"
    [ "$busy" -le "$IDLE_MAX_BUSY" ] && return 0
    if [ $((SECONDS - t0)) -ge "$IDLE_WAIT" ]; then
      echo "   !! box still ${busy}% busy after ${IDLE_WAIT}s (other processes); measuring anyway"; return 0
    fi
    [ "$said" = 0 ] && { echo "   box ${busy}% busy (other processes): waiting up to ${IDLE_WAIT}s"; said=1; }
  done
}

echo "== fhirgate HL7 v2 bench $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs"
echo "   RUNS=$RUNS DURATION=${DURATION}s WARMUP=${WARMUP}s CONNS=$CONNS SCENARIOS=\"$SCENARIOS\""
echo "   template: $TEMPLATE"

# ---- 1. build ----
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== build (Release, $BUILD)"
  if [ ! -f "$BUILD/build.ninja" ]; then
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$RESULTS/mllp_build.log" 2>&1 \
      || { tail -30 "$RESULTS/mllp_build.log"; exit 1; }
  fi
  ninja -C "$BUILD" fhirgate parse_bench mllp_load >>"$RESULTS/mllp_build.log" 2>&1 \
    || { tail -30 "$RESULTS/mllp_build.log"; echo "build failed (SKIP_BUILD=1 uses the binaries already built)"; exit 1; }
fi
GATEWAY="$BUILD/gateway/fhirgate" PARSE_BENCH="$BUILD/bench/parse_bench" LOAD="$BUILD/bench/mllp_load"
for b in "$GATEWAY" "$PARSE_BENCH" "$LOAD"; do [ -x "$b" ] || { echo "missing $b" >&2; exit 1; }; done

# ---- node peers: the shared scripts, with their modules (npm ci into build-release/, never ../shared) ----
PEER_DIR=""
if ! command -v node >/dev/null; then
  echo "   node not found: no Medplum listener, no node parsers"
elif [ -d "$SHARED/hl7/node_modules/@medplum/hl7" ]; then
  PEER_DIR="$SHARED/hl7"
elif [ -f "$SHARED/hl7/package-lock.json" ]; then
  PEER_DIR="$BUILD/hl7-peer"
  mkdir -p "$PEER_DIR"
  for f in package.json package-lock.json mllp_server.mjs parse_bench.mjs; do
    cmp -s "$SHARED/hl7/$f" "$PEER_DIR/$f" || { cp -f "$SHARED/hl7/$f" "$PEER_DIR/$f"; chmod u+w "$PEER_DIR/$f"; }
  done
  if [ ! -d "$PEER_DIR/node_modules/@medplum/hl7" ] || [ "$PEER_DIR/package-lock.json" -nt "$PEER_DIR/node_modules" ]; then
    echo "== npm ci ($PEER_DIR)"
    (cd "$PEER_DIR" && timeout 300 npm ci --no-audit --no-fund >"$RESULTS/mllp_npm.log" 2>&1) \
      || { echo "   npm ci failed (see results/mllp_npm.log): no Medplum listener, no node parsers"; PEER_DIR=""; }
  fi
else
  echo "   $SHARED/hl7 not found: no Medplum listener, no node parsers"
fi

# ---- 2. parse ----
echo "== parse (one thread)"
wait_idle
"$PARSE_BENCH" "$TEMPLATE" --seconds "$PARSE_SECONDS" --runs "$RUNS" --target "$PARSE_TARGET" \
  >"$RESULTS/mllp_parse.txt" 2>&1 || echo "   !! parse_bench failed"
cat "$RESULTS/mllp_parse.txt"
if [ "$NODE_PARSE" = 1 ] && [ -n "$PEER_DIR" ]; then
  echo "== node parsers (../shared/bench/hl7/parse_bench.mjs, same file)"
  (cd "$PEER_DIR" && ADT="$TEMPLATE" RUNS="$RUNS" MIN_MS="$(awk -v s="$PARSE_SECONDS" 'BEGIN { printf "%d", s * 1000 }')" timeout 300 node parse_bench.mjs) \
    >"$RESULTS/mllp_node_parse.txt" 2>&1 || echo "   node parse_bench failed (results/mllp_node_parse.txt)"
  sed -n '/^message:/,$p' "$RESULTS/mllp_node_parse.txt"
fi

# ---- 3. MLLP ----
GW_PID="" MLLP_PORT="" HTTP_URL=""
start_gateway() {  # start_gateway DB LOG -> GW_PID MLLP_PORT HTTP_URL
  local db="$1" log="$2" i
  "$GATEWAY" serve --bind 127.0.0.1 --port 0 --mllp-port 0 --db "$db" ${CONFIG:+--config "$CONFIG"} >"$log" 2>&1 &
  GW_PID=$!
  _PIDS+=("$GW_PID")
  MLLP_PORT="" HTTP_URL=""
  for i in $(seq 1 300); do
    MLLP_PORT="$(sed -n 's/.*MLLP listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$log" | head -1)"
    HTTP_URL="$(sed -n 's|.*fhirgate listening on \(http://127\.0\.0\.1:[0-9][0-9]*/\).*|\1|p' "$log" | head -1)"
    [ -n "$MLLP_PORT" ] && [ -n "$HTTP_URL" ] && return 0
    alive "$GW_PID" || break
    sleep 0.1
  done
  echo "gateway did not start (no MLLP or HTTP listening line); its output:"; cat "$log"; exit 1
}
stored_patients() {
  { curl -s --max-time 10 "${HTTP_URL}Patient?_summary=count" || true; } | sed -n 's/.*"total":\([0-9][0-9]*\).*/\1/p'
}

MEDPLUM_PID=""
case " $SCENARIOS " in
  *" medplum "*)
    if [ -z "$PEER_DIR" ]; then
      echo "   medplum: skipped (node or its modules unavailable)"
      SCENARIOS="${SCENARIOS//medplum/}"
    elif (exec 3<>"/dev/tcp/127.0.0.1/$MEDPLUM_PORT") 2>/dev/null; then
      echo "   medplum: skipped (port $MEDPLUM_PORT already in use by another process; set MEDPLUM_PORT)"
      SCENARIOS="${SCENARIOS//medplum/}"
    else
      (cd "$PEER_DIR" && exec env IMPL=medplum PORT="$MEDPLUM_PORT" node mllp_server.mjs) \
        >"$RESULTS/mllp_medplum_server.log" 2>&1 &
      MEDPLUM_PID=$!
      _PIDS+=("$MEDPLUM_PID")
      for _ in $(seq 1 300); do
        grep -q "MLLP on" "$RESULTS/mllp_medplum_server.log" && break
        alive "$MEDPLUM_PID" || break
        sleep 0.1
      done
      if ! grep -q "MLLP on" "$RESULTS/mllp_medplum_server.log"; then
        echo "   medplum: skipped (listener did not start; results/mllp_medplum_server.log)"
        stop_pid "$MEDPLUM_PID"; MEDPLUM_PID=""
        SCENARIOS="${SCENARIOS//medplum/}"
      fi
    fi
    ;;
esac
read -r -a ORDER <<<"$SCENARIOS"

RAW="$RESULTS/mllp_raw.txt"
: >"$RAW"
echo "== MLLP end to end: $CONNS connections, ${WARMUP}s warm-up + ${DURATION}s, $RUNS run(s), order rotating"
for run in $(seq 1 "$RUNS"); do
  n=${#ORDER[@]}
  for k in $(seq 0 $((n - 1))); do
    scenario="${ORDER[$(((k + run - 1) % n))]}"
    out="$RESULTS/mllp_${scenario}_${run}.txt"
    args=(--port 0 --conns "$CONNS" --duration "$DURATION" --warmup "$WARMUP" --timeout "$ACK_TIMEOUT"
      --file "$TEMPLATE" --quiet)
    case "$scenario" in
      gateway-same | gateway-distinct)
        start_gateway "$TMPD/$scenario-$run.db" "$RESULTS/mllp_gateway_${scenario}_${run}.log"
        pid="$GW_PID"
        args[1]="$MLLP_PORT"
        [ "$scenario" = gateway-distinct ] && args+=(--distinct)
        ;;
      medplum)
        pid="$MEDPLUM_PID"
        args[1]="$MEDPLUM_PORT"
        ;;
      *) echo "unknown scenario $scenario" >&2; continue ;;
    esac
    wait_idle
    c0="$(cpu_ticks "$pid")"; t0="$(now)"
    rc=0
    timeout $((DURATION + WARMUP + ACK_TIMEOUT + 30)) "$LOAD" "${args[@]}" >"$out" 2>&1 || rc=$?
    c1="$(cpu_ticks "$pid")"; t1="$(now)"
    cpu="$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", (b - a) / hz / (e - s) * 100 }')"
    result="$(grep '^RESULT ' "$out" | tail -1 || true)"
    [ -n "$result" ] || result="RESULT msgs_per_s=0 errors=1 load_rc=$rc"
    stored="-" gw_rc="-"
    if [ "$scenario" != medplum ]; then
      stored="$(stored_patients)"; [ -n "$stored" ] || stored="?"
      stop_pid "$GW_PID"; gw_rc="$STOP_RC"
    fi
    echo "SCENARIO=$scenario RUN=$run CPU=$cpu STORED=$stored GW_RC=$gw_rc LOAD_RC=$rc $result" >>"$RAW"
    printf '   run %s %-17s %s (server CPU %s%%, stored Patients %s)\n' "$run" "$scenario" \
      "$(echo "$result" | grep -o 'msgs_per_s=[0-9]*' || echo 'msgs_per_s=?') $(echo "$result" | grep -o 'p99_ms=[0-9.]*' || true)" \
      "$cpu" "$stored"
    if grep -q '^first ACK that is not AA' "$out"; then
      echo "   !! $scenario answered other than AA/CA; the first such ACK:"
      awk '/^first ACK that is not AA/ { f = 1; next } f && /^  ./ { print "      " $0; next } f { exit }' "$out"
    fi
    [ "$gw_rc" = "-" ] || [ "$gw_rc" = 0 ] || echo "   !! gateway exited with status $gw_rc (results/mllp_gateway_${scenario}_${run}.log)"
  done
done
if [ -n "$MEDPLUM_PID" ]; then stop_pid "$MEDPLUM_PID"; fi

# ---- 4. summary ----
echo
"$PY" - "$RAW" "$RESULTS/mllp_parse.txt" "$RESULTS/mllp_summary.tsv" <<'PY'
import collections, os, re, statistics, sys

raw, parse_file, tsv = sys.argv[1:4]
parse_target = float(os.environ["PARSE_TARGET"])
runs = collections.OrderedDict()
for line in open(raw):
    kv = dict(x.split("=", 1) for x in line.split() if "=" in x)
    runs.setdefault(kv["SCENARIO"], []).append(kv)

def num(kv, k):
    try:
        return float(kv.get(k, "0"))
    except ValueError:
        return 0.0

def med(rs, k):
    return statistics.median(num(r, k) for r in rs)

medplum = med(runs["medplum"], "msgs_per_s") if "medplum" in runs else None
rows = []
print("| scenario | msgs/s (median) | p50 ms | p99 ms | AA | CA | AE/AR/other | mismatched | errors | server CPU % | stored check | target | status | msgs/s per run |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
notes = []
for name, rs in runs.items():
    rate = med(rs, "msgs_per_s")
    aa = sum(int(num(r, "aa")) for r in rs)
    ca = sum(int(num(r, "ca")) for r in rs)
    bad = sum(int(num(r, "ae") + num(r, "ar") + num(r, "other")) for r in rs)
    mism = sum(int(num(r, "mismatched")) for r in rs)
    errs = sum(int(num(r, "errors")) for r in rs)
    check, check_ok = "-", True
    if name.startswith("gateway"):
        parts = []
        for r in rs:
            stored, accepted = r["STORED"], int(num(r, "accepted_total"))
            want = accepted if name == "gateway-distinct" else min(accepted, 1)
            ok = stored.isdigit() and int(stored) == want
            check_ok &= ok
            parts.append(("%s" if ok else "%s!") % stored)
            if not ok:
                notes.append("%s run %s: %s Patients stored, expected %d (accepted_total=%d)" % (name, r["RUN"], stored, want, accepted))
            if r.get("GW_RC", "0") not in ("0", "-"):
                check_ok = False
                notes.append("%s run %s: gateway exit status %s" % (name, r["RUN"], r["GW_RC"]))
        check = ("OK " if check_ok else "MISMATCH ") + "/".join(parts)
        if name == "gateway-same":  # issue 18: ahead of the Medplum listener
            target = "> Medplum" + (" (%.0f)" % medplum if medplum is not None else ": not measured")
            met = None if medplum is None else rate > medplum
        else:  # issue 18: >= 1.5x SQLite one row per transaction at FULL, measured by bench/check
            target, met = ">= 1.5x SQLite 1 row/txn FULL: needs bench/check", None
        if errs or mism:
            status = "ERRORS"
        elif bad:
            status = "REJECTED"
        elif not check_ok:
            status = "STORE-MISMATCH"
        elif met is None:
            status = "-"
        else:
            status = "PASS" if met else "BELOW"
        if medplum is None and name == "gateway-same":
            notes.append("%s: no Medplum figure in this run, so no target applies" % name)
    else:
        target, status = "peer", ("ERRORS" if errs or mism else ("REJECTED" if bad else "-"))
    if ca:
        notes.append("%s answered CA (enhanced-mode commit accept: the template's MSH-15 is AL) %d times; counted as accepted" % (name, ca))
    per = ", ".join("%.0f" % num(r, "msgs_per_s") for r in rs)
    print("| %s | %.0f | %.3f | %.3f | %d | %d | %d | %d | %d | %.0f | %s | %s | %s | %s |" % (
        name, rate, med(rs, "p50_ms"), med(rs, "p99_ms"), aa, ca, bad, mism, errs, med(rs, "CPU"), check, target, status, per))
    rows.append("mllp-%s\t%.0f\t%.3f\t%.3f\t%d\t%s\t%s" % (name, rate, med(rs, "p50_ms"), med(rs, "p99_ms"), bad + mism + errs, status, per))

parse = {}
for line in open(parse_file):
    if line.startswith("RESULT "):
        kv = dict(x.split("=", 1) for x in line.split()[1:])
        parse[kv["op"]] = kv
if "parse" in parse:
    p = float(parse["parse"]["msgs_per_s"])
    print("| parse (one core) | %.0f | | | | | | | | | | >= %.0f | %s | |" % (p, parse_target, "PASS" if p >= parse_target else "BELOW"))
    rows.append("parse\t%.0f\t\t\t0\t%s\t" % (p, "PASS" if p >= parse_target else "BELOW"))
if "parse_map" in parse:
    print("| parse + map to Patient (one core) | %.0f | | | | | | | | | | - | - | |" % float(parse["parse_map"]["msgs_per_s"]))
for n in notes:
    print("note: " + n)
with open(tsv, "w") as f:
    f.write("\n".join(rows) + "\n")
PY

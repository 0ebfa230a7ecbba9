# Shared by the bench scripts (sourced, not run): process bookkeeping, CPU accounting and waiting for an
# idle box. Expects STOP_TIMEOUT (seconds a stopped process gets before SIGKILL).

# Everything a script starts goes into _PIDS and is stopped by its PID on exit; bench_tmpdir PREFIX makes
# the run's temporary folder (TMPD), removed on exit unless KEEP_DB=1.
_PIDS=()
bench_cleanup() {
  local p i
  for p in "${_PIDS[@]:-}"; do
    [ -n "$p" ] || continue
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null || true
      for i in $(seq 1 $((STOP_TIMEOUT * 10))); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
  done
  if [ "${KEEP_DB:-0}" = 1 ]; then echo "databases kept in $TMPD"; else rm -rf "$TMPD"; fi
}
bench_tmpdir() {
  TMPD="$(mktemp -d "/tmp/$1.XXXXXX")"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

CLK_TCK="$(getconf CLK_TCK)"
cpu_ticks() {  # utime+stime of PID in clock ticks (fields 14, 15 of /proc/PID/stat)
  sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0
}
now() { date +%s.%N; }
alive() { kill -0 "$1" 2>/dev/null; }

# wait_idle: the box is shared; before each measured run wait (bounded by IDLE_WAIT s) until the
# whole machine is at most IDLE_MAX_BUSY % busy over 1 s, else go on and say so (BUSY_RUNS counts them).
IDLE_WAIT="${IDLE_WAIT:-60}" IDLE_MAX_BUSY="${IDLE_MAX_BUSY:-15}" BUSY_RUNS=0
cpu_busy_1s() {
  local a b
  a="$(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)"; sleep 1
  b="$(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)"
  echo "$a $b" | awk '{ d = $4 - $2; printf "%.0f", (d > 0 ? ($3 - $1) / d * 100 : 0) }'
}
wait_idle() {
  local t0=$SECONDS busy said=0
  while :; do
    busy="$(cpu_busy_1s)"
    [ "$busy" -le "$IDLE_MAX_BUSY" ] && return 0
    if [ $((SECONDS - t0)) -ge "$IDLE_WAIT" ]; then
      echo "   !! box still ${busy}% busy after ${IDLE_WAIT}s of waiting (other processes); measuring anyway"
      BUSY_RUNS=$((BUSY_RUNS + 1)); return 0
    fi
    if [ "$said" = 0 ]; then
      echo "   box ${busy}% busy (other processes): waiting up to ${IDLE_WAIT}s for it to settle"; said=1
    fi
  done
}

# build_release TARGET...: builds the targets in ROOT/build-release (Release, Ninja); BIN is FHIRGATE_BIN
# when set, else the gateway built there.
build_release() {
  cmake -S "$ROOT" -B "$ROOT/build-release" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$ROOT/build-release" "$@" >/dev/null
  BIN="${FHIRGATE_BIN:-$ROOT/build-release/gateway/fhirgate}"
}

# serve_gateway CONFIG DB: starts `fhirgate serve` on a free port (logs in TMPD/out.log, err.log) and waits
# for its URL; sets PID and URL, or prints the log and exits.
serve_gateway() {
  "$BIN" serve --config "$1" --port 0 --db "$2" >"$TMPD/out.log" 2>"$TMPD/err.log" &
  PID=$!
  _PIDS+=("$PID")
  URL=""
  for _ in $(seq 1 100); do
    URL="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$TMPD/out.log" | head -1 || true)"
    [ -n "$URL" ] && return 0
    alive "$PID" || break
    sleep 0.2
  done
  cat "$TMPD/out.log" "$TMPD/err.log"
  exit 1
}

#!/usr/bin/env bash
# End-to-end MLLP throughput: ADT^A01 in, parsed, mapped to Patient, validated, stored durably (the same
# NHS number each time, so every message updates one Patient), ACK out. Load from the shared bench's
# mllp_load (../shared/bench/hl7/mllp_load.cpp, built into build-release/), 8 persistent connections.
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
SHARED="$ROOT/../shared/bench"
BUILD="$ROOT/build-release"
[ -f "$SHARED/hl7/mllp_load.cpp" ] || { echo "needs ../shared/bench/hl7/mllp_load.cpp" >&2; exit 2; }
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
ninja -C "$BUILD" fhirgate >/dev/null
g++ -O2 -std=c++17 -o "$BUILD/mllp_load" "$SHARED/hl7/mllp_load.cpp" -lpthread
tmp="$(mktemp -d)"
"$BUILD/gateway/fhirgate" serve --bind 127.0.0.1 --port 0 --mllp-port 0 --db "$tmp/bench.db" >"$tmp/out" 2>"$tmp/err" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do grep -q "listening on http" "$tmp/out" && break; sleep 0.1; done
port="$(sed -n 's/.*MLLP listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/out")"
"$BUILD/mllp_load" --port "$port" --conns "${CONNS:-8}" --duration "${DURATION:-10}" --warmup 1 \
  --file "$SHARED/data/adt_a01.hl7"

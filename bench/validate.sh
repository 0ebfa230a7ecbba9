#!/usr/bin/env bash
# Validation throughput (one core) on a typical Patient (bench/data/patient.json) and a ~1 MB Synthea
# Bundle (from ../shared/corpus when present), and the resident memory of the loaded definitions.
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
BUILD="$ROOT/build-release"
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
ninja -C "$BUILD" validate_bench >/dev/null
files=("$BENCH/data/patient.json")
synthea="$ROOT/../shared/corpus/synthea-r4"
if [ -d "$synthea" ]; then
  files+=("$(ls -S "$synthea"/*.json | head -1)")
else
  echo "(../shared/corpus/synthea-r4 not found: measuring the Patient only)" >&2
fi
"$BUILD/bench/validate_bench" "$ROOT/profiles" "${files[@]}"

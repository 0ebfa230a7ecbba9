#!/usr/bin/env bash
# FHIR JSON <-> XML conversion throughput (MB/s of input, each direction parsing its input text and
# producing output text) on a ~1 MB Synthea Bundle (from ../shared/corpus when present) and on a typical
# Patient (bench/data/patient.json). Release build in build-release/.
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
BUILD="$ROOT/build-release"
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
ninja -C "$BUILD" convert_bench >/dev/null
files=("$BENCH/data/patient.json")
synthea="$ROOT/../shared/corpus/synthea-r4"
if [ -d "$synthea" ]; then
  largest="$(ls -S "$synthea"/*.json | head -1)"
  files+=("$largest")
else
  echo "(../shared/corpus/synthea-r4 not found: measuring the Patient only)" >&2
fi
"$BUILD/bench/convert_bench" "$ROOT/profiles" "${files[@]}"

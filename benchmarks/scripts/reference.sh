#!/usr/bin/env bash
# The committed reference set: every suite's reference profile on this machine, one after the
# other, with nothing else running; then the report. Wall time per suite goes to stdout.
#   bash benchmarks/scripts/reference.sh [OUT=results/reference] [REPORT=reports/reference]
set -euo pipefail
out=${1:-results/reference}
report=${2:-reports/reference}
suites=(dose-sweep level-sweep thread-sweep blocksize-sweep metadata table1 detectors gain-recovery)
for s in "${suites[@]}"; do
  start=$SECONDS
  mrczbench run --suite "$s" --profile reference --out "$out/$s" --no-progress > "$out.$s.log" 2>&1 \
    || { echo "$s: FAILED (see $out.$s.log)"; continue; }
  echo "$s: $((SECONDS - start)) s, load at start $(grep -o '"load_at_start": [^,]*' "$out/$s"/*.run.json | tail -1)"
done
mrczbench report "$out" --out "$report"

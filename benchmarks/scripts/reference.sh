#!/usr/bin/env bash
# The committed reference set: every suite's reference profile on this machine, one after the
# other, with nothing else running; then the report. Wall time per suite goes to stdout.
#   bash benchmarks/scripts/reference.sh [OUT=results/reference] [REPORT=reports/reference]
set -euo pipefail
out=${1:-results/reference}
report=${2:-reports/reference}
suites=(${SUITES:-dose-sweep level-sweep thread-sweep blocksize-sweep metadata table1 detectors gain-recovery})
for s in "${suites[@]}"; do
  # let the load average of the previous suite decay (it would mark this run busy), at most 3 min
  for _ in $(seq 36); do awk '{exit !($1 < 0.8)}' /proc/loadavg && break; sleep 5; done
  rm -rf "${out:?}/$s"
  start=$SECONDS
  mrczbench run --suite "$s" --profile reference --out "$out/$s" --no-progress > "$out.$s.log" 2>&1 \
    || { echo "$s: FAILED (see $out.$s.log)"; continue; }
  load=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["load_at_start"])' "$out/$s"/*.run.json)
  stopped=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["timing"].get("stopped"))' "$out/$s"/*.run.json)
  echo "$s: $((SECONDS - start)) s wall; load at start: $load; cases stopped: $stopped"
done
[ -n "${NO_REPORT:-}" ] || mrczbench report "$out" --out "$report"

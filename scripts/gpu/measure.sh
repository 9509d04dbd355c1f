#!/usr/bin/env bash
# On the lent GPU machine, from the repository root:
#   bash scripts/gpu/measure.sh NAME "OVERRIDES" [NAME "OVERRIDES" ...]
# sets the machine up (setup.sh), runs `python -m profiler_kit OVERRIDES` into runs/NAME for each
# pair, then packs what fits into $OUT and prints a short table last (collect.py).
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/begin.sh /tmp/pk-runs
while [ $# -ge 2 ]; do
  name=$1; overrides=$2; shift 2
  echo "=== $name: python -m profiler_kit $overrides"
  start=$(date +%s)
  # shellcheck disable=SC2086
  PYTHONUNBUFFERED=1 python3 -m profiler_kit $overrides hydra.run.dir="$RUNS/$name" > "$RUNS/$name.log" 2>&1
  rc=$?; echo "exit $rc after $(( $(date +%s) - start )) s"; tail -25 "$RUNS/$name.log"
done
python3 scripts/gpu/collect.py "$RUNS" "${OUT:-/tmp/out}"

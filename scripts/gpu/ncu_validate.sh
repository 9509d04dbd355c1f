#!/usr/bin/env bash
# On the lent GPU machine, from the repository root:
#   DEADLINE_S=520 bash scripts/gpu/ncu_validate.sh NAME "OVERRIDES" [NAME "OVERRIDES" ...]
# Like measure.sh, for runs with measure=ncu (minutes per mode): each run gets what is left of
# DEADLINE_S (counted from the start of this script, set-up included) and is stopped with SIGTERM
# when that runs out: its summary then says "interrupted", and the ncu_<mode>.json files already
# written stay. The pack (collect.py) leaves ncu's large .ncu-rep files on the machine.
set -uo pipefail
cd "$(dirname "$0")/../.."
t0=$(date +%s)
source scripts/gpu/begin.sh /tmp/pk-runs
deadline=$(( t0 + ${DEADLINE_S:-520} ))
while [ $# -ge 2 ]; do
  name=$1; overrides=$2; shift 2
  left=$(( deadline - $(date +%s) ))
  if [ "$left" -le 45 ]; then echo "=== $name: skipped, $left s left"; continue; fi
  echo "=== $name ($left s left): python -m profiler_kit $overrides"
  start=$(date +%s)
  # shellcheck disable=SC2086
  PYTHONUNBUFFERED=1 timeout --signal=TERM --kill-after=20 "$left" python3 -m profiler_kit $overrides \
    hydra.run.dir="$RUNS/$name" > "$RUNS/$name.log" 2>&1
  echo "exit $? after $(( $(date +%s) - start )) s"
  grep -E "ncu|Nsight|measur" "$RUNS/$name.log" | tail -12
  tail -14 "$RUNS/$name.log"
done
pkill -f profiler_kit.capture.ncu_child 2>/dev/null; pkill -x ncu 2>/dev/null
python3 scripts/gpu/collect.py "$RUNS" "${OUT:-/tmp/out}"

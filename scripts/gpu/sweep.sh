#!/usr/bin/env bash
# On the lent GPU machine, from the repository root: the standard sweep (conf/sweep/standard.yaml)
# with Hydra's basic launcher (jobs one after another on cuda:0), then the same sweep with the
# gpu_pool launcher (one job per GPU of the machine), whose per-job results must match and whose
# wall time shows what the pool buys. Packs the sweep folders into $OUT (collect.py) and prints
# the progress lines last. Aggregate and render on a
# development machine: python -m profiler_kit.analyze JOB_DIR ...; python -m profiler_kit.aggregate SWEEP_DIR
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/begin.sh /tmp/pk-sweep
run() {   # name, then the overrides
  local name=$1; shift
  local start=$(date +%s)
  PYTHONUNBUFFERED=1 timeout "${JOB_TIMEOUT:-420}" python3 -m profiler_kit -m "$@" report.enabled=false \
    hydra.sweep.dir="$RUNS/$name" > "$RUNS/$name.log" 2>&1
  echo "=== $name: exit $? after $(( $(date +%s) - start )) s: python -m profiler_kit -m $*"
}
JOB_TIMEOUT=${BASIC_TIMEOUT:-330} run standard-basic +sweep=standard hydra/launcher=basic
# POOL_ARGS: the pool's sweep, the standard one by default (a subset on a one-GPU machine, where the
# pool runs its jobs one after another and only the match with the basic launcher is in question)
# shellcheck disable=SC2086
JOB_TIMEOUT=${POOL_TIMEOUT:-240} run standard-gpu_pool ${POOL_ARGS:-+sweep=standard} hydra/launcher=gpu_pool
python3 scripts/gpu/collect.py "$RUNS" "${OUT:-/tmp/out}" > "$RUNS/collect.log" 2>&1; tail -3 "$RUNS/collect.log"
for f in "$RUNS"/*.log; do echo "--- $f"; grep -E "profiler_kit: (job|sweep)|#[0-9]+ (on|done)|Error|error" "$f" | cut -c1-220 | tail -12; done

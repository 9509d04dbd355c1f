#!/usr/bin/env bash
# On the lent GPU machine, from the repository root: execution modes (issue 9) and the one-GPU
# proof of the gpu_pool launcher, in one call. Each run is `python -m profiler_kit OVERRIDES`
# into $RUNS/NAME with its own time limit; collect.py packs the folders into $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/begin.sh /tmp/pk-exec
run() {   # limit_s, name, then the overrides
  local limit=$1 name=$2; shift 2
  local start=$(date +%s)
  PYTHONUNBUFFERED=1 timeout "$limit" python3 -m profiler_kit "$@" report.enabled=false > "$RUNS/$name.log" 2>&1
  echo "=== $name: exit $? after $(( $(date +%s) - start )) s: python -m profiler_kit $*"
  grep -A12 "^mode  " "$RUNS/$name.log" | tail -12
}
MODES="modes=[vanilla,xformers,sdpa_cudnn]"
for point in sd15_512 sd15_768 sd15_1024 sdxl_1024; do
  run 100 "graphs-$point" point=$point execution=cuda_graphs $MODES hydra.run.dir="$RUNS/graphs-$point"
done
run 90 graphs-sd15_512-repeat point=sd15_512 execution=cuda_graphs $MODES hydra.run.dir="$RUNS/graphs-sd15_512-repeat"
# pack what is measured so far: if the call runs out of time later, this much still comes back
python3 scripts/gpu/collect.py "$RUNS" "${OUT:-/tmp/out}" > "$RUNS/collect.log" 2>&1
run "${COMPILE_LIMIT:-100}" compile-sd15_512 point=sd15_512 execution=compile "modes=[vanilla,sdpa_cudnn]" \
  warmup=3 iterations=10 hydra.run.dir="$RUNS/compile-sd15_512"
PAIR="point=sd15_512,sd15_768 modes=[vanilla,sdpa] warmup=3 iterations=5 profiler.enabled=false"
# shellcheck disable=SC2086
run 60 pool-basic -m hydra/launcher=basic $PAIR hydra.sweep.dir="$RUNS/pool-basic"
# shellcheck disable=SC2086
run 60 pool-gpu_pool -m hydra/launcher=gpu_pool $PAIR hydra.sweep.dir="$RUNS/pool-gpu_pool"
grep -h "#[0-9]* on\|job [0-9]" "$RUNS"/pool-*.log | cut -c1-200
python3 scripts/gpu/collect.py "$RUNS" "${OUT:-/tmp/out}" > "$RUNS/collect.log" 2>&1; tail -3 "$RUNS/collect.log"

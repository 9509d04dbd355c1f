#!/usr/bin/env bash
# On the lent GPU machine, from the repository root (issue 23: the diffusion transformers):
#   DEADLINE_S=560 bash scripts/gpu/transformers.sh            # xformers built by setup.sh
#   SKIP_XFORMERS=1 DEADLINE_S=560 bash scripts/gpu/transformers.sh   # without building it
# SD3 medium (fp16, CFG batch 2) and FLUX.1 [dev] (bf16, batch 1) at 1024 px, every attention
# mode (those that cannot run here are recorded as unavailable with their reason), eagerly, then
# replayed from CUDA graphs; peak memory per mode. Few steps (3 warm-up + 5 timed): a Flux step
# is 0.2-0.8 s, and four runs must fit one device call. Each run has its own limit, and
# everything measured so far is packed into $OUT after each (scripts/gpu/collect.py), so a call
# that runs out of time still returns what it measured. Reports are rebuilt on the development
# machine: python -m profiler_kit.analyze RUN_DIR.
set -uo pipefail
cd "$(dirname "$0")/../.."
t0=$(date +%s)
source scripts/gpu/begin.sh /tmp/pk-dit
deadline=$(( t0 + ${DEADLINE_S:-560} ))
run() {   # limit_s, name, then the overrides
  local limit=$1 name=$2; shift 2
  local left=$(( deadline - $(date +%s) ))
  if [ "$left" -le 40 ]; then echo "=== $name: skipped, $left s left"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  local start=$(date +%s)
  PYTHONUNBUFFERED=1 timeout --signal=TERM --kill-after=15 "$limit" python3 -m profiler_kit "$@" \
    "modes=[all]" warmup=3 iterations=5 report.enabled=false hydra.run.dir="$RUNS/$name" > "$RUNS/$name.log" 2>&1
  echo "=== $name: exit $? after $(( $(date +%s) - start )) s: python -m profiler_kit $*"
  grep -A14 "^mode  " "$RUNS/$name.log" | tail -14
  grep -iE "fallback|fell|asked for|out of memory|error" "$RUNS/$name.log" | grep -v "^mode" | tail -4
  python3 scripts/gpu/collect.py "$RUNS" "${OUT:-/tmp/out}" > "$RUNS/collect.log" 2>&1
}
run 140 flux_1024-eager point=flux_1024
run 100 sd3_1024-eager point=sd3_1024
run 160 flux_1024-graphs point=flux_1024 execution=cuda_graphs
run 120 sd3_1024-graphs point=sd3_1024 execution=cuda_graphs
python3 scripts/gpu/collect.py "$RUNS" "${OUT:-/tmp/out}" > "$RUNS/collect.log" 2>&1; tail -12 "$RUNS/collect.log"
echo "total $(( $(date +%s) - t0 )) s"

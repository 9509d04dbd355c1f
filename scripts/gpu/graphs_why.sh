#!/usr/bin/env bash
# On the lent GPU machine, from the repository root (issue 19: the why under CUDA graphs and
# torch.compile): PART=1 or PART=2 bash scripts/gpu/graphs_why.sh
#   PART 1: graphs at 512 and 768 px (capture traces profiled), the eager profile of the same
#           calls (attention's share to compare), compile reduce-overhead, the trace shapes
#           other tools write (scripts/gpu/graph_trace_shapes.py);
#   PART 2: compile reduce-overhead and default, SDXL 1024 under graphs, eager 768;
#   PART 3: measure=ncu under graphs;
#   PART 4: compile (reduce-overhead) of SDXL 1024 px with every compared mode, then SD 1.5
#           1024 px under graphs with every mode (the shared graph pool: separate pools ran
#           vanilla out of memory on the H100);
#   PART 5: xformers under compile at 512 px (fits after transformers.sh in one call);
#   PART 6: SD 1.5 1024 px under graphs, vanilla, cuDNN and math, timed (the shared pool on an
#           80 GB card; SKIP_XFORMERS=1);
#   PART 7: SDXL 1024 px under compile, vanilla and xformers, timed (one run fits one call), then
#           PART 5's run;
#   PART 8: SDXL 1024 px under compile, vanilla and cuDNN, timed: on the machine that ran PART 7,
#           vanilla's compile comes from Inductor's cache in /tmp;
#   PART 9: PART 6's run, then SDXL 1024 px under compile, vanilla and cuDNN, timed (no xformers:
#           SKIP_XFORMERS=1 saves its build);
#   PART 10: SDXL 1024 px under graphs, vanilla, xformers and cuDNN (the standard sweep's SDXL
#           graph job, when a sweep's call ran out of time before it);
#   PART 11: SD 1.5 768 px under compile (reduce-overhead), vanilla, xformers and cuDNN, timed
#           (the one cell of issue 19's matrix measured on the H100 only, 2026-12-05).
# Each run has its own limit, and everything measured so far is packed into $OUT after each,
# so a call that runs out of time still returns what it measured.
set -uo pipefail
cd "$(dirname "$0")/../.."
t0=$(date +%s)
source scripts/gpu/begin.sh /tmp/pk-why
deadline=$(( t0 + ${DEADLINE_S:-560} ))
run() {   # limit_s, name, then the overrides
  local limit=$1 name=$2; shift 2
  local left=$(( deadline - $(date +%s) ))
  if [ "$left" -le 40 ]; then echo "=== $name: skipped, $left s left"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  local start=$(date +%s)
  PYTHONUNBUFFERED=1 timeout --signal=TERM --kill-after=15 "$limit" python3 -m profiler_kit "$@" \
    report.enabled=false hydra.run.dir="$RUNS/$name" > "$RUNS/$name.log" 2>&1
  echo "=== $name: exit $? after $(( $(date +%s) - start )) s: python -m profiler_kit $*"
  grep -A8 "^mode  " "$RUNS/$name.log" | tail -8
  grep -iE "warn|error|capture" "$RUNS/$name.log" | grep -v "^mode" | tail -4
  python3 scripts/gpu/collect.py "$RUNS" "${OUT:-/tmp/out}" > "$RUNS/collect.log" 2>&1
}
MODES="modes=[vanilla,xformers,sdpa_cudnn]"
if [ "${PART:-1}" = 1 ]; then
  run 120 graphs-sd15_512 point=sd15_512 execution=cuda_graphs $MODES
  mkdir -p "$RUNS/shapes"
  OUT="$RUNS/shapes" timeout 100 python3 scripts/gpu/graph_trace_shapes.py > "$RUNS/shapes.log" 2>&1
  echo "=== shapes: exit $?"; tail -4 "$RUNS/shapes.log"
  run 100 eager-sd15_512 point=sd15_512 $MODES iterations=5
  run 140 graphs-sd15_768 point=sd15_768 execution=cuda_graphs $MODES
  run 150 compile-ro-sd15_512 point=sd15_512 execution=compile compile_mode=reduce-overhead \
    "modes=[vanilla,sdpa_cudnn]" warmup=3 iterations=10
elif [ "${PART}" = 2 ]; then
  run 150 compile-ro-sd15_512 point=sd15_512 execution=compile compile_mode=reduce-overhead \
    "modes=[vanilla,sdpa_cudnn]" warmup=3 iterations=10
  run 120 graphs-sdxl_1024 point=sdxl_1024 execution=cuda_graphs $MODES
  run 60 eager-sd15_768 point=sd15_768 $MODES iterations=5
  run 150 compile-default-sd15_512 point=sd15_512 execution=compile compile_mode=default \
    "modes=[vanilla,sdpa_cudnn]" warmup=3 iterations=10
elif [ "${PART}" = 4 ]; then
  # SDXL under compile needs minutes of Inductor compilation per mode (99 s did not finish vanilla)
  run 400 compile-ro-sdxl_1024 point=sdxl_1024 execution=compile compile_mode=reduce-overhead \
    $MODES warmup=3 iterations=10
  run 100 graphs-sd15_1024-pool point=sd15_1024 execution=cuda_graphs "modes=[all]"
elif [ "${PART}" = 6 ]; then
  # the shared graph pool on an 80 GB card, timing included (SKIP_XFORMERS=1: no build needed)
  run 150 graphs-sd15_1024-pool3 point=sd15_1024 execution=cuda_graphs "modes=[vanilla,sdpa_cudnn,sdpa_math]"
elif [ "${PART}" = 7 ]; then
  run 420 compile-ro-sdxl_1024-xformers point=sdxl_1024 execution=compile \
    compile_mode=reduce-overhead "modes=[vanilla,xformers]" warmup=3 iterations=10
  run 150 compile-ro-sd15_512-xformers point=sd15_512 execution=compile compile_mode=reduce-overhead \
    "modes=[vanilla,xformers]" warmup=3 iterations=10
elif [ "${PART}" = 8 ]; then
  run 560 compile-ro-sdxl_1024-cudnn point=sdxl_1024 execution=compile \
    compile_mode=reduce-overhead "modes=[vanilla,sdpa_cudnn]" warmup=3 iterations=10
elif [ "${PART}" = 9 ]; then
  run 150 graphs-sd15_1024-pool3 point=sd15_1024 execution=cuda_graphs "modes=[vanilla,sdpa_cudnn,sdpa_math]"
  run 560 compile-ro-sdxl_1024-cudnn point=sdxl_1024 execution=compile \
    compile_mode=reduce-overhead "modes=[vanilla,sdpa_cudnn]" warmup=3 iterations=10
elif [ "${PART}" = 10 ]; then
  run 200 graphs-sdxl_1024 point=sdxl_1024 execution=cuda_graphs $MODES
elif [ "${PART}" = 11 ]; then
  run 330 compile-ro-sd15_768 point=sd15_768 execution=compile compile_mode=reduce-overhead \
    $MODES warmup=3 iterations=10
elif [ "${PART}" = 5 ]; then
  run 150 compile-ro-sd15_512-xformers point=sd15_512 execution=compile compile_mode=reduce-overhead \
    "modes=[vanilla,xformers]" warmup=3 iterations=10
else
  run 500 ncu-graphs-sd15_512 point=sd15_512 execution=cuda_graphs "modes=[vanilla,sdpa_cudnn]" measure=ncu
fi
python3 scripts/gpu/collect.py "$RUNS" "${OUT:-/tmp/out}" > "$RUNS/collect.log" 2>&1; tail -12 "$RUNS/collect.log"
echo "total $(( $(date +%s) - t0 )) s"

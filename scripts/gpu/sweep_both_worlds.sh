#!/usr/bin/env bash
# On the lent GPU machine, from the repository root (issue 19 item 6, issue 22 item 4): the
# standard sweep (+sweep=standard: five points x execution=eager,cuda_graphs, every mode) with
# Hydra's basic launcher (reports rendered later), then packed into $OUT:
#   sweep.tgz        every job's summary.json (with its analysis) and log, the sweep's aggregate;
#   traces-N.tgz     the SD 1.5 512/768 px jobs' traces (eager and replay, with the graph captures),
#                    for the critical-path what-ifs checked against the replayed steps on CPU.
# Render and publish on a development machine: python scripts/publish_reports.py ...
set -uo pipefail
cd "$(dirname "$0")/../.."
t0=$(date +%s)
source scripts/gpu/begin.sh /tmp/pk-sweep2
SWEEP="$RUNS/standard"
PYTHONUNBUFFERED=1 timeout --signal=TERM --kill-after=20 "${SWEEP_TIMEOUT:-520}" \
  python3 -m profiler_kit -m +sweep=standard hydra/launcher=basic report.enabled=false \
  hydra.sweep.dir="$SWEEP" > "$RUNS/standard.log" 2>&1
echo "=== sweep: exit $? after $(( $(date +%s) - t0 )) s"
grep -E "profiler_kit: (job|sweep)" "$RUNS/standard.log" | cut -c1-200 | tail -14
# a sweep cut short still gets its aggregate (python -m profiler_kit.aggregate rebuilds it)
[ -f "$SWEEP/sweep.json" ] || python3 -m profiler_kit.aggregate "$SWEEP" > "$RUNS/aggregate.log" 2>&1
mkdir -p "${OUT:-/tmp/out}"
(cd "$RUNS" && find standard -name summary.json -o -name "*.log" -o -name "sweep.*" \
   -o -name multirun.yaml | tar czf "${OUT:-/tmp/out}/sweep.tgz" -T -)
python3 - "$SWEEP" "${OUT:-/tmp/out}" <<'PY'
import os, sys, tarfile
sweep, out = sys.argv[1], sys.argv[2]
limit, n, size, tar = 15 * 2**20, 0, 0, None
paths = []
for root, _d, files in os.walk(sweep):
    if "sd15_512" in root or "sd15_768" in root:
        paths += [os.path.join(root, f) for f in files if f.startswith(("trace_", "capture_"))]
for p in sorted(paths, key=os.path.getsize):
    s = os.path.getsize(p)
    if tar is None or size + s > limit:
        if tar: tar.close()
        if n >= 6 or s > limit: print("left behind:", os.path.relpath(p, sweep)); continue
        tar = tarfile.open(os.path.join(out, f"traces-{n}.tgz"), "w:gz"); n += 1; size = 0
    tar.add(p, arcname=os.path.relpath(p, sweep)); size += s
if tar: tar.close()
PY
ls -la "${OUT:-/tmp/out}"
python3 scripts/gpu/collect.py "$SWEEP" /tmp/collect-unused 2>/dev/null | sed -n '/^run /,$p' | cut -c1-110
echo "total $(( $(date +%s) - t0 )) s"

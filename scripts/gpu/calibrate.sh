#!/usr/bin/env bash
# On the lent GPU machine, from the repository root (SKIP_XFORMERS=1 is enough): the card's
# calibrated roofs (issue 11, part 4), measured twice to see their spread, then a run judged
# against them, so the report's Roofs table shows datasheet and measured side by side.
#   SKIP_XFORMERS=1 bash scripts/gpu/calibrate.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/begin.sh /tmp/pk-roofs
export PROFILER_KIT_CACHE="$RUNS/cache"
for pass in 1 2; do
  python3 - "$RUNS/roofs-$pass.json" <<'PY'
import sys, torch
from profiler_kit.capture import calibrate, environment
from profiler_kit.records import write_record
device = torch.device("cuda")
cal = calibrate.measure_roofs(device, environment.describe(device))
write_record(sys.argv[1], cal)
print(calibrate.summary_line(cal), f"({cal.calibration_s:.1f} s)")
for r in cal.roofs:
    print(f"  {r.engine:7s} {r.dtype:12s} {r.measured_per_s:12.4g} /s  datasheet {r.datasheet_per_s or 0:12.4g}  "
          f"IQR {r.time_ms.iqr_ms / r.time_ms.median_ms:.1%}  {r.method}")
PY
done
# a run that measures (calibrate=always) and judges against the measured roofs; tiny steps suffice
PYTHONUNBUFFERED=1 timeout 240 python3 -m profiler_kit roofs=measured calibrate=always \
  "modes=[vanilla,sdpa_cudnn]" warmup=3 iterations=5 hydra.run.dir="$RUNS/sd15-512-roofs" \
  > "$RUNS/sd15-512-roofs.log" 2>&1
echo "run: exit $?"; grep -iE "roofs|calib" "$RUNS/sd15-512-roofs.log" | head -5
python3 scripts/gpu/collect.py "$RUNS" "${OUT:-/tmp/out}"

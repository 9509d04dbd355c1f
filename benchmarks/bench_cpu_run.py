"""Where the default CPU run's time goes: `python -m profiler_kit` (SD 1.5 UNet, 512 px, random
weights, fp32) on this machine, phase by phase from the run's own log timestamps.

    python benchmarks/bench_cpu_run.py [OVERRIDES ...]        # e.g. model=tiny for a quick check

Prints a Markdown block for docs/benchmarks.md: machine, command, wall time of the whole process
(imports included) and the phases: start-up (imports, Hydra), UNet build, each mode's check +
warm-up + profiled call, the interleaved timing, the analysis of the traces and the report.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]\[profiler_kit\]\[\w+\] - (.*)$")


def main(overrides: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "profiler_kit", *overrides, f"hydra.run.dir={run_dir}"]
        load = os.getloadavg()
        start_wall = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        wall = time.time() - start_wall
        if proc.returncode:
            sys.exit(proc.stderr[-2000:])
        events = []
        for line in (run_dir / "profiler_kit.log").read_text().splitlines():
            m = STAMP.match(line)
            if m:
                t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                events.append((t, m.group(2)))
    first = events[0][0]
    marks = [("start-up (imports, Hydra, config)", start_wall, first)]

    def at(pattern: str, after: float = 0.0) -> float:
        return next(t for t, msg in events if t >= after and re.search(pattern, msg))
    built = at(r"^(UNet|model) ready")   # "model ready" since the transformers (issue 23)
    marks.append(("model build (random weights) and inputs", first, built))
    prev = built
    for t, msg in events:
        m = re.match(r"^(\S+): (ok|oom|error|unavailable)( in|:)", msg)
        if m and t >= prev:
            marks.append((f"mode {m.group(1)}: check, warm-up, profiled call", prev, t))
            prev = t
    timed = at(r"^run folder:")
    marks.append(("interleaved timing", prev, timed))
    analysed = max(t for t, msg in events if "trace analyzed" in msg)
    marks.append(("analysis of the traces", timed, analysed))
    end = events[-1][0]
    marks.append(("report and summary table", analysed, end))
    print(f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; load average before {load[0]:.1f}")
    print(f"- command: `python -m profiler_kit {' '.join(overrides)}`".replace("  ", " "))
    print(f"- wall time of the whole process: {wall:.1f} s")
    for name, a, b in marks:
        print(f"  - {name}: {b - a:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])

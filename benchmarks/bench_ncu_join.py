"""What joining an Nsight Compute measurement adds to ``python -m profiler_kit.analyze``.

    python benchmarks/bench_ncu_join.py [--reps 5]

For each committed H200 trace with its measurement (tests/data/sd-ncu/*/), the analyzer runs in
a fresh process (imports included) with and without ``--ncu``, alternating, after one untimed
warm-up each; wall time around the process, peak RSS from ``/usr/bin/time -v``. The join aligns
~1,300 kernel names per profiler step (difflib), groups the bytes and judges each op again with
its measured bytes; it must stay a small part of the analysis.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "sd-ncu"


def _run(args: list[str]) -> tuple[float, float]:
    """(wall s, peak RSS MB) of one analyzer process."""
    with tempfile.TemporaryDirectory() as out:
        cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "profiler_kit.analyze", *args, "--out", out, "--no-report"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    rss_kb = float(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return wall, rss_kb / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
          f"{len(__import__('os').sched_getaffinity(0))} cores, python {platform.python_version()}")
    print(f"{'trace':32s} {'kernels':>7s} {'plain s':>8s} {'--ncu s':>8s} {'added':>7s} {'plain MB':>9s} {'--ncu MB':>9s}")
    for trace in sorted(DATA.glob("*/trace_*.json.gz")):
        mode = trace.name[len("trace_"):-len(".json.gz")]
        ncu = trace.parent / f"ncu_{mode}.json.gz"
        plain_args, join_args = [str(trace)], [str(trace), "--ncu", str(ncu)]
        _run(plain_args), _run(join_args)                     # warm-up: page cache, pyc
        plain, joined = [], []
        for _ in range(args.reps):
            plain.append(_run(plain_args))
            joined.append(_run(join_args))
        p_wall = statistics.median(w for w, _ in plain)
        j_wall = statistics.median(w for w, _ in joined)
        p_rss = max(r for _, r in plain)
        j_rss = max(r for _, r in joined)
        kernels = sum(1 for _ in __import__("gzip").open(ncu, "rt").read().split('"index"')) - 1
        print(f"{trace.parent.name + '/' + trace.name:32s} {kernels:>7d} {p_wall:>8.2f} {j_wall:>8.2f} "
              f"{j_wall - p_wall:>+7.2f} {p_rss:>9.0f} {j_rss:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory of a command and every process it forks, summed: what the analyzer's worker
processes (profiler_kit/trace/workers.py) cost together, which ``/usr/bin/time``'s "maximum
resident set size" does not tell (it is the largest single process's).

    python benchmarks/tree_memory.py -- python -m profiler_kit.analyze /tmp/big1g.json --out /tmp/o --no-report

Samples /proc every 100 ms (Linux only; smaps_rollup walks the page tables, so sampling more
often costs seconds of system time on a 1 GB process): the sum over the process tree of PSS
(proportional set size: a page shared by two processes, such as the trace text a forked worker
reads, counts half in each, so the sum counts it once) and of RSS (shared pages counted in each
process: an upper bound). Prints wall time, the peaks and the exit status. A peak shorter than
the sampling interval can be missed; the trace text and the columns, which make the peak, live
for seconds. The sampling costs CPU: time the command apart (/usr/bin/time), not under this.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

INTERVAL_S = 0.1


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out.extend(int(c) for c in f.read().split())
    except OSError:
        pass
    return out


def _tree(pid: int) -> list[int]:
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(_children(p))
    return seen


def _kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in kB of one process; (0, 0) once it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        sys.exit(__doc__)
    start = time.perf_counter()
    proc = subprocess.Popen(argv)
    peak_pss = peak_rss = peak_procs = 0
    while proc.poll() is None:
        pids = _tree(proc.pid)
        sizes = [_kb(p) for p in pids]
        peak_pss = max(peak_pss, sum(s[0] for s in sizes))
        peak_rss = max(peak_rss, sum(s[1] for s in sizes))
        peak_procs = max(peak_procs, len(pids))
        time.sleep(INTERVAL_S)
    wall = time.perf_counter() - start
    print(f"wall {wall:.2f} s; peak over the process tree ({peak_procs} processes at most): "
          f"PSS {peak_pss / 1e6:.3f} GB, RSS {peak_rss / 1e6:.3f} GB (kB = 1000 B here: "
          f"{peak_pss} / {peak_rss} kB); exit {proc.returncode}", file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())

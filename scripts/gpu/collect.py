"""Pack a GPU session's run folders into $OUT within the device tool's limits (8 files, 16 MiB
each) and print a short table of every run last, so the reply's tail shows the results.

usage: python3 scripts/gpu/collect.py RUNS_DIR OUT_DIR
Traces go into the archive while they fit (smallest runs first); summaries, logs and reports always.
"""

import os
import sys
import tarfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))   # the repo's profiler_kit
from profiler_kit.records import read_summary  # noqa: E402

LIMIT_BYTES = 15 * 2**20          # per archive, under the tool's 16 MiB a file
MAX_ARCHIVES = 6


def main(runs: str, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    # kernels_*.csv and report.html are left behind: python -m profiler_kit.analyze RUN_DIR
    # rebuilds them (and each summary's analysis) from the traces on the development machine.
    small, traces = [], []
    for root, _dirs, files in os.walk(runs):
        for name in files:
            # ncu's own .ncu-rep reports are large (tens of MB); ncu_<mode>.json holds their figures
            if name.startswith("kernels_") or name == "report.html" or name.endswith(".ncu-rep"):
                continue
            path = os.path.join(root, name)
            (traces if name.startswith(("trace_", "capture_")) else small).append(path)
    archives, current, size = [], None, 0

    def open_next():
        nonlocal current, size
        if current:
            current.close()
        current = tarfile.open(os.path.join(out, f"runs-{len(archives)}.tgz"), "w:gz")
        archives.append(current)
        size = 0

    open_next()
    left = []
    for path in sorted(small, key=os.path.getsize) + sorted(traces, key=os.path.getsize):
        n = os.path.getsize(path)
        if size + n > LIMIT_BYTES:
            if len(archives) >= MAX_ARCHIVES or n > LIMIT_BYTES:
                left.append(path)
                continue
            open_next()
        current.add(path, arcname=os.path.relpath(path, runs))
        size += n
    current.close()
    for path in left:
        print(f"left on the machine (too large to bring back): {os.path.relpath(path, runs)}")
    print(f"{'run':<22} {'mode':<15} {'status':<11} {'step ms':>9} {'IQR':>6} {'peak GiB':>9} {'x vs ref':>8}  kernels")
    for name in sorted(os.listdir(runs)):
        summary_path = os.path.join(runs, name, "summary.json")
        if not os.path.exists(summary_path):
            continue
        s = read_summary(summary_path)
        for mode, rec in s.modes.items():
            if not rec.ok or rec.step_ms is None:
                print(f"{name:<22} {mode:<15} {rec.status:<11} {(rec.reason or '')[:60]}")
                continue
            cmp = s.comparison.get(mode)
            peak = rec.peak_allocated_bytes or 0
            kern = ",".join(rec.attention_kernels[:2])[:50]
            print(f"{name:<22} {mode:<15} {'ok':<11} {rec.step_ms.median_ms:>9.2f} {rec.step_ms.iqr_ms:>6.2f} "
                  f"{peak / 2**30:>9.2f} {cmp.speedup if cmp else 1.0:>8.2f}  {kern}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

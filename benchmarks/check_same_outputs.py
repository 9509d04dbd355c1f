"""Check that a change to the analyzer left its outputs unchanged: analysis.json (parsed, every
figure), kernels.csv, measured.csv and comparison.json (byte for byte) of two source trees on the
same traces.

    git archive BASE profiler_kit conf | tar -x -C /tmp/base_src
    python benchmarks/check_same_outputs.py --before /tmp/base_src [--set all] [TRACE ...]

Why: a speed change (a faster decoder, a column-wise pass) must not move a figure. Each tree runs
``python -m profiler_kit.analyze TRACE --no-report`` in a fresh process with its own root first
on PYTHONPATH; the output folders are compared file by file (report.html is left out: it is
the report's, benchmarked and tested apart). analysis.json holds no timing or date field, so
nothing is excluded from it; a key named in IGNORED_KEYS would be. Exit 1 on any difference,
with the first differing path per file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from trace_sets import SETS, resolve  # noqa: E402

# Keys of analysis.json that may differ between two runs of the same code (none today: the
# record holds figures of the trace only, no wall time or date). Kept as a named, empty set so
# that adding one is a deliberate act.
IGNORED_KEYS: frozenset[str] = frozenset()


def _run(src: Path, trace: Path, out: Path, extra: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, "-m", "profiler_kit.analyze", str(trace), "--out",
                           str(out), "--no-report", *extra], cwd=src, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{src}: failed on {trace}: {done.stderr.strip()[-2000:]}")


def _first_difference(a, b, where: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key in IGNORED_KEYS:
                continue
            if key not in a or key not in b:
                return f"{where}/{key}: only in {'after' if key not in a else 'before'}"
            found = _first_difference(a[key], b[key], f"{where}/{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items before, {len(b)} after"
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    if a != b or type(a) is not type(b):
        return f"{where}: {a!r} before, {b!r} after"
    return None


def compare_folders(before: Path, after: Path) -> list[str]:
    """One line per differing file; empty when the outputs are the same."""
    problems = []
    names = {p.relative_to(before) for p in before.rglob("*") if p.is_file()}
    names |= {p.relative_to(after) for p in after.rglob("*") if p.is_file()}
    for name in sorted(names - {Path("report.html")}):
        if name.name == "report.html":
            continue
        a, b = before / name, after / name
        if not a.exists() or not b.exists():
            problems.append(f"{name}: only {'after' if not a.exists() else 'before'}")
        elif name.suffix == ".json":
            found = _first_difference(json.loads(a.read_text()), json.loads(b.read_text()))
            if found:
                problems.append(f"{name}: {found}")
        elif a.read_bytes() != b.read_bytes():
            problems.append(f"{name}: differs")
    return problems


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("traces", type=Path, nargs="*")
    p.add_argument("--before", type=Path, required=True,
                   help="root of the old source tree (holds profiler_kit/ and conf/)")
    p.add_argument("--after", type=Path, default=ROOT, help="root of the new tree (default: this one)")
    p.add_argument("--set", choices=sorted(SETS), action="append", default=[],
                   help="named traces (benchmarks/trace_sets.py); repeatable")
    p.add_argument("--keep", type=Path, help="keep the outputs in this folder")
    args = p.parse_args()
    traces = list(args.traces) + [t for name in args.set for t in resolve(name)]
    if not traces:
        p.error("give traces or --set")
    work = args.keep or Path(tempfile.mkdtemp(prefix="check_same_"))
    failed = 0
    for trace in traces:
        extra = []
        if isinstance(trace, tuple):       # (replay, capture) pair of a named set
            trace, capture = trace
            extra = ["--capture", str(capture)]
        slot = work / trace.name.removesuffix(".gz")
        _run(args.before.resolve(), trace.resolve(), slot / "before", extra)
        _run(args.after.resolve(), trace.resolve(), slot / "after", extra)
        problems = compare_folders(slot / "before", slot / "after")
        print(f"{'same' if not problems else 'DIFFERENT'}: {trace.name}"
              + "".join(f"\n    {line}" for line in problems[:10]))
        failed += bool(problems)
    print(f"{len(traces) - failed} of {len(traces)} traces give the same outputs")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

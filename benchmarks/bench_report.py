"""Report size and first-render time in headless Chromium; or, with --python, what the report
costs in Python.

    python benchmarks/bench_report.py                       # the committed SD run if present, else a trace
    python benchmarks/bench_report.py --trace a.json.gz --trace b.json.gz --runs 7
    python benchmarks/bench_report.py --python --trace a.json.gz --run tests/data/sd --reps 5

Renders a report from real data (the committed GPU run's summary.json with its traces, or
Kineto traces through profiler_kit.analysis), then opens it N times in fresh Chromium pages with
every network request blocked. First render = navigation start -> the last Plotly figure drawn,
measured inside the page (performance.now() when the report's own counter sees every figure
done). Prints a Markdown block for docs/benchmarks.md.

--python measures each --trace on its own and each --run folder (default: both TraceLens traces
and the committed SD run), every figure from a fresh process, as a user pays it:
- render: the analyzer's outputs already on disk (analysis.json, or the run's summary.json), a
  fresh process with the analysis package loaded (as the CLI has it when it reaches the report)
  times `import profiler_kit.report` and the render itself (render_trace_report, or
  render_run_folder), i.e. every second of Python the report adds;
- command: `python -m profiler_kit.analyze TARGET` with and without --no-report, alternated,
  wall and CPU (user + system) time per process; the difference is the report's share.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from profiler_kit.analysis import analyze_trace, compare  # noqa: E402
from profiler_kit.analysis.run import analyze_run  # noqa: E402
from profiler_kit.report import render_run_report, render_trace_report  # noqa: E402

SD = ROOT / "tests" / "data" / "sd"
DEFAULT_TRACES = [ROOT / "tests/data/third_party/tracelens/Falconsai_nsfw_image_detection__1016002.json.gz",
                  ROOT / "tests/data/third_party/tracelens/gaunernst_bert-small-uncased__1016001.json.gz"]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def render(args, out: Path) -> tuple[Path, str, float]:
    """Analyse (not timed), then render (timed); returns the page, what it shows, render seconds."""
    if not args.trace and (SD / "summary.json").exists():
        run = out.parent / "run"                      # the committed run folder, analysed as after a run
        shutil.copytree(SD, run)
        summary = analyze_run(str(run))
        t1 = time.perf_counter()
        path = render_run_report(summary, out)
        what = f"run report of tests/data/sd/summary.json ({', '.join(summary.modes)})"
    else:
        traces = [Path(t) for t in (args.trace or DEFAULT_TRACES)]
        analyses = [analyze_trace(t, label=t.name.split(".")[0][:24]) for t in traces]
        cmp = compare(analyses[0].record, analyses[1].record) if len(analyses) == 2 else None
        t1 = time.perf_counter()
        path = render_trace_report({a.label: a.record for a in analyses}, cmp, out)
        what = "trace report of " + " + ".join(t.name for t in traces) + (" with comparison" if cmp else "")
    return path, what, time.perf_counter() - t1


# The report step of `python -m profiler_kit.analyze`, alone in a fresh process: the analysis
# package is loaded first (untimed: the CLI has it by the time it reaches the report), then the
# report's import and its render are timed. A trace: every analysis.json the analyzer wrote (one
# per GPU of a multi-GPU trace), each read untimed (decoding is the analyzer's) and rendered
# beside itself as the CLI does; a run folder: render_run_folder, summary.json read included.
RENDER_CHILD = """
import json, sys, time
from pathlib import Path
import profiler_kit.analysis, profiler_kit.analysis.run
from profiler_kit.records import read_analysis
target = Path(sys.argv[1])
t0, c0 = time.perf_counter(), time.process_time()
import profiler_kit.report as report
import_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
render_s = 0.0
if (target / "summary.json").is_file():
    t0, c0 = time.perf_counter(), time.process_time()
    report.render_run_folder(target)
    render_s, cpu_s = time.perf_counter() - t0, cpu_s + time.process_time() - c0
else:
    for path in sorted(target.rglob("analysis.json")):
        a = read_analysis(path)
        t0, c0 = time.perf_counter(), time.process_time()
        report.render_trace_report({a.label: a}, None, path.parent / "report.html")
        render_s, cpu_s = render_s + time.perf_counter() - t0, cpu_s + time.process_time() - c0
print(json.dumps({"import_s": import_s, "render_s": render_s, "cpu_s": cpu_s}))
"""


def _process(cmd: list[str]) -> tuple[float, float, str]:
    """(wall s, CPU s user+system, stdout) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {shlex.join(cmd)}\n{out.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stdout


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def python_cost(target: Path, reps: int, work: Path) -> str:
    """Markdown rows for one trace or run folder: the report's Python, then the whole command."""
    if (target / "summary.json").is_file():        # the CLI rewrites a run folder: use a copy
        folder = work / target.name
        shutil.copytree(target, folder)
        cli, out = [str(folder)], folder
    else:
        out = work / target.name.split(".")[0]
        cli = [str(target), "--out", str(out)]
    analyze = [sys.executable, "-m", "profiler_kit.analyze", *cli]
    _process(analyze)                               # warm-up: page cache, and the outputs to render from
    renders, imports, cpus = [], [], []
    with_report, without = [], []
    for _ in range(reps):
        cost = json.loads(_process([sys.executable, "-c", RENDER_CHILD, str(out)])[2])
        imports.append(cost["import_s"])
        renders.append(cost["render_s"])
        cpus.append(cost["cpu_s"])
        with_report.append(_process(analyze)[:2])
        without.append(_process(analyze + ["--no-report"])[:2])
    totals = [i + r for i, r in zip(imports, renders)]
    wall = [w for w, _ in with_report], [w for w, _ in without]
    cpu = [c for _, c in with_report], [c for _, c in without]
    wall_diff = statistics.median(wall[0]) - statistics.median(wall[1])
    cpu_diff = statistics.median(cpu[0]) - statistics.median(cpu[1])
    return (f"| {target.name} | {_spread(imports)} | {_spread(renders)} | **{_spread(totals)}** | "
            f"{_spread(cpus)} | {_spread(wall[0])} | {_spread(wall[1])} | {wall_diff:.3f} | {cpu_diff:.3f} |")


def python_main(args) -> None:
    targets = [Path(t) for t in args.trace or []] + [Path(r) for r in args.run or []]
    if not targets:
        targets = DEFAULT_TRACES + [SD]
    host = machine()               # before the runs: the load average describes the machine, not us
    started = dt.datetime.now(dt.timezone.utc)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for target in targets:
            rows.append(python_cost(target.resolve(), args.reps, Path(tmp)))
    load_after = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    # it changes the import column: without .pyc files each project module is compiled anew
    bytecode = ("; PYTHONDONTWRITEBYTECODE is set, so the project's modules are compiled at every import"
                if os.environ.get("PYTHONDONTWRITEBYTECODE") else "")
    print(f"""### {started:%Y-%m-%d %H:%M} UTC: the report's Python cost

- machine: {host}; load average after the run {load_after}
- command: `python {shlex.join(['benchmarks/bench_report.py', *sys.argv[1:]])}`
- {args.reps} reps each, a fresh process per figure, median (min-max), seconds; wall time unless
  CPU (user + system) is named{bytecode}

| target | import profiler_kit.report | render | **report's Python (import + render)** | its CPU time | `analyze` wall | `analyze --no-report` wall | wall difference | CPU difference |
|---|---|---|---|---|---|---|---|---|""")
    print("\n".join(rows))


def first_render_ms(path: Path, runs: int, executable: str) -> tuple[list[float], str]:
    from playwright.sync_api import sync_playwright
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        version = browser.version
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1366, "height": 768})   # cold cache
            page = context.new_page()
            fetched = []
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://")
                       else (fetched.append(r.request.url), r.abort()))
            page.goto(path.resolve().as_uri())
            page.wait_for_function("window.pkReport && window.pkReport.ready", timeout=60_000)
            times.append(page.evaluate("window.pkReport.renderMs"))
            if fetched:
                raise SystemExit(f"the report tried to fetch {fetched}")
            context.close()
        browser.close()
    return times, version


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}; load average before the run {load}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", action="append", help="Kineto trace(s) instead of the committed SD run")
    parser.add_argument("--runs", type=int, default=5, help="page loads to time (each in a fresh context)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--python", action="store_true",
                        help="the report's Python cost (render, and the analyze command with and "
                        "without it) instead of Chromium's first render")
    parser.add_argument("--run", action="append", help="with --python: a run folder (holding summary.json)")
    parser.add_argument("--reps", type=int, default=5, help="with --python: fresh processes per figure")
    args = parser.parse_args()
    if args.python:
        python_main(args)
        return
    host = machine()               # before rendering: the load average describes the machine, not us
    with tempfile.TemporaryDirectory() as tmp:
        path, what, render_s = render(args, Path(tmp) / "report.html")
        size = path.stat().st_size
        times, version = first_render_ms(path, args.runs, args.chromium)
    median = statistics.median(times)
    print(f"""### {dt.date.today().isoformat()}: {what}

- machine: {host}; headless Chromium {version}
- command: `python {shlex.join(['benchmarks/bench_report.py', *sys.argv[1:]])}`
- report size: {size / 1e6:.2f} MB ({size:,} bytes; limit 6 MB), of which plotly.js {len(__import__('plotly.offline', fromlist=['get_plotlyjs']).get_plotlyjs()) / 1e6:.2f} MB
- Python render (analysis excluded): {render_s * 1e3:.0f} ms
- first render, navigation start to every figure drawn, {len(times)} cold page loads: median {median:.0f} ms (min {min(times):.0f}, max {max(times):.0f}); goal < 2000 ms: {"met" if median < 2000 else "NOT met"}
- all loads: {", ".join(f"{t:.0f}" for t in times)} ms""")


if __name__ == "__main__":
    main()

"""Report size and first-render time in headless Chromium.

    python benchmarks/bench_report.py                       # the committed SD run if present, else a trace
    python benchmarks/bench_report.py --trace a.json.gz --trace b.json.gz --runs 7

Renders a report from real data (the committed GPU run's summary.json with its traces, or
Kineto traces through profiler_kit.analysis), then opens it N times in fresh Chromium pages with
every network request blocked. First render = navigation start -> the last Plotly figure drawn,
measured inside the page (performance.now() when the report's own counter sees every figure
done). Prints a Markdown block for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import shutil
import statistics
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
    args = parser.parse_args()
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

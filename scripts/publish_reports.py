"""Publish a GPU sweep into reports/<batch>/ and rebuild the index of every published report.

usage: python scripts/publish_reports.py BATCH SWEEP_DIR     # publish one sweep (or one run folder), then the index
       python scripts/publish_reports.py --index              # only rebuild reports/README.md

A sweep folder (python -m profiler_kit -m ..., its jobs analysed with the current analyzer)
becomes reports/<batch>/: sweep.html, sweep.json, sweep.csv, and per job <job>/report.html and
<job>/summary.json (the measured figures and findings; the per-trace analysis, which the traces
rebuild, is left out to keep the repository small). Every page shares one plotly.min.js in
reports/ (one copy for every batch). reports/README.md lists every published report with a one-line verdict.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from profiler_kit import units  # noqa: E402
from profiler_kit.aggregate import SWEEP_CSV, SWEEP_HTML, SWEEP_JSON, aggregate, run_folders, sweep_csv  # noqa: E402
from profiler_kit.records import Summary, read_summary, read_sweep, write_record, write_text_atomic  # noqa: E402
from profiler_kit.report import render_run_report, render_sweep_report  # noqa: E402
from profiler_kit.run_folder import REPORT_FILE, SUMMARY_FILE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "reports"


def publish_run(folder: Path, job: str, out: Path) -> None:
    """One run: its report, and its summary without the per-trace analyses."""
    summary = read_summary(folder / SUMMARY_FILE)
    render_run_report(summary, out / job / REPORT_FILE, plotly_js="directory", plotly_js_dir=ROOT)
    measured = msgspec.structs.replace(summary, modes={m: msgspec.structs.replace(r, analysis=None)
                                                       for m, r in summary.modes.items()})
    write_record(out / job / SUMMARY_FILE, measured)


def publish(batch: str, sweep_dir: Path) -> None:
    out = ROOT / batch
    out.mkdir(parents=True, exist_ok=True)
    if (sweep_dir / SUMMARY_FILE).is_file():            # a single run folder: no sweep page
        publish_run(sweep_dir, sweep_dir.name, out)
        print(f"published the run {sweep_dir} to {out / sweep_dir.name}")
        return
    for folder in run_folders(sweep_dir):
        publish_run(folder, folder.relative_to(sweep_dir).as_posix(), out)
    sweep = aggregate(sweep_dir)        # from the full analyses; the links point at the copies
    sweep = msgspec.structs.replace(sweep, jobs=[msgspec.structs.replace(j, report=f"{j.job}/{REPORT_FILE}")
                                                 for j in sweep.jobs])
    write_record(out / SWEEP_JSON, sweep)
    write_text_atomic(out / SWEEP_CSV, sweep_csv(sweep))
    render_sweep_report(sweep, out / SWEEP_HTML, plotly_js="directory", plotly_js_dir=ROOT)
    print(f"published {len(sweep.jobs)} jobs of {sweep_dir} to {out}")


def verdict(summary: Summary) -> str:
    """One line: the memory-efficient mode's speed-up (step and kernels) and memory saved."""
    eff, ref = summary.efficient_mode, summary.reference_mode
    if list(summary.modes) == [ref]:                  # one mode, its own reference: nothing compared
        record = summary.modes[ref]
        line = f"{ref} only"
        if record.step_ms is not None:
            line += f", {record.step_ms.median_ms:.1f} ms a step"
        # the join's verdict as the analysis stored it (published summaries keep findings, not analyses)
        joined = next((f for f in summary.findings if f.rule == "estimate_vs_measured" and f.subject == ref), None)
        if joined is not None and "total_error" in joined.figures:
            line += f"; HBM bytes estimated {joined.figures['total_error']:+.1%} against Nsight Compute"
            if "attention_error" in joined.figures:
                line += f" (attention {joined.figures['attention_error']:+.1%})"
        return line
    cmp = summary.comparison.get(eff or "")
    if cmp is None:
        return f"{eff or 'no efficient mode'} not compared with {ref} ({summary.modes.get(ref).status if ref in summary.modes else 'missing'})"
    line = f"{eff} {units.speedup(cmp.speedup)} step speed-up over {ref}"
    if cmp.kernel_speedup:
        line += f" ({units.speedup(cmp.kernel_speedup)} in GPU kernel time)"
    if cmp.memory_saved_fraction is not None:
        line += f", {units.percent(cmp.memory_saved_fraction, 0)} less peak memory"
    oom = [m for m, r in summary.modes.items() if r.status == "oom"]
    return line + (f"; out of memory: {', '.join(oom)}" if oom else "")


def index() -> None:
    lines = ["# Published reports", "",
             "Reports measured on this project's lent GPUs. Open a report in a browser: it loads `plotly.min.js` "
             "from this folder (one copy for every batch) and nothing from the network. Each batch's `*.summary.json` / `summary.json` "
             "hold the measured figures; a sweep's `sweep.json` / `sweep.csv` hold every job and mode.", ""]
    for batch in sorted((p for p in ROOT.iterdir() if p.is_dir()), reverse=True):
        lines += [f"## {batch.name}", ""]
        if (batch / SWEEP_JSON).exists():
            sweep = read_sweep(batch / SWEEP_JSON)
            key = [f.title for f in sweep.findings if f.level == "key"]
            lines.append(f"- [sweep report]({batch.name}/{SWEEP_HTML}): {units.plural(len(sweep.jobs), 'job')}"
                         + (": " + "; ".join(key) if key else ""))
        for summary_path in sorted(batch.rglob("*summary.json")):
            html = (summary_path.with_name(REPORT_FILE) if summary_path.name == SUMMARY_FILE
                    else summary_path.with_name(summary_path.name.replace(".summary.json", ".html")))
            summary = read_summary(summary_path)
            cfg = summary.config
            name = f"{cfg['model']['name']} {cfg['resolution']} px on {summary.card}"
            lines.append(f"- [{name}]({html.relative_to(ROOT).as_posix()}): {verdict(summary)}")
        lines.append("")
    (ROOT / "README.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {ROOT / 'README.md'}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--index"]:
        index()
    elif len(sys.argv) == 3:
        publish(sys.argv[1], Path(sys.argv[2]))
        index()
    else:
        sys.exit(__doc__.split("\n\n")[1])

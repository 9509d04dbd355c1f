"""Publish GPU run folders as reports in reports/<batch>/: one report per run sharing one
plotly.min.js, the run's summary.json without the per-mode analysis (the measured figures; the
analysis is rebuilt from traces by `python -m profiler_kit.analyze RUN_DIR`), and an index.

usage: python scripts/publish_reports.py BATCH RUN_DIR [RUN_DIR ...]
"""

import sys
from pathlib import Path

import msgspec

from profiler_kit.records import read_summary, write_record
from profiler_kit.report import render_run_report

ROOT = Path(__file__).resolve().parents[1] / "reports"


def main(batch: str, run_dirs: list[str]) -> None:
    out = ROOT / batch
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for run_dir in map(Path, run_dirs):
        summary = read_summary(run_dir / "summary.json")
        name = run_dir.name
        render_run_report(summary, out / f"{name}.html", plotly_js="directory")
        measured = msgspec.structs.replace(summary, modes={m: msgspec.structs.replace(r, analysis=None)
                                                           for m, r in summary.modes.items()})
        write_record(out / f"{name}.summary.json", measured)
        cfg, ref, eff = summary.config, summary.reference_mode, summary.efficient_mode
        cmp = summary.comparison.get(eff)
        speed = f"{cmp.speedup:.2f}x" if cmp else summary.modes[ref].status
        rows.append(f"| [{name}]({name}.html) | {cfg['model']['name']} | {cfg['resolution']} | "
                    f"{summary.card} | {eff} | {speed} | `{summary.command}` |")
    index = out / "README.md"
    index.write_text(
        f"# Reports: {batch}\n\nOpen a report in a browser (it loads `plotly.min.js` from this folder, "
        "nothing from the network). `<run>.summary.json` holds the measured figures.\n\n"
        "| report | model | px | GPU | efficient mode | step speed-up vs vanilla | command |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    print(f"wrote {len(rows)} reports to {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])

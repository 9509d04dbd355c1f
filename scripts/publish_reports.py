"""Publish GPU run folders as reports in reports/<batch>/: one report per run sharing one
plotly.min.js, the run's summary.json without the per-mode analysis (the measured figures; the
analysis is rebuilt from traces by `python -m profiler_kit.run_analysis`), and an index.

usage: python scripts/publish_reports.py BATCH RUN_DIR [RUN_DIR ...]
"""

import json
import sys
from pathlib import Path

from profiler_kit.report import render_run_report
from profiler_kit.run_folder import write_json_atomic

ROOT = Path(__file__).resolve().parents[1] / "reports"


def main(batch: str, run_dirs: list[str]) -> None:
    out = ROOT / batch
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for run_dir in map(Path, run_dirs):
        summary = json.loads((run_dir / "summary.json").read_text())
        name = run_dir.name
        render_run_report(summary, out / f"{name}.html", plotly_js="directory")
        measured = json.loads(json.dumps(summary))
        for rec in measured["modes"].values():
            rec.pop("analysis", None)
        write_json_atomic(str(out / f"{name}.summary.json"), measured)
        cfg, ref = summary["config"], summary["reference_mode"]
        eff = summary["efficient_mode"]
        cmp = summary["comparison"].get(eff, {})
        speed = f"{cmp['speedup']:.2f}x" if "speedup" in cmp else summary["modes"][ref]["status"]
        rows.append(f"| [{name}]({name}.html) | {cfg['model']['name']} | {cfg['resolution']} | "
                    f"{summary['environment']['gpu_name']} | {eff} | {speed} | `{summary['command']}` |")
    index = out / "README.md"
    index.write_text(
        f"# Reports: {batch}\n\nOpen a report in a browser (it loads `plotly.min.js` from this folder, "
        "nothing from the network). `<run>.summary.json` holds the measured figures.\n\n"
        "| report | model | px | GPU | efficient mode | step speed-up vs vanilla | command |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    print(f"wrote {len(rows)} reports to {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])

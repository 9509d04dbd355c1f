"""Aggregate a sweep: ``python -m profiler_kit.aggregate SWEEP_DIR`` and the Hydra callback that
runs it at the end of every multirun.

Reads every run folder below SWEEP_DIR (any ``summary.json``, at any depth: a Hydra multirun, a
partly finished one, several merged or copied together, run folders from different machines)
and writes, beside them, ``sweep.json`` (records.Sweep), ``sweep.csv`` (one row per job × mode)
and ``sweep.html`` (one self-contained report). Idempotent: the same folders give byte-identical
``sweep.json`` and ``sweep.csv``. No torch import.
"""

from __future__ import annotations

import argparse
import csv
import json
import io
import logging
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from profiler_kit.analysis.sweep import analyze_sweep
from profiler_kit.records import RecordError, Summary, Sweep, SweepRow, read_summary, write_record, write_text_atomic
from profiler_kit.run_folder import REPORT_FILE, SUMMARY_FILE

SWEEP_JSON, SWEEP_CSV, SWEEP_HTML = "sweep.json", "sweep.csv", "sweep.html"
EXIT_BAD_INPUT = 2
log = logging.getLogger("profiler_kit")


def run_folders(sweep_dir: Path) -> list[Path]:
    """Every folder holding a summary.json below sweep_dir, in a stable order (hidden folders,
    such as Hydra's .hydra or submitit's .submitit, are skipped)."""
    found = []
    for root, dirs, files in os.walk(sweep_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if SUMMARY_FILE in files:
            found.append(Path(root))
    return sorted(found, key=lambda p: p.relative_to(sweep_dir).as_posix())


def _overrides(folder: Path) -> list[str]:
    path = folder / ".hydra" / "overrides.yaml"
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def aggregate(sweep_dir: str | os.PathLike) -> Sweep:
    sweep_dir = Path(sweep_dir)
    runs: list[tuple[str, Summary | None, list[str], str | None, str | None]] = []
    for folder in run_folders(sweep_dir):
        job = folder.relative_to(sweep_dir).as_posix()
        report = f"{job}/{REPORT_FILE}" if (folder / REPORT_FILE).exists() else None
        try:
            summary, problem = read_summary(folder / SUMMARY_FILE), None
        except RecordError as exc:
            summary, problem = None, str(exc).replace(str(sweep_dir) + os.sep, "")
        runs.append((job, summary, _overrides(folder), report, problem))
    return analyze_sweep(runs)


CSV_COLUMNS = tuple(SweepRow.__struct_fields__)


def sweep_csv(sweep: Sweep) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in sweep.rows:
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float)
                         else json.dumps(v, sort_keys=True) if isinstance(v, dict) else v
                         for v in (getattr(row, c) for c in CSV_COLUMNS)])
    return out.getvalue()


def write_sweep(sweep_dir: str | os.PathLike, plotly_js: str = "inline", report: bool = True) -> Sweep:
    """Aggregate and write sweep.json, sweep.csv and (unless report=False) sweep.html."""
    sweep_dir = Path(sweep_dir)
    sweep = aggregate(sweep_dir)
    write_record(sweep_dir / SWEEP_JSON, sweep)
    write_text_atomic(sweep_dir / SWEEP_CSV, sweep_csv(sweep))
    if report:
        from profiler_kit.report import render_sweep_report
        render_sweep_report(sweep, sweep_dir / SWEEP_HTML, plotly_js=plotly_js)
    return sweep


def summary_line(sweep: Sweep) -> str:
    done = sum(j.status == "complete" for j in sweep.jobs)
    return f"{len(sweep.jobs)} jobs ({done} complete), {len(sweep.rows)} job × mode rows"


# --------------------------------------------------------------------------------------------
# Hydra: progress while the multirun goes, the aggregate at its end
# --------------------------------------------------------------------------------------------

try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - hydra is a dependency; the aggregator works without it
    Callback = object


class SweepCallback(Callback):
    """Configured in conf/config.yaml (hydra.callbacks.sweep). Prints `job i/N: overrides ...
    ok/oom/failed` after each job and aggregates the sweep folder once the multirun ends."""

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        from profiler_kit.run_folder import job_line

        hydra_cfg = HydraConfig.get()
        # inside a job of submitit (gpu_pool, SLURM) this prints into the job's own log, which no
        # one watches: there the launcher prints the line on the submitting terminal instead
        if hydra_cfg.mode != RunMode.MULTIRUN or os.environ.get("SUBMITIT_EXECUTOR"):
            return
        total = os.environ.get("PROFILER_KIT_SWEEP_JOBS", "?")
        print(job_line(int(hydra_cfg.job.num), total, list(hydra_cfg.overrides.task), hydra_cfg.runtime.output_dir),
              file=sys.stderr, flush=True)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        global LAST_SWEEP
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        sweep = write_sweep(sweep_dir, plotly_js=str(config.report.plotly_js), report=bool(config.report.enabled))
        LAST_SWEEP = sweep
        print(f"profiler_kit: sweep of {summary_line(sweep)}: {sweep_dir / SWEEP_HTML}", file=sys.stderr, flush=True)
        unfinished = [j for j in sweep.jobs if j.status != "complete"]
        if unfinished:
            print(f"profiler_kit: {len(unfinished)} of {len(sweep.jobs)} jobs did not complete: "
                  + "; ".join(f"{j.job} {j.status}" for j in unfinished), file=sys.stderr, flush=True)


# The multirun's aggregate, once its end callback ran: the entry point's exit code says from it
# whether every job completed (Hydra itself returns nothing from a multirun).
LAST_SWEEP: Sweep | None = None


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m profiler_kit.aggregate",
                                description="Aggregate a sweep folder (a Hydra multirun, or any folder of "
                                            "run folders) into sweep.json, sweep.csv and sweep.html.")
    p.add_argument("sweep_dir", metavar="SWEEP_DIR")
    p.add_argument("--no-report", action="store_true", help="write sweep.json and sweep.csv only")
    p.add_argument("--plotly-js", choices=("inline", "directory"), default="inline")
    args = p.parse_args(argv)
    sweep_dir = Path(args.sweep_dir)
    if not sweep_dir.is_dir():
        print(f"error: {sweep_dir} is not a folder: give the sweep folder of python -m profiler_kit -m "
              "(multirun/<date>/<time>...)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not run_folders(sweep_dir):
        print(f"error: no run folder (summary.json) below {sweep_dir}: give the folder of a sweep",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        sweep = write_sweep(sweep_dir, plotly_js=args.plotly_js, report=not args.no_report)
    except OSError as exc:
        print(f"error: cannot write into {sweep_dir} ({exc.strerror}): copy the sweep somewhere writable",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{summary_line(sweep)}; wrote {sweep_dir / SWEEP_JSON}, {SWEEP_CSV}"
          + ("" if args.no_report else f", {SWEEP_HTML}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())


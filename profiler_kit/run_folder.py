"""The run folder's layout: file names, the command that reproduces the run, and the readable
table of the modes for the log. No torch: capture, analysis and report all name files here."""

from __future__ import annotations

import os
import shlex
from typing import Any, List

import msgspec

from profiler_kit import units
from profiler_kit.records import NOISE_IQR_FRACTION, RecordError, Summary, read_summary, write_record

SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"
ROOFS_MEASURED_FILE = "roofs_measured.json"   # the measured roofs the run used (calibrate.py)


def trace_name(mode: str) -> str:
    return f"trace_{mode}.json.gz"


def capture_name(mode: str) -> str:
    """The trace of the mode's CUDA-graph capture (execution=cuda_graphs, compile with
    CUDA graphs): what its replayed kernels are joined to."""
    return f"capture_{mode}.json.gz"


def ncu_name(mode: str) -> str:
    """The mode's Nsight Compute measurement (records.NcuMeasurement)."""
    return f"ncu_{mode}.json"


def ncu_report_name(mode: str) -> str:
    """ncu's own report of the same measurement (opens in the Nsight Compute GUI)."""
    return f"ncu_{mode}.ncu-rep"


def measured_csv_name(mode: str) -> str:
    """The mode's kernels joined to its Nsight Compute measurement (ncu_join.write_measured_csv)."""
    return f"measured_{mode}.csv"


def kernels_csv_name(mode: str) -> str:
    return f"kernels_{mode}.csv"


def reproduce_command(argv: List[str]) -> str:
    return " ".join(["python", "-m", "profiler_kit"] + [shlex.quote(a) for a in argv[1:]])


def job_command(overrides: List[str]) -> str:
    """The command that re-runs one job of a sweep alone: its own overrides. Not sys.argv, which
    in a job holds the whole multirun line (basic launcher) or submitit's worker
    (`-m submitit.core._submit …/.submitit/%j`, SLURM and gpu_pool)."""
    return " ".join(["python", "-m", "profiler_kit"] + [shlex.quote(str(a)) for a in overrides])


def record_failure(run_dir: str, config: dict[str, Any], command: str, reason: str,
                   status: str = "failed") -> Summary:
    """Mark the run failed (or cancelled, timed out, ... as a scheduler reported it) with its
    reason, keeping whatever capture already wrote (the modes measured before); a run that
    ended before writing anything gets a summary of its own, so a sweep's aggregate can list it
    with the reason."""
    path = os.path.join(run_dir, SUMMARY_FILE)
    try:
        summary = msgspec.structs.replace(read_summary(path), status=status, reason=reason)
    except RecordError:
        summary = Summary(status=status, reason=reason, command=command, config=config,
                          reference_mode=str(config.get("reference_mode", "vanilla")))
    os.makedirs(run_dir, exist_ok=True)
    write_record(path, summary)
    return summary


def job_line(num: int, total: int | str, overrides: List[str], run_dir: str) -> str:
    """The line a sweep prints as one of its jobs ends (`job 2/4: resolution=96 -> complete:
    vanilla ok, sdpa ok`), read from the job's summary.json: printed on the submitting terminal
    by whichever launcher ran the job (aggregate.SweepCallback for Hydra's basic launcher,
    capture/launchers.py for gpu_pool and SLURM, whose jobs run in processes of their own)."""
    try:
        summary = read_summary(os.path.join(run_dir, SUMMARY_FILE))
        modes = ", ".join(f"{m} {r.status}" for m, r in summary.modes.items())
        state = (f"{summary.status}" + (f" ({summary.reason})" if summary.reason else "")
                 + (f": {modes}" if modes else ""))
    except RecordError:
        state = "failed (no summary.json)"
    return f"profiler_kit: job {num + 1}/{total}: {' '.join(overrides)} -> {state}"


def log_table(summary: Summary) -> str:
    """A fixed-width table of the modes: until the HTML report, and for terminals and logs."""
    ref = summary.reference_mode
    head = f"{'mode':<15} {'status':<11} {'step ms (median)':>17} {'IQR':>7} {'n':>3} {'it/s':>7} " \
           f"{'peak GiB':>9} {'speed-up':>9} {'rel err':>9}"
    rows = [head, "-" * len(head)]
    for mode, rec in summary.modes.items():
        if not rec.ok or rec.step_ms is None:
            rows.append(f"{mode:<15} {rec.status:<11} {(rec.reason or 'not timed')[:70]}")
            continue
        st = rec.step_ms
        cmp = summary.comparison.get(mode)
        speed = "1.00x (ref)" if mode == ref else (f"{cmp.speedup:.2f}x" if cmp else "-")
        peak = f"{rec.peak_allocated_bytes / 2**30:.2f}" if rec.peak_allocated_bytes is not None else "-"
        err = f"{rec.output_rel_error:.1e}" if rec.output_rel_error is not None else "-"
        noisy = "*" if st.noisy else ""
        rows.append(f"{mode:<15} {'ok':<11} {st.median_ms:>17.2f} {st.iqr_ms:>6.2f}{noisy:1} {st.n:>3} "
                    f"{rec.loop_it_per_s or 0:>7.2f} {peak:>9} {speed:>9} {err:>9}")
    env = summary.environment
    if summary.status != "complete":
        rows.append(f"run {summary.status}: {summary.reason or 'no reason recorded'}")
    if summary.run is not None:
        rows.append(f"device: {env.get('gpu_name') or env.get('cpu')} | dtype {summary.run.dtype} | "
                    f"batch {summary.run.batch} | latents {summary.run.latent_shape}")
    if any(r.step_ms is not None and r.step_ms.noisy for r in summary.modes.values()):
        rows.append(f"* noisy: IQR above {units.percent(NOISE_IQR_FRACTION, 0)} of the median")
    return "\n".join(rows)


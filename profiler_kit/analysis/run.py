"""Analyse an experiment's run folder: disk in, disk out, no torch.

Reads the ``summary.json`` the capture wrote and each mode's trace, analyses every trace with
the same analyzer that reads anyone's trace (against the GPU spec the run resolved and recorded,
with the run's TF32 setting), compares each mode with the reference, decides the run's findings
and writes ``summary.json`` and ``kernels_<mode>.csv`` back. The experiment's entry point calls
this after the capture; ``python -m profiler_kit.analyze RUN_DIR`` calls it on a finished folder
(after an analyzer upgrade, or for a run measured on another machine).
"""

from __future__ import annotations

import logging
import os
import time
import traceback

import msgspec

from profiler_kit.analysis import TraceError, analyze_trace
from profiler_kit.analysis.findings import run_findings
from profiler_kit.analysis.ncu_join import write_measured_csv
from profiler_kit.analysis.what_if import retimable, with_mode_what_ifs
from profiler_kit.records import (Analysis, ModeComparison, ModeRecord, NcuMeasurement, RecordError,
                                  RoofCalibration, Summary, read_ncu_measurement, read_roof_calibration,
                                  read_summary, write_atomic, write_record)
from profiler_kit.run_folder import SUMMARY_FILE, kernels_csv_name, measured_csv_name, ncu_name
from profiler_kit.trace.file import DEFAULT_LIMITS, ReadLimits

log = logging.getLogger("profiler_kit")
ATTENTION_KERNELS_LISTED = 5
ANALYSIS_FAILED = "trace analysis failed"
MEASUREMENT_UNREADABLE = "Nsight Compute measurement unreadable"


def _attention_kernels(analysis: Analysis) -> list[str]:
    """The attention kernels that really ran, longest first (what `attention_kernels` reports)."""
    rows = [k for k in analysis.top_kernels or [] if k.category == "attention"]
    return [k.name for k in sorted(rows, key=lambda k: -k.total_us)][:ATTENTION_KERNELS_LISTED]


def compare_modes(modes: dict[str, ModeRecord], reference: str) -> dict[str, ModeComparison]:
    """Speed-up (median and fastest step, denoising loop, GPU kernel time) and memory saved of each
    mode over the reference."""
    base = modes.get(reference)
    if base is None or not base.ok or base.step_ms is None:
        return {}
    out = {}
    for mode, rec in modes.items():
        if mode == reference or not rec.ok or rec.step_ms is None:
            continue
        kernel = None
        if base.analysis and rec.analysis and rec.analysis.kernels.total_us:
            kernel = base.analysis.kernel_us_per_step / rec.analysis.kernel_us_per_step
        saved = fraction = None
        if base.peak_allocated_bytes and rec.peak_allocated_bytes is not None:
            saved = base.peak_allocated_bytes - rec.peak_allocated_bytes
            fraction = saved / base.peak_allocated_bytes
        eager = spread = None
        if base.eager_step_ms and rec.eager_step_ms:
            eager = base.eager_step_ms.median_ms / rec.eager_step_ms.median_ms
            spread = (base.eager_step_ms.iqr_fraction or 0.0) + (rec.eager_step_ms.iqr_fraction or 0.0)
        out[mode] = ModeComparison(
            speedup=base.step_ms.median_ms / rec.step_ms.median_ms, eager_speedup=eager,
            eager_spread=spread or 0.0,
            min_speedup=base.step_ms.min_ms / rec.step_ms.min_ms,
            loop_speedup=(rec.loop_it_per_s / base.loop_it_per_s
                          if rec.loop_it_per_s and base.loop_it_per_s else float("nan")),
            kernel_speedup=kernel, memory_saved_bytes=saved, memory_saved_fraction=fraction)
    return out


def _measurement(mode: str, rec: ModeRecord, run_dir: str,
                 warnings: list[str]) -> tuple[NcuMeasurement | None, str | None]:
    """The mode's Nsight Compute measurement (measure=ncu), when the folder holds one."""
    path = os.path.join(run_dir, ncu_name(mode))
    if not os.path.exists(path):
        path += ".gz"          # kept gzipped (test data, archives): read alike
        if not os.path.exists(path):
            return None, None
    try:
        return read_ncu_measurement(path), path
    except RecordError as exc:     # the trace is still analysed; the join is what is lost
        warnings.append(f"{mode}: {MEASUREMENT_UNREADABLE}: {exc}")
        return None, None


def _roof_calibration(summary: Summary, run_dir: str, warnings: list[str]) -> RoofCalibration | None:
    """The measured roofs the run copied into its folder (summary.roof_calibration), or None;
    a missing or unreadable file is a warning and the datasheet then judges."""
    if summary.roof_calibration is None:
        return None
    try:
        return read_roof_calibration(os.path.join(run_dir, summary.roof_calibration))
    except RecordError as exc:
        warnings.append(f"{MEASURED_ROOFS_UNREADABLE} ({exc}): judged against the datasheet")
        return None


MEASURED_ROOFS_UNREADABLE = "measured roofs unreadable"


def _analyze_mode(mode: str, rec: ModeRecord, summary: Summary, run_dir: str,
                  warnings: list[str], limits: ReadLimits,
                  calibration: RoofCalibration | None = None,
                  results: dict | None = None) -> ModeRecord:
    start = time.perf_counter()
    measurement, source = _measurement(mode, rec, run_dir, warnings)
    capture = _capture(mode, rec, run_dir, warnings)
    try:
        def analyze(capture):
            return analyze_trace(
                os.path.join(run_dir, rec.trace), label=mode, spec_record=summary.gpu_spec,
                allow_tf32=summary.allow_tf32, limits=limits, calibration=calibration,
                roof_basis=summary.roof_basis if calibration is not None else "datasheet",
                measurement=measurement, measurement_source=source, capture=capture)
        try:
            result = analyze(capture)
        except TraceError as exc:
            if capture is None or not os.path.exists(os.path.join(run_dir, rec.trace)):
                raise
            # the capture is what failed to read: the replay is still analysed, by names
            warnings.append(f"{mode}: capture trace unreadable ({exc}): replayed kernels known by name only")
            result = analyze(None)
        write_atomic(os.path.join(run_dir, kernels_csv_name(mode)), result.write_kernels_csv)
        measured_csv = os.path.join(run_dir, measured_csv_name(mode))
        if result.record.measured is not None:
            write_atomic(measured_csv, lambda tmp: write_measured_csv(result.record.measured, tmp))
        elif os.path.exists(measured_csv):      # from an earlier analysis with a measurement since removed
            os.remove(measured_csv)
    except TraceError as exc:  # a missing or unreadable trace: its one line says why
        log.error("%s: analysis failed: %s", mode, exc)
        warnings.append(f"{mode}: {ANALYSIS_FAILED} ({exc})")
        return msgspec.structs.replace(rec, analysis=None)
    except Exception as exc:  # the measurement is kept; the analysis can be redone
        log.error("%s: analysis failed: %s", mode, exc)
        log.debug("%s", traceback.format_exc())
        warnings.append(f"{mode}: {ANALYSIS_FAILED} ({type(exc).__name__}: {exc}); "
                        f"rerun: python -m profiler_kit.analyze {run_dir}")
        return msgspec.structs.replace(rec, analysis=None)
    log.info("%s: trace analyzed in %.1f s", mode, time.perf_counter() - start)
    if results is not None:      # what the cross-mode what-ifs need, without the trace's tables
        results[mode] = (result.record, retimable(result.path_model) if result.path_model else None)
    return msgspec.structs.replace(rec, analysis=result.record,
                                   attention_kernels=_attention_kernels(result.record))


def _capture(mode: str, rec: ModeRecord, run_dir: str, warnings: list[str]) -> str | None:
    """The mode's capture trace, or None (with a warning where the summary names a missing one)."""
    if not rec.capture_trace:
        return None
    path = os.path.join(run_dir, rec.capture_trace)
    if not os.path.isfile(path):
        warnings.append(f"{mode}: capture trace {rec.capture_trace} is missing: replayed kernels "
                        "known by name only")
        return None
    return path


class RunNotAnalysable(RecordError):
    """The run folder's summary says the run did not get far enough to analyse; nothing is
    rewritten."""


def _check_analysable(summary: Summary, run_dir: str) -> None:
    """A run still marked "running" was killed (or is still going): its modes may be half
    written, so the folder is refused rather than passed off as complete. Interrupted and failed
    runs are analysed: the modes they finished are whole (experiment.py writes a mode only once
    it is measured), and their status stays what it is."""
    if summary.status == "running":
        raise RunNotAnalysable(f"{run_dir}: the run is still marked running (killed, or not "
                               "finished yet): its summary cannot be trusted; rerun the "
                               "experiment")
    for mode, rec in summary.modes.items():
        if rec.ok and rec.step_ms is None and rec.phase != "prepared":
            raise RunNotAnalysable(f"{run_dir}: mode {mode} is marked ok but has no step times "
                                   "(a partial summary); rerun the experiment")


def analyze_run(run_dir: str, limits: ReadLimits = DEFAULT_LIMITS) -> Summary:
    """Analyse the run folder's traces and write its summary.json back; returns the summary.
    Raises RecordError when the folder holds no readable summary.json, RunNotAnalysable (a
    RecordError) when the summary is of a run that did not finish; neither rewrites a file."""
    summary = read_summary(os.path.join(run_dir, SUMMARY_FILE))
    _check_analysable(summary, run_dir)
    warnings = [w for w in summary.warnings if ANALYSIS_FAILED not in w and MEASURED_ROOFS_UNREADABLE not in w
                and MEASUREMENT_UNREADABLE not in w]
    calibration = _roof_calibration(summary, run_dir, warnings)
    results: dict = {}
    modes = {mode: (_analyze_mode(mode, rec, summary, run_dir, warnings, limits, calibration, results)
                    if rec.ok and rec.trace else rec)
             for mode, rec in summary.modes.items()}
    # what each mode's step would take with another mode's attention: needs every mode's path
    for mode, record in with_mode_what_ifs(results).items():
        modes[mode] = msgspec.structs.replace(modes[mode], analysis=record)
    del results
    summary = msgspec.structs.replace(summary, modes=modes, warnings=warnings, analyzed=True,
                                      comparison=compare_modes(modes, summary.reference_mode))
    summary = msgspec.structs.replace(summary, findings=run_findings(summary))
    write_record(os.path.join(run_dir, SUMMARY_FILE), summary)
    return summary


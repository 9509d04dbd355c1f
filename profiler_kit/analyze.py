"""Analyse any Kineto trace, or an experiment's run folder:

    python -m profiler_kit.analyze TRACE [TRACE2] [--gpu NAME] [--out DIR] [--ncu MEASUREMENT]
                                   [--roofs roofs_measured.json [--roof-basis measured]]
    python -m profiler_kit.analyze RUN_DIR          # redo a run folder's analysis and report

With traces: writes ``analysis.json`` and ``kernels.csv`` into --out (with two traces: ``a/``
and ``b/`` subfolders, plus ``comparison.json``) and ``report.html`` (unless --no-report). With a
run folder (one holding summary.json): analyses its traces against the spec the run recorded and
rewrites its summary.json, kernels_<mode>.csv and report.html. Our traces and anyone else's take
the same path through the analyzer. Bad input exits with status 2 and one line on stderr saying
what is wrong and what to do. Every file is written atomically (records.write_atomic).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import tempfile
from pathlib import Path

from profiler_kit.records import RecordError, write_atomic, write_record
from profiler_kit.run_folder import SUMMARY_FILE

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage + message; we promise one line
        raise _BadInput(f"{message} (see python -m profiler_kit.analyze --help)")


class _BadInput(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="python -m profiler_kit.analyze",
                       description="Analyse Kineto (torch.profiler) traces: kernel time by "
                       "category and module, FLOP/byte estimates, roofline bounds, GPU idle "
                       "time, peak memory, attention calls.")
    p.add_argument("traces", nargs="+", metavar="TRACE",
                   help="trace .json or .json.gz; give two to compare them (a, then b); or a run "
                   "folder of python -m profiler_kit (re-analysed in place)")
    p.add_argument("--gpu", metavar="NAME", help="GPU spec key or alias (e.g. h100, a100-80gb)"
                   "; default: matched from the trace's deviceProperties")
    p.add_argument("--roofs", metavar="FILE", help="measured roofs (a run folder's roofs_measured.json, "
                   "or the cache's roofs/<card>.json): shown beside the datasheet's")
    p.add_argument("--roof-basis", choices=("datasheet", "measured"), default=None,
                   help="what bounds and %% of roof are judged against (default: datasheet; "
                   "measured needs --roofs)")
    p.add_argument("--out", metavar="DIR", default=".", help="output folder (default: .)")
    p.add_argument("--label", action="append", default=[], metavar="LABEL",
                   help="name of each trace in the outputs (repeat once per trace; default: "
                   "the file names)")
    p.add_argument("--ncu", action="append", default=[], metavar="MEASUREMENT",
                   help="an Nsight Compute measurement of the same call (ncu_<mode>.json, from "
                   "measure=ncu) to join to the trace: estimated beside measured HBM bytes per "
                   "kernel, category and attention layer (repeat once per trace)")
    p.add_argument("--capture", action="append", default=[], metavar="CAPTURE",
                   help="a trace holding the CUDA-graph capture of the trace's replays (vLLM, "
                   "SGLang and xDiT write capture and replay as two files): its ops, shapes and "
                   "modules are joined to the replayed kernels (repeat once per trace)")
    p.add_argument("--step", metavar="NAME",
                   help="the user annotation (record_function name) whose instances are the steps "
                   "of the critical path (default: ProfilerStep#N, else each CUDA-graph replay, "
                   "else the whole trace)")
    p.add_argument("--no-report", action="store_true",
                   help="write analysis.json and kernels.csv only, no report.html")
    p.add_argument("--max-trace-mb", type=float, metavar="MB",
                   help="refuse a trace whose JSON text (decompressed) is larger "
                   "(default: 1250 MiB: keeps the analyzer under about 2 GB RSS)")
    p.add_argument("--max-events", type=int, metavar="N",
                   help="refuse a trace with more events (default: 8,000,000)")
    p.add_argument("--debug", action="store_true",
                   help="on an unexpected error, print the traceback")
    return p


def _limits(args):
    from profiler_kit.trace.file import DEFAULT_LIMITS, ReadLimits
    if args.max_trace_mb is not None and not args.max_trace_mb > 0:
        raise _BadInput("--max-trace-mb takes a positive size in MiB")
    if args.max_events is not None and args.max_events <= 0:
        raise _BadInput("--max-events takes a positive count")
    return ReadLimits(
        max_bytes=int(args.max_trace_mb * 2**20) if args.max_trace_mb else DEFAULT_LIMITS.max_bytes,
        max_events=args.max_events or DEFAULT_LIMITS.max_events)


def _calibration(args):
    """The --roofs file, read once (None without it); --roof-basis measured needs one."""
    if args.roofs is None:
        if args.roof_basis == "measured":
            raise _BadInput("--roof-basis measured needs --roofs FILE (a run folder's roofs_measured.json)")
        return None
    from profiler_kit.records import read_roof_calibration
    try:
        return read_roof_calibration(args.roofs)
    except RecordError as exc:
        raise _BadInput(f"--roofs: {exc}") from None


def _write_analysis(analysis, folder: Path) -> None:
    write_record(folder / "analysis.json", analysis.record)
    write_atomic(folder / "kernels.csv", analysis.write_kernels_csv)
    if analysis.record.measured is not None:
        from profiler_kit.analysis.ncu_join import write_measured_csv
        write_atomic(folder / "measured.csv", lambda tmp: write_measured_csv(analysis.record.measured, tmp))


def _write_report(analyses, comparison, out: Path) -> None:
    from profiler_kit.report import render_trace_report
    render_trace_report({a.label: a.record for a in analyses}, comparison, out / "report.html")


def _run_folder(run_dir: Path, no_report: bool, limits) -> int:
    """Re-analyse an experiment's run folder in place, then re-render its report."""
    import logging

    from profiler_kit.analysis.run import analyze_run
    from profiler_kit.run_folder import log_table

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        summary = analyze_run(str(run_dir), limits=limits)
        if not no_report:
            from profiler_kit.report import render_run_folder
            render_run_folder(run_dir)
    except RecordError as exc:
        raise _BadInput(f"{exc}; give a run folder of python -m profiler_kit") from None
    except OSError as exc:
        raise _BadInput(f"cannot write to {run_dir} ({exc.strerror}); copy the run folder somewhere "
                        "writable") from None
    print(log_table(summary))
    print(f"wrote {run_dir}")
    return 0


def _read_measurement(path: str):
    """(NcuMeasurement, path) or a one-line error."""
    from profiler_kit.records import read_ncu_measurement
    try:
        return read_ncu_measurement(path), path
    except RecordError as exc:
        raise _BadInput(f"--ncu: {exc}; give an ncu_<mode>.json written by measure=ncu") from None


def measured_line(m) -> str:
    """One line: the join's coverage and the estimate's error on the whole call and attention."""
    from profiler_kit import units
    parts = [f"ncu {m.measurement}: joined {m.joined_kernels} of {m.trace_kernels} kernels "
             f"({units.percent(m.joined_time_fraction, 1)} of kernel time)"]
    for check in (m.total, m.attention):
        if check is not None and check.error is not None:
            parts.append(f"{check.label} bytes estimated {units.bytes_decimal(check.hbm_bytes_estimate)}, "
                         f"measured {units.bytes_decimal(check.hbm_bytes_measured)} ({check.error:+.1%})")
    return "; ".join(parts)


def _default_labels(paths: list[str]) -> list[str]:
    names = [Path(p).name.removesuffix(".gz").removesuffix(".json") for p in paths]
    return names if len(set(names)) == len(names) else ["a", "b"][:len(paths)]


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if len(args.traces) == 1 and (Path(args.traces[0]) / SUMMARY_FILE).is_file():
        if args.gpu or args.label or args.roofs or args.roof_basis or args.ncu or args.capture or args.step:
            raise _BadInput("a run folder is analysed against the GPU spec, measured roofs, roof basis, "
                            "Nsight Compute measurements, captures and mode names it holds: drop --gpu / "
                            "--label / --roofs / --roof-basis / --ncu / --capture / --step")
        return _run_folder(Path(args.traces[0]), args.no_report, _limits(args))
    if len(args.traces) > 2:
        raise _BadInput(f"got {len(args.traces)} traces; give one trace, or two to compare")
    if args.label and len(args.label) != len(args.traces):
        raise _BadInput(f"got {len(args.label)} --label for {len(args.traces)} traces; give "
                        "one --label per trace or none")
    if args.ncu and len(args.ncu) != len(args.traces):
        raise _BadInput(f"got {len(args.ncu)} --ncu for {len(args.traces)} traces; give one "
                        "measurement per trace, in the same order")
    if args.capture and len(args.capture) != len(args.traces):
        raise _BadInput(f"got {len(args.capture)} --capture for {len(args.traces)} traces; give "
                        "one capture per trace, in the same order")
    measurements = [_read_measurement(p) for p in args.ncu] or [(None, None)] * len(args.traces)
    captures = args.capture or [None] * len(args.traces)
    limits = _limits(args)
    calibration = _calibration(args)
    from profiler_kit.trace import file as tracefile
    for path in args.traces:          # inflate on the second core while the imports run
        tracefile.prefetch(path, limits)
    from profiler_kit.analysis import TraceError, analyze_devices, analyze_trace, compare

    labels = args.label or _default_labels(args.traces)
    out = Path(args.out)
    # kernels.csv is written by a forked child while the analysis goes on (big traces), into a
    # temporary file in --out, or in its nearest existing parent while --out is not made yet
    # (not the system's temporary folder: often another file system, or memory, and moving
    # it into --out would then be a copy)
    ahead = next((p for p in (out, *out.absolute().parents) if p.is_dir()), Path(tempfile.gettempdir()))
    analyses = []
    for path, label, (measurement, source), capture in zip(args.traces, labels, measurements,
                                                           captures):
        # one trace: one analysis per GPU it holds (trace/devices.py); two: the busiest GPU each
        analyze = analyze_devices if len(args.traces) == 1 and measurement is None else analyze_trace
        try:
            done = analyze(path, spec=args.gpu, label=label, limits=limits,
                           capture=capture, step=args.step,
                           spec_source="--gpu" if args.gpu else None,
                           calibration=calibration, roof_basis=args.roof_basis or "datasheet",
                           measurement=measurement, measurement_source=source,
                           kernels_csv_ahead=ahead)
            analyses.extend(done if isinstance(done, list) else [done])
        except TraceError as exc:
            raise _BadInput(str(exc)) from None
        except ValueError as exc:     # unknown --gpu key: the message lists the known ones
            if not args.gpu:          # any other ValueError is a bug: main() says so in one line
                raise
            raise _BadInput(f"--gpu {args.gpu}: {exc}") from None
    per_device = len(args.traces) == 1 and len(analyses) > 1
    if len(analyses) == 2 and not per_device:   # each with the other's attention, re-timed on its own path
        from dataclasses import replace
        from profiler_kit.analysis.what_if import with_mode_what_ifs
        records = with_mode_what_ifs({a.label: a for a in analyses})
        analyses = [replace(a, record=records[a.label]) for a in analyses]
    comparison = (compare(analyses[0].record, analyses[1].record)
                  if len(analyses) == 2 and not per_device else None)
    from profiler_kit.out_folder import staged_outputs
    try:
        with staged_outputs(out) as stage:     # the outputs replace the old ones as a whole
            if per_device:                      # device<N>/ each, with its own report
                for analysis in analyses:
                    sub = stage / f"device{analysis.label.rsplit(':device', 1)[-1]}"
                    _write_analysis(analysis, sub)
                    if not args.no_report:
                        _write_report([analysis], None, sub)
            elif comparison is None:
                _write_analysis(analyses[0], stage)
            else:
                for analysis, sub in zip(analyses, ("a", "b")):
                    _write_analysis(analysis, stage / sub)
                write_record(stage / "comparison.json", comparison)
            if not args.no_report and not per_device:
                _write_report(analyses, comparison, stage)
    except OSError as exc:
        raise _BadInput(f"cannot write to {out} ({exc.strerror}); pick a writable --out "
                        "folder") from None
    for analysis in analyses:
        r = analysis.record
        where = f" ({analysis.label.rsplit(':', 1)[-1]})" if per_device else ""
        print(f"{r.source.path}{where}: {r.kernels.count} kernels, {r.kernels.total_us / 1000:.3f} ms kernel time, "
              f"GPU busy {r.timeline.busy_us / 1000:.3f} of {r.timeline.window_us / 1000:.3f} ms")
        if r.measured is not None:
            print(measured_line(r.measured))
    print(f"wrote {out}")
    return 0


@contextlib.contextmanager
def _cycle_collector_paused():
    """CPython's cycle collector off while the analysis runs, back on after.

    Why: the analysis of a big trace creates millions of objects (op points, texts, per-kernel
    lists) while millions more stay alive (the trace's names and args), and each full
    collection, triggered by the allocations alone, traverses all of them: on a 1 GB trace,
    a tenth of the run, finding nothing to free. Nearly everything the analysis makes is
    freed by reference counting; the few cycles it leaves are collected when this exits."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def main(argv: list[str] | None = None) -> int:
    """Exit 0 with the outputs written, 2 with one line for bad input, 130 on Ctrl-C, 1 with
    one line for a bug (the traceback only with --debug: a user needs the cause, not the stack)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        with _cycle_collector_paused():
            return run(argv)
    except _BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted; no output was replaced", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if "--debug" in argv:
            import traceback
            traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"error: internal error ({type(exc).__name__}: {first}); please report it, "
              "with the traceback from --debug", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())

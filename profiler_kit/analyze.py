"""Analyse any Kineto trace: ``python -m profiler_kit.analyze TRACE [TRACE2] [--gpu NAME]``.

Writes ``analysis.json`` and ``kernels.csv`` into --out (with two traces: ``a/`` and ``b/``
subfolders, plus ``comparison.json``) and ``report.html`` (unless --no-report). Bad input exits with status 2 and one line on stderr
saying what is wrong and what to do. Every file is written to a temporary name and renamed,
so an interrupted run never leaves a half-written analysis behind.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import msgspec

EXIT_BAD_INPUT = 2


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
                   help="trace .json or .json.gz; give two to compare them (a, then b)")
    p.add_argument("--gpu", metavar="NAME", help="GPU spec key or alias (e.g. h100, a100-80gb)"
                   "; default: matched from the trace's deviceProperties")
    p.add_argument("--out", metavar="DIR", default=".", help="output folder (default: .)")
    p.add_argument("--label", action="append", default=[], metavar="LABEL",
                   help="name of each trace in the outputs (repeat once per trace; default: "
                   "the file names)")
    p.add_argument("--no-report", action="store_true",
                   help="write analysis.json and kernels.csv only, no report.html")
    return p


def _publish(tmp: str, path: Path) -> None:
    # mkstemp creates the file 0600; give it the permissions a plain open() would have.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def _atomic_write(path: Path, write) -> None:
    """`write(tmp)` fills a temporary file beside `path`, which is then renamed to `path`."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        _publish(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _write_json(path: Path, data: dict) -> None:
    # msgspec writes NaN/inf as null (JSON has neither) and is ~10x faster than json.dump
    text = msgspec.json.format(msgspec.json.encode(data), indent=1).decode()

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    _atomic_write(path, write)


def _write_analysis(analysis, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / "analysis.json", analysis.to_dict())
    _atomic_write(folder / "kernels.csv", analysis.write_kernels_csv)


def _write_report(analyses, comparison: dict | None, out: Path) -> None:
    from profiler_kit.report import render_trace_report
    _atomic_write(out / "report.html", lambda tmp: render_trace_report(
        {a.label: a.to_dict() for a in analyses}, comparison, tmp))


def _default_labels(paths: list[str]) -> list[str]:
    names = [Path(p).name.removesuffix(".gz").removesuffix(".json") for p in paths]
    return names if len(set(names)) == len(names) else ["a", "b"][:len(paths)]


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if len(args.traces) > 2:
        raise _BadInput(f"got {len(args.traces)} traces; give one trace, or two to compare")
    if args.label and len(args.label) != len(args.traces):
        raise _BadInput(f"got {len(args.label)} --label for {len(args.traces)} traces; give "
                        "one --label per trace or none")
    from profiler_kit import tracefile
    for path in args.traces:          # inflate on the second core while the imports run
        tracefile.prefetch(path)
    from profiler_kit.analysis import TraceError, analyze_trace, compare

    labels = args.label or _default_labels(args.traces)
    analyses = []
    for path, label in zip(args.traces, labels):
        try:
            analyses.append(analyze_trace(path, spec=args.gpu, label=label,
                                          spec_source="--gpu" if args.gpu else None))
        except TraceError as exc:
            raise _BadInput(str(exc)) from None
        except ValueError as exc:     # unknown --gpu key: the message lists the known ones
            raise _BadInput(f"--gpu {args.gpu}: {exc}") from None
    out = Path(args.out)
    comparison = compare(*analyses) if len(analyses) == 2 else None
    try:
        if comparison is None:
            _write_analysis(analyses[0], out)
        else:
            for analysis, sub in zip(analyses, ("a", "b")):
                _write_analysis(analysis, out / sub)
            _write_json(out / "comparison.json", comparison)
        if not args.no_report:
            _write_report(analyses, comparison, out)
    except OSError as exc:
        raise _BadInput(f"cannot write to {out} ({exc.strerror}); pick a writable --out "
                        "folder") from None
    for analysis in analyses:
        d = analysis.to_dict()
        t = d["timeline"]
        print(f"{d['source']['path']}: {d['kernels']['count']} kernels, "
              f"{d['kernels']['total_us'] / 1000:.3f} ms kernel time, GPU busy "
              f"{t['busy_us'] / 1000:.3f} of {t['window_us'] / 1000:.3f} ms")
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except _BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())

"""After the measurements: analyze each mode's trace with the same analyzer that reads anyone's
trace, compare the modes with the reference, write summary.json and render the report.

No torch import: `python -m profiler_kit.run_analysis RUN_DIR` redoes this for a finished run
folder (after an analyzer upgrade, or for a run measured on another machine).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from typing import Any, Dict, List

from profiler_kit.run_folder import log_table, write_json_atomic

log = logging.getLogger("profiler_kit")
ATTENTION_KERNELS_LISTED = 5


def _attention_kernels(analysis: Dict[str, Any]) -> List[str]:
    """The attention kernels that really ran, longest first (what `attention_kernels` reports)."""
    rows = [k for k in analysis.get("top_kernels", []) if k.get("category") == "attention"]
    return [k["name"] for k in sorted(rows, key=lambda k: -k["total_us"])][:ATTENTION_KERNELS_LISTED]


def analyze_modes(summary: Dict[str, Any], run_dir: str) -> None:
    traced = {mode: rec for mode, rec in summary["modes"].items() if rec.get("trace")}
    if not traced:
        return
    from profiler_kit import specs
    from profiler_kit.analysis import analyze_trace

    spec = specs.load_spec(summary["gpu_spec"]["key"]) if summary.get("gpu_spec") else None
    for mode, record in traced.items():
        start = time.perf_counter()
        try:
            result = analyze_trace(os.path.join(run_dir, record["trace"]), spec=spec, label=mode)
            record["analysis"] = result.to_dict()
            result.write_kernels_csv(os.path.join(run_dir, f"kernels_{mode}.csv"))
        except Exception as exc:  # the measurement is kept; this module can redo the analysis
            log.error("%s: analysis failed: %s\n%s", mode, exc, traceback.format_exc())
            summary["warnings"].append(f"{mode}: trace analysis failed ({type(exc).__name__}: {exc}); "
                                       f"rerun: python -m profiler_kit.run_analysis {run_dir}")
            continue
        record["attention_kernels"] = _attention_kernels(record["analysis"])
        log.info("%s: trace analyzed in %.1f s", mode, time.perf_counter() - start)


def compare_modes(summary: Dict[str, Any]) -> Dict[str, Any]:
    """Speed-up (UNet step and denoising loop) and memory saved of each mode over the reference."""
    modes, ref = summary["modes"], summary["reference_mode"]
    base = modes.get(ref, {})
    out: Dict[str, Any] = {}
    if base.get("status") != "ok":
        return out
    for mode, rec in modes.items():
        if mode == ref or rec.get("status") != "ok":
            continue
        entry = {"speedup": base["step_ms"]["median"] / rec["step_ms"]["median"],
                 "loop_speedup": rec["loop_it_per_s"] / base["loop_it_per_s"]}
        if base.get("peak_allocated_bytes") and rec.get("peak_allocated_bytes") is not None:
            saved = base["peak_allocated_bytes"] - rec["peak_allocated_bytes"]
            entry.update(memory_saved_bytes=saved, memory_saved_fraction=saved / base["peak_allocated_bytes"])
        out[mode] = entry
    return out


def render(summary: Dict[str, Any], run_dir: str, plotly_js: str) -> None:
    try:
        from profiler_kit.report import render_run_report

        path = render_run_report(summary, os.path.join(run_dir, "report.html"), plotly_js=plotly_js)
        log.info("report: %s", path)
    except Exception as exc:  # summary.json and the traces are already on disk
        log.error("report failed: %s\n%s", exc, traceback.format_exc())


def finish_run(summary: Dict[str, Any], run_dir: str, render_report: bool = True,
               plotly_js: str = "inline") -> Dict[str, Any]:
    summary["comparison"] = compare_modes(summary)
    analyze_modes(summary, run_dir)
    write_json_atomic(os.path.join(run_dir, "summary.json"), summary)
    if render_report:
        render(summary, run_dir, plotly_js)
    log.info("\n%s", log_table(summary))
    return summary


def main(argv: List[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python -m profiler_kit.run_analysis RUN_DIR  (a folder with summary.json and traces)",
              file=sys.stderr)
        return 2
    run_dir = argv[0]
    path = os.path.join(run_dir, "summary.json")
    try:
        with open(path) as fh:
            summary = json.load(fh)
    except (OSError, ValueError) as exc:
        print(f"profiler_kit.run_analysis: cannot read {path} ({exc}): give a run folder of "
              "python -m profiler_kit", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    summary["warnings"] = [w for w in summary.get("warnings", []) if "analysis failed" not in w]
    plotly_js = summary.get("config", {}).get("report", {}).get("plotly_js", "inline")
    finish_run(summary, run_dir, render_report=True, plotly_js=plotly_js)
    return 0


if __name__ == "__main__":
    sys.exit(main())

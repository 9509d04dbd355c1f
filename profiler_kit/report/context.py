"""What the templates show, laid out once from the records (profiler_kit.records).

The report narrates and draws; it decides nothing. Verdicts (findings, the noise flag, bounds,
the roofs) come from the records, as the analysis decided them; the numbers printed are chosen
and formatted here (or by the `units` filters registered in __init__), figures are drawn by
`figures`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from profiler_kit import units as fmt
from profiler_kit.records import (NOISE_IQR_FRACTION, Analysis, Comparison, GpuSpecRecord, MeasuredRoof, ModeRecord,
                                  Roofs, Summary)

from . import figures, measured, path_view

TOP_KERNELS_SHOWN = 100


def spec_view(spec: GpuSpecRecord | None, analyses: dict[str, Analysis]) -> dict | None:
    """The spec's identity and the roofs the analysis judged against, as they were recorded."""
    if spec is None:
        return None
    bandwidth, roofs = figures.roofs_drawn(analyses)
    return {"name": spec.name, "key": spec.key, "source": spec.source, "matched_from": spec.matched_from,
            "mismatch": spec.mismatch,
            "bandwidth": fmt.gb_per_s((bandwidth or spec.memory_bandwidth_gbps * 1e9) / 1e9),
            "roofs": [(label, fmt.tflops_per_s(peak / 1e12)) for label, peak in roofs],
            "allow_tf32": next((a.roofs.allow_tf32 for a in analyses.values() if a.roofs), None),
            "memory": fmt.bytes_binary(spec.memory_bytes), "table": roof_table(spec, analyses)}


def _rate(engine: str, per_s: float | None) -> str:
    return fmt.gb_per_s(per_s / 1e9 if per_s else None) if engine == "memory" else \
        fmt.tflops_per_s(per_s / 1e12 if per_s else None)


def _roof_row(label: str, engine: str, datasheet: float | None, measured: MeasuredRoof | None,
              used: str) -> dict:
    t = measured.time_ms if measured else None
    return {"label": label, "datasheet": _rate(engine, datasheet),
            "measured": _rate(engine, measured.measured_per_s if measured else None),
            "time": (f"{fmt.duration_ms(t.median_ms)} ± {fmt.duration_ms(t.iqr_ms)} IQR, n={t.n}" if t else None),
            "noisy": bool(t and t.noisy), "method": measured.method if measured else None,
            "ratio": fmt.percent(measured.measured_per_s / datasheet if measured and datasheet else None, 0),
            "used": used}


def _feeding(roofs: Roofs, engine: str, dtype: str, measured_per_s: float | None) -> MeasuredRoof | None:
    """The measurement behind a judged roof: its own key, else the one whose figure it carries
    (bf16 on a card without BF16 tensor cores meets the measured FP32 CUDA-core roof)."""
    cal = roofs.calibration
    if cal is None or measured_per_s is None:
        return None
    return cal.roof(engine, dtype) or next((m for m in cal.roofs if m.measured_per_s == measured_per_s), None)


def roof_table(spec: GpuSpecRecord, analyses: dict[str, Analysis]) -> dict | None:
    """Datasheet and measured figure of every roof, as the analysis recorded them, and which one
    judged (Roofs.basis, Roof.basis); None where no roof was measured."""
    roofs = next((a.roofs for a in analyses.values() if a.roofs is not None), None)
    if roofs is None or (roofs.calibration is None and roofs.basis == "datasheet"):
        return None
    cal = roofs.calibration
    rows = [_roof_row("HBM (memory roof)", "memory",
                      roofs.memory_bandwidth_datasheet_bytes_per_s or spec.memory_bandwidth_gbps * 1e9,
                      cal.memory_roof if cal else None, roofs.memory_basis)]
    if cal and cal.roof("memory", "elementwise"):
        rows.append(_roof_row("fp32 element-wise stream (beside the memory roof)", "memory",
                              roofs.memory_bandwidth_datasheet_bytes_per_s, cal.roof("memory", "elementwise"),
                              "shown only"))
    for r in roofs.compute:
        rows.append(_roof_row(r.label, r.engine, r.datasheet_flops_per_s,
                              _feeding(roofs, r.engine, r.dtype, r.measured_flops_per_s), r.basis))
    judged = {(r.engine, r.dtype) for r in roofs.compute}
    for m in cal.roofs if cal else []:
        if m.engine != "memory" and (m.engine, m.dtype) not in judged:
            rows.append(_roof_row(f"{m.dtype.upper()} {'tensor' if m.engine == 'tensor' else 'CUDA cores'}",
                                  m.engine, m.datasheet_per_s, m, "judged no kernel"))
    return {"basis": roofs.basis, "rows": rows,
            "measured_on": cal.device_name if cal else None, "measured_at": cal.measured_at if cal else None,
            "software": (f"driver {cal.driver or '?'}, torch {cal.torch}, CUDA {cal.cuda or '?'}" if cal else None),
            "skipped": [f"{s.dtype} {s.engine}: {s.reason}" for s in cal.skipped] if cal else []}


def analysis_view(label: str, a: Analysis) -> dict:
    """Headline figures of one trace analysis, formatted."""
    tl, k = a.timeline, a.kernels
    return {"label": label, "path": a.source.path, "size": fmt.bytes_binary(a.source.size_bytes),
            "devices": ", ".join(a.source.device_names) or "none recorded",
            "schema": a.source.schema, "has_gpu": a.source.has_gpu or bool(k.count),
            "steps": len(tl.steps),
            "kernel_count": fmt.count(k.count), "kernel_time": fmt.duration_us(k.total_us),
            "window": fmt.duration_us(tl.window_us), "busy": fmt.duration_us(tl.busy_us),
            "window_per_step": fmt.duration_us(tl.window_us / a.steps),
            "idle": fmt.duration_us(tl.idle_us),
            "idle_share": fmt.percent(fmt.share(tl.idle_us, tl.window_us)),
            "attention_time": fmt.duration_us(a.attention.total_us),
            "attention_share": fmt.percent(a.attention_share),
            "flops": fmt.flops(a.flops_estimate), "bytes": fmt.bytes_decimal(a.hbm_bytes_estimate),
            "floor": fmt.duration_us(a.roofline_floor_us),
            "peak_alloc": fmt.bytes_binary(a.memory.peak_allocated_bytes),
            "backends": {b: fmt.duration_us(us) for b, us in a.attention.backends.items() if us},
            "spec": spec_view(a.gpu_spec, {label: a})}


def kernel_rows(analyses: dict[str, Analysis]) -> list[dict]:
    """Top kernels of every analysis, one table; raw values kept for sorting in the page."""
    rows = []
    for label, a in analyses.items():
        for k in (a.top_kernels or [])[:TOP_KERNELS_SHOWN]:
            rows.append({"mode": label, "name": k.name or "?", "category": k.category, "count": k.count,
                         "total_us": k.total_us, "mean_us": k.mean_us,
                         "share": fmt.share(k.total_us, a.kernels.total_us) or 0.0,
                         "flops": k.flops_estimate, "bytes": k.hbm_bytes_estimate, "bound": k.bound,
                         "tflops": k.achieved_tflops, "gbps": k.achieved_gbps})
    return rows


def attention_rows(analyses: dict[str, Analysis]) -> list[dict]:
    rows = figures.attention_by_layer(analyses)
    for r in rows:
        r["short"] = figures.short_scope(r["scope"])
    return rows


def live_at_peak(analyses: dict[str, Analysis]) -> dict[str, list]:
    return {label: sorted(a.memory.live_at_peak, key=lambda x: -x.bytes)[:10] for label, a in analyses.items()}


def analysis_warnings(analyses: dict[str, Analysis]) -> list[str]:
    return [f"{label}: {w}" for label, a in analyses.items() for w in a.warnings]


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)


def figure_divs(figs: dict[str, Any]) -> dict[str, str]:
    """Render each figure that has data; absent figures (None) are simply not shown."""
    return {key: figures.render_div(fig, f"fig-{key}") for key, fig in figs.items() if fig is not None}


def mode_rows(modes: dict[str, ModeRecord]) -> list[dict]:
    rows = []
    for name, r in modes.items():
        step = r.step_ms
        rows.append({"name": name, "status": r.status, "reason": r.reason, "timed": step is not None,
                     "median": fmt.duration_ms(step.median_ms if step else None),
                     "iqr": fmt.duration_ms(step.iqr_ms if step else None),
                     "iqr_share": fmt.percent(step.iqr_fraction if step else None),
                     "min": fmt.duration_ms(step.min_ms if step else None), "n": step.n if step else None,
                     "eager": fmt.duration_ms(r.eager_step_ms.median_ms if r.eager_step_ms else None),
                     "setup": fmt.duration_us(r.setup_s * 1e6 if r.setup_s is not None else None),
                     "noisy": bool(step and step.noisy),
                     "it_per_s": f"{r.loop_it_per_s:.2f} it/s" if r.loop_it_per_s else "–",
                     "peak_alloc": fmt.bytes_binary(r.peak_allocated_bytes),
                     "peak_reserved": fmt.bytes_binary(r.peak_reserved_bytes),
                     "weights": fmt.bytes_binary(r.weights_bytes),
                     "rel_error": "–" if r.output_rel_error is None else f"{r.output_rel_error:.2e}",
                     "tolerance": "–" if r.output_tolerance is None else f"{r.output_tolerance:.1e}",
                     "match": r.output_match, "kernels": r.attention_kernels,
                     "attention_kernels": fmt.attention_kernel_names(r.attention_kernels, 3),
                     "description": r.description, "trace": r.trace})
    return rows


def environment_rows(env: dict[str, Any]) -> list[tuple[str, str]]:
    """The environment as recorded, sizes in units (`gpu_memory_bytes` 150109880320 -> 140 GiB)."""
    return [(k, fmt.bytes_binary(v) if k.endswith("_bytes") and isinstance(v, (int, float))
             else "–" if v is None else str(v)) for k, v in env.items()]


def _config_value(config: dict, *path: str) -> Any:
    node: Any = config
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def run_context(summary: Summary) -> dict:
    modes = summary.modes
    ref, eff = summary.reference_mode, summary.efficient_mode
    ok = summary.ok_modes()
    analysed = summary.analyses()
    # Side-by-side views (treemap, attention, roofline, kernels) show the reference and the
    # chosen memory-efficient mode; every mode appears in the time, memory and timing views.
    pair = {m: analysed[m] for m in (ref, eff) if m in analysed} or analysed
    config, env, run = summary.config, summary.environment, summary.run
    cmp = summary.comparison.get(eff or "")
    figs = {"time": figures.time_split(analysed, {m: r.step_ms for m, r in ok.items() if r.step_ms}) if analysed else None,
            "categories": figures.categories(analysed) if analysed else None,
            "blocks": figures.blocks_treemap(pair) if pair else None,
            "attention": figures.attention_layers(pair),
            "roofline": figures.roofline(pair),
            "memory_peaks": figures.memory_peaks(ok) if ok else None,
            "memory_timeline": figures.memory_timeline(pair), "path": path_view.path_figure(pair),
            **measured.measured_figures(analysed)}
    warnings = list(summary.warnings) + analysis_warnings(analysed)
    if summary.status != "complete":
        warnings.insert(0, f"the run is {summary.status}: {summary.reason or 'no reason recorded'}")
    warnings += [f"{m}: {r.status} — {r.reason or 'no reason recorded'}" for m, r in modes.items() if not r.ok]
    model = _config_value(config, "model", "display_name") or _config_value(config, "model", "name") or "UNet"
    resolution = _config_value(config, "resolution")
    noisy = [m for m in (ref, eff) if m in modes and modes[m].step_ms and modes[m].step_ms.noisy]
    return {
        "kind": "run", "title": f"{model}, {resolution or '?'} px on {env.get('gpu_name') or 'GPU'}",
        "reference": ref, "efficient": eff, "efficient_reason": summary.efficient_mode_reason,
        "verdict": {"speedup": fmt.speedup(cmp.speedup if cmp else None), "noisy": noisy,
                    "min_speedup": fmt.speedup(cmp.min_speedup if cmp else None),
                    "kernel_speedup": fmt.speedup(cmp.kernel_speedup if cmp else None),
                    "eager_speedup": fmt.speedup(cmp.eager_speedup if cmp else None),
                    "host_hides_gain": bool(cmp and cmp.host_hides_gain),
                    "execution": fmt.EXECUTION_LABELS.get(run.execution if run else "eager", "eager"),
                    "attention_pair": [(m, fmt.percent(analysed[m].attention_share)) for m in pair],
                    "memory_saved": fmt.bytes_binary(cmp.memory_saved_bytes if cmp else None),
                    "memory_saved_share": fmt.percent(cmp.memory_saved_fraction if cmp else None),
                    "has_comparison": cmp is not None,
                    "attention_shares": [(m, fmt.percent(a.attention_share)) for m, a in analysed.items()],
                    "card": env.get("gpu_name"), "model": model, "resolution": resolution,
                    "dtype": run.dtype if run else _config_value(config, "dtype"),
                    "batch": run.batch if run else None, "weights": run.weights if run else None},
        "spec": spec_view(summary.gpu_spec, pair), "findings": summary.findings,
        "findings_missing": not summary.analyzed,
        "noise_threshold": fmt.percent(NOISE_IQR_FRACTION, 0),
        "execution": run.execution if run else "eager",
        "modes": mode_rows(modes), "views": [analysis_view(m, a) for m, a in analysed.items()],
        "pair": list(pair), "figs": figure_divs(figs),
        "attention_rows": attention_rows(pair), "kernel_rows": kernel_rows(pair),
        "live_at_peak": live_at_peak(pair), "warnings": warnings,
        "environment": environment_rows(env), "config_json": pretty_json(config), "command": summary.command,
        "traces": [(m, r.trace) for m, r in modes.items() if r.trace],
        "measured_views": measured.measured_views(analysed),
        "path_rows": path_view.path_rows(analysed),
        "what_if_rows": path_view.what_if_rows(analysed, {m: r.step_ms for m, r in ok.items() if r.step_ms}),
    }


def comparison_rows(comparison: Comparison) -> list[dict]:
    """Attention calls of the comparison summed per module scope (several profiled steps give
    several calls of one layer), in first-seen order."""
    by_scope: dict[str, dict] = {}
    for c in comparison.attention_calls:
        scope = c.scope or "(no scope)"
        row = by_scope.setdefault(scope, {"scope": scope, "kind": c.kind, "calls": 0,
                                          "a_v": None, "b_v": None, "a_bytes": None, "b_bytes": None,
                                          "a_backend": set(), "b_backend": set()})
        row["calls"] += 1
        for side in ("a", "b"):
            for src, dst in ((f"{side}_us", f"{side}_v"), (f"{side}_bytes_estimate", f"{side}_bytes")):
                value = getattr(c, src)
                if value is not None:
                    row[dst] = (row[dst] or 0.0) + value
            if getattr(c, f"{side}_backend"):
                row[f"{side}_backend"].add(getattr(c, f"{side}_backend"))
    rows = []
    for r in by_scope.values():
        a_us, b_us = r["a_v"], r["b_v"]
        rows.append({**r, "short": figures.short_scope(r["scope"]),
                     "a": fmt.duration_us(a_us), "b": fmt.duration_us(b_us),
                     "delta": fmt.duration_us(None if a_us is None or b_us is None else b_us - a_us),
                     "ratio": fmt.speedup(a_us / b_us) if a_us and b_us else "–",
                     "a_bytes": fmt.bytes_decimal(r["a_bytes"]), "b_bytes": fmt.bytes_decimal(r["b_bytes"]),
                     "a_backend": ", ".join(sorted(r["a_backend"])) or None,
                     "b_backend": ", ".join(sorted(r["b_backend"])) or None})
    return rows


def comparison_view(comparison: Comparison) -> dict:
    def pair(key: str, unit) -> dict:
        p = getattr(comparison, key)
        return {"a": unit(p.a), "b": unit(p.b), "delta": unit(p.delta),
                "ratio": fmt.speedup(p.a / p.b) if p.a and p.b else "–"}
    rows = [("GPU kernel time", "total_us", fmt.duration_us), ("GPU busy (window minus idle)", "busy_us", fmt.duration_us),
            ("profiled window", "window_us", fmt.duration_us), ("attention kernel time", "attention_us", fmt.duration_us),
            ("HBM traffic (estimated)", "hbm_bytes_estimate", fmt.bytes_decimal),
            ("attention HBM traffic (estimated)", "attention_hbm_bytes_estimate", fmt.bytes_decimal),
            ("FLOPs (estimated)", "flops_estimate", fmt.flops),
            ("peak allocated", "peak_allocated_bytes", fmt.bytes_binary)]
    return {"a": comparison.a, "b": comparison.b,
            "totals": [(label, pair(key, unit)) for label, key, unit in rows],
            "kernel_ratio": pair("total_us", fmt.duration_us)["ratio"],
            "calls": comparison_rows(comparison)}


def trace_links(analyses: dict[str, Analysis], out_dir: Path) -> list[tuple[str, str]]:
    """(label, path relative to the report) for each trace, so the links survive moving the
    folder that holds both."""
    links = []
    for label, a in analyses.items():
        path = a.source.path
        if path:
            try:
                path = os.path.relpath(Path(path).resolve(), out_dir.resolve())
            except ValueError:          # another drive on Windows: keep it absolute
                pass
            links.append((label, path))
    return links


def trace_context(analyses: dict[str, Analysis], comparison: Comparison | None, out_dir: Path) -> dict:
    with_gpu = {label: a for label, a in analyses.items() if a.kernels.count}
    spec = next((a.gpu_spec for a in with_gpu.values() if a.gpu_spec), None)
    figs = {"time": figures.time_split(with_gpu) if with_gpu else None,
            "categories": figures.categories(with_gpu) if with_gpu else None,
            "blocks": figures.blocks_treemap(with_gpu) if with_gpu else None,
            "attention": figures.attention_layers(with_gpu),
            "roofline": figures.roofline(with_gpu),
            "memory_timeline": figures.memory_timeline(analyses),
            "comparison": figures.comparison_deltas(comparison) if comparison else None,
            "path": path_view.path_figure(with_gpu),
            **measured.measured_figures(with_gpu)}
    # The findings stored with what is shown: the comparison's over both traces, or the one trace's.
    found = comparison.findings if comparison is not None else [f for a in analyses.values() for f in a.findings]
    labels = list(analyses)
    return {"kind": "trace", "title": "profiler_kit trace report: " + ", ".join(labels),
            "spec": spec_view(spec, with_gpu), "findings": found, "findings_missing": False,
            "views": [analysis_view(label, a) for label, a in analyses.items()], "pair": list(with_gpu),
            "figs": figure_divs(figs), "attention_rows": attention_rows(with_gpu),
            "kernel_rows": kernel_rows(with_gpu), "live_at_peak": live_at_peak(with_gpu),
            "warnings": analysis_warnings(analyses), "comparison": comparison_view(comparison) if comparison else None,
            "traces": trace_links(analyses, out_dir), "measured_views": measured.measured_views(with_gpu),
            "path_rows": path_view.path_rows(analyses), "what_if_rows": path_view.what_if_rows(analyses)}

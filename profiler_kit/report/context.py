"""What the templates show, computed once from summary / analysis dicts.

Templates only lay out: the numbers they print are chosen and formatted here (or by the `format`
filters registered in __init__), figures are drawn by `figures`, findings come from `findings`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from . import figures, findings
from . import format as fmt

TOP_KERNELS_SHOWN = 100


def pick(tree: dict | None, *paths: str) -> Any:
    """The first of several dotted paths present in a nested dict (config layouts vary by version)."""
    for path in paths:
        node: Any = tree or {}
        for key in path.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        if node not in (None, "", {}):
            return node
    return None


def spec_view(spec: dict | None) -> dict | None:
    if not spec:
        return None
    return {"name": spec.get("name") or spec.get("key"), "key": spec.get("key"),
            "source": spec.get("source"), "matched_from": spec.get("matched_from"),
            "mismatch": spec.get("mismatch"),
            "bandwidth": fmt.gb_per_s(spec.get("memory_bandwidth_gbps")),
            "fp16_tensor": fmt.tflops_per_s(spec.get("fp16_tensor_tflops")),
            "fp32": fmt.tflops_per_s(spec.get("fp32_tflops")),
            "memory": fmt.bytes_binary(spec.get("memory_bytes"))}


def attention_share(a: dict) -> float | None:
    return fmt.share((a.get("attention") or {}).get("total_us"), (a.get("kernels") or {}).get("total_us"))


def analysis_view(label: str, a: dict) -> dict:
    """Headline figures of one trace analysis, formatted."""
    tl, k = a.get("timeline") or {}, a.get("kernels") or {}
    src = a.get("source") or {}
    return {"label": label, "path": src.get("path"), "size": fmt.bytes_binary(src.get("size_bytes")),
            "devices": ", ".join(src.get("device_names") or []) or "none recorded",
            "schema": src.get("schema"), "has_gpu": src.get("has_gpu", bool(k.get("count"))),
            "steps": len(tl.get("steps") or []),
            "kernel_count": fmt.count(k.get("count")), "kernel_time": fmt.duration_us(k.get("total_us")),
            "window": fmt.duration_us(tl.get("window_us")), "busy": fmt.duration_us(tl.get("busy_us")),
            "window_per_step": fmt.duration_us((tl.get("window_us") or 0) / figures.steps_in(a)),
            "idle": fmt.duration_us(tl.get("idle_us")),
            "idle_share": fmt.percent(fmt.share(tl.get("idle_us"), tl.get("window_us"))),
            "attention_time": fmt.duration_us((a.get("attention") or {}).get("total_us")),
            "attention_share": fmt.percent(attention_share(a)),
            "flops": fmt.flops(a.get("flops_estimate")), "bytes": fmt.bytes_decimal(a.get("hbm_bytes_estimate")),
            "floor": fmt.duration_us(a.get("roofline_floor_us")),
            "peak_alloc": fmt.bytes_binary((a.get("memory") or {}).get("peak_allocated_bytes")),
            "backends": {b: fmt.duration_us(us) for b, us in ((a.get("attention") or {}).get("backends") or {}).items() if us},
            "spec": spec_view(a.get("gpu_spec"))}


def kernel_rows(analyses: dict[str, dict]) -> list[dict]:
    """Top kernels of every analysis, one table; raw values kept for sorting in the page."""
    rows = []
    for label, a in analyses.items():
        total = (a.get("kernels") or {}).get("total_us")
        for k in (a.get("top_kernels") or [])[:TOP_KERNELS_SHOWN]:
            rows.append({"mode": label, "name": k.get("name") or "?", "category": k.get("category") or "other",
                         "count": k.get("count") or 0, "total_us": k.get("total_us") or 0.0,
                         "mean_us": k.get("mean_us") or 0.0, "share": fmt.share(k.get("total_us"), total) or 0.0,
                         "flops": k.get("flops_estimate"), "bytes": k.get("hbm_bytes_estimate"),
                         "bound": k.get("bound") or "unknown",
                         "tflops": k.get("achieved_tflops"), "gbps": k.get("achieved_gbps")})
    return rows


def attention_rows(analyses: dict[str, dict]) -> list[dict]:
    rows = figures.attention_by_layer(analyses)
    for r in rows:
        r["short"] = figures.short_scope(r["scope"])
    return rows


def live_at_peak(analyses: dict[str, dict]) -> dict[str, list[dict]]:
    return {label: sorted((a.get("memory") or {}).get("live_at_peak") or [], key=lambda x: -(x.get("bytes") or 0))[:10]
            for label, a in analyses.items()}


def analysis_warnings(analyses: dict[str, dict]) -> list[str]:
    out = []
    for label, a in analyses.items():
        out += [f"{label}: {w}" for w in a.get("warnings") or []]
        spec = a.get("gpu_spec") or {}
        if spec.get("mismatch"):
            out.append(f"{label}: GPU spec differs from the device: {spec['mismatch']}")
        if findings.unexpected_fallback(label, a):
            out.append(f"{label}: attention fell back to an unfused backend in some calls")
    return out


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)


def figure_divs(figs: dict[str, Any]) -> dict[str, str]:
    """Render each figure that has data; absent figures (None) are simply not shown."""
    return {key: figures.render_div(fig, f"fig-{key}") for key, fig in figs.items() if fig is not None}


def _min_speedup(ref: dict, eff: dict) -> str:
    """Speed-up from the fastest step of each mode: the figure least disturbed by a busy machine."""
    r, e = (ref.get("step_ms") or {}).get("min"), (eff.get("step_ms") or {}).get("min")
    return fmt.speedup(r / e) if r and e else "–"


def mode_rows(modes: dict[str, dict]) -> list[dict]:
    rows = []
    for name, r in modes.items():
        step = r.get("step_ms") or {}
        rows.append({"name": name, "status": r.get("status") or "unknown", "reason": r.get("reason"),
                     "median": fmt.duration_ms(step.get("median")), "iqr": fmt.duration_ms(step.get("iqr")),
                     "iqr_share": fmt.percent(fmt.share(step.get("iqr"), step.get("median"))),
                     "min": fmt.duration_ms(step.get("min")), "n": step.get("n"), "noisy": findings.is_noisy(step),
                     "it_per_s": f"{r['loop_it_per_s']:.2f} it/s" if r.get("loop_it_per_s") else "–",
                     "peak_alloc": fmt.bytes_binary(r.get("peak_allocated_bytes")),
                     "peak_reserved": fmt.bytes_binary(r.get("peak_reserved_bytes")),
                     "weights": fmt.bytes_binary(r.get("weights_bytes")),
                     "rel_error": "–" if r.get("output_rel_error") is None else f"{r['output_rel_error']:.2e}",
                     "tolerance": "–" if r.get("output_tolerance") is None else f"{r['output_tolerance']:.1e}",
                     "match": r.get("output_match"),
                     "kernels": r.get("attention_kernels") or [],
                     "attention_kernels": findings.attention_kernel_names(r.get("attention_kernels") or [], 3),
                     "description": r.get("description"), "trace": r.get("trace")})
    return rows


def run_context(summary: dict) -> dict:
    modes = summary.get("modes") or {}
    ref, eff = summary.get("reference_mode"), summary.get("efficient_mode")
    ok = {m: r for m, r in modes.items() if r.get("status") == "ok"}
    analysed = {m: r["analysis"] for m, r in ok.items() if r.get("analysis")}
    # Side-by-side views (treemap, attention, roofline, kernels) show the reference and the
    # chosen memory-efficient mode; every mode appears in the time, memory and timing views.
    pair = {m: analysed[m] for m in (ref, eff) if m in analysed} or analysed
    spec = summary.get("gpu_spec") or next((a.get("gpu_spec") for a in analysed.values() if a.get("gpu_spec")), None)
    config, env = summary.get("config") or {}, summary.get("environment") or {}
    run = summary.get("run") or {}
    cmp = (summary.get("comparison") or {}).get(eff or "") or {}
    figs = {"time": figures.time_split(analysed, {m: r.get("step_ms") for m, r in ok.items()}) if analysed else None,
            "categories": figures.categories(analysed) if analysed else None,
            "blocks": figures.blocks_treemap(pair) if pair else None,
            "attention": figures.attention_layers(pair),
            "roofline": figures.roofline(pair, spec),
            "memory_peaks": figures.memory_peaks(ok) if ok else None,
            "memory_timeline": figures.memory_timeline(pair)}
    warnings = list(summary.get("warnings") or []) + analysis_warnings(analysed)
    if (summary.get("gpu_spec") or {}).get("mismatch"):
        warnings.insert(0, f"GPU spec differs from the device: {summary['gpu_spec']['mismatch']}")
    for m, r in modes.items():
        if r.get("status") != "ok":
            warnings.append(f"{m}: {r.get('status')} — {r.get('reason') or 'no reason recorded'}")
        elif findings.is_noisy(r.get("step_ms")) and not any(w.startswith(f"{m}:") and "nois" in w for w in warnings):
            warnings.append(f"{m}: noisy timing (IQR {fmt.percent(fmt.share(r['step_ms'].get('iqr'), r['step_ms']['median']))} "
                            "of the median): rerun on an idle machine before comparing")
    return {
        "kind": "run", "title": f"{pick(config, 'model.display_name', 'model.name', 'model') or 'UNet'}, "
                                f"{pick(config, 'resolution') or '?'} px on {env.get('gpu_name') or 'GPU'}",
        "reference": ref, "efficient": eff, "efficient_reason": summary.get("efficient_mode_reason"),
        "verdict": {"speedup": fmt.speedup(cmp.get("speedup")),
                    "noisy": [m for m in (ref, eff) if findings.is_noisy((modes.get(m) or {}).get("step_ms"))],
                    "min_speedup": _min_speedup(modes.get(ref) or {}, modes.get(eff) or {}),
                    "attention_pair": [(m, fmt.percent(attention_share(analysed[m]))) for m in pair],
                    "memory_saved": fmt.bytes_binary(cmp.get("memory_saved_bytes")),
                    "memory_saved_share": fmt.percent(cmp.get("memory_saved_fraction")),
                    "has_comparison": bool(cmp),
                    "attention_shares": [(m, fmt.percent(attention_share(a))) for m, a in analysed.items()],
                    "card": env.get("gpu_name"),
                    "model": pick(config, "model.display_name", "model.name", "model"),
                    "resolution": pick(config, "resolution", "model.resolution", "image_size"),
                    # summary["run"] holds what "auto" settings resolved to on the device.
                    "dtype": pick(run, "dtype") or pick(config, "dtype", "model.dtype"),
                    "batch": pick(run, "batch") or pick(config, "batch_size", "batch"),
                    "weights": pick(run, "weights")},
        "spec": spec_view(spec), "findings": findings.for_run(summary, analysed),
        "modes": mode_rows(modes), "views": [analysis_view(m, a) for m, a in analysed.items()],
        "pair": list(pair), "figs": figure_divs(figs),
        "attention_rows": attention_rows(pair), "kernel_rows": kernel_rows(pair),
        "live_at_peak": live_at_peak(pair), "warnings": warnings,
        "environment": env, "config_json": pretty_json(config), "command": summary.get("command"),
        "traces": [(m, r.get("trace")) for m, r in modes.items() if r.get("trace")],
    }


def comparison_rows(comparison: dict) -> list[dict]:
    """Attention calls of the comparison summed per module scope (several profiled steps give
    several calls of one layer), in first-seen order."""
    by_scope: dict[str, dict] = {}
    for c in comparison.get("attention_calls") or []:
        scope = c.get("scope") or "(no scope)"
        row = by_scope.setdefault(scope, {"scope": scope, "kind": c.get("kind"), "calls": 0,
                                          "a_v": None, "b_v": None, "a_bytes": None, "b_bytes": None,
                                          "a_backend": set(), "b_backend": set()})
        row["calls"] += 1
        for side in ("a", "b"):
            for src, dst in ((f"{side}_us", f"{side}_v"), (f"{side}_bytes_estimate", f"{side}_bytes")):
                if c.get(src) is not None:
                    row[dst] = (row[dst] or 0.0) + c[src]
            if c.get(f"{side}_backend"):
                row[f"{side}_backend"].add(c[f"{side}_backend"])
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


def comparison_view(comparison: dict) -> dict:
    def pair(key: str, unit) -> dict:
        p = comparison.get(key) or {}
        return {"a": unit(p.get("a")), "b": unit(p.get("b")), "delta": unit(p.get("delta")),
                "ratio": fmt.speedup(p["a"] / p["b"]) if p.get("a") and p.get("b") else "–"}
    rows = [("GPU kernel time", "total_us", fmt.duration_us), ("GPU busy (window minus idle)", "busy_us", fmt.duration_us),
            ("profiled window", "window_us", fmt.duration_us), ("attention kernel time", "attention_us", fmt.duration_us),
            ("HBM traffic (estimated)", "hbm_bytes_estimate", fmt.bytes_decimal),
            ("attention HBM traffic (estimated)", "attention_hbm_bytes_estimate", fmt.bytes_decimal),
            ("FLOPs (estimated)", "flops_estimate", fmt.flops),
            ("peak allocated", "peak_allocated_bytes", fmt.bytes_binary)]
    return {"a": comparison.get("a"), "b": comparison.get("b"),
            "totals": [(label, pair(key, unit)) for label, key, unit in rows if key in comparison],
            "kernel_ratio": pair("total_us", fmt.duration_us)["ratio"],
            "calls": comparison_rows(comparison)}


def trace_links(analyses: dict[str, dict], out_dir: Path) -> list[tuple[str, str]]:
    """(label, path relative to the report) for each trace, so the links survive moving the
    folder that holds both."""
    links = []
    for label, a in analyses.items():
        path = (a.get("source") or {}).get("path")
        if path:
            try:
                path = os.path.relpath(Path(path).resolve(), out_dir.resolve())
            except ValueError:          # another drive on Windows: keep it absolute
                pass
            links.append((label, path))
    return links


def trace_context(analyses: dict[str, dict], comparison: dict | None, out_dir: Path) -> dict:
    with_gpu = {l: a for l, a in analyses.items() if (a.get("kernels") or {}).get("count")}
    spec = next((a.get("gpu_spec") for a in with_gpu.values() if a.get("gpu_spec")), None)
    figs = {"time": figures.time_split(with_gpu) if with_gpu else None,
            "categories": figures.categories(with_gpu) if with_gpu else None,
            "blocks": figures.blocks_treemap(with_gpu) if with_gpu else None,
            "attention": figures.attention_layers(with_gpu),
            "roofline": figures.roofline(with_gpu, spec),
            "memory_timeline": figures.memory_timeline(analyses),
            "comparison": figures.comparison_deltas(comparison) if comparison else None}
    cmp_view = comparison_view(comparison) if comparison else None
    labels = list(analyses)
    return {"kind": "trace", "title": "profiler_kit trace report: " + ", ".join(labels),
            "spec": spec_view(spec), "findings": findings.for_traces(with_gpu),
            "views": [analysis_view(l, a) for l, a in analyses.items()], "pair": list(with_gpu),
            "figs": figure_divs(figs), "attention_rows": attention_rows(with_gpu),
            "kernel_rows": kernel_rows(with_gpu), "live_at_peak": live_at_peak(with_gpu),
            "warnings": analysis_warnings(analyses), "comparison": cmp_view,
            "traces": trace_links(analyses, out_dir)}

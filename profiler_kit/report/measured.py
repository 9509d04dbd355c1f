"""The "Measured HBM traffic" section: estimated beside measured bytes (Nsight Compute), from
``Analysis.measured`` (records.MeasuredTraffic). Verdicts (each group's error and whether it is
within tolerance, the join's coverage, the measured bound) are the records'; this module lays
them out and draws them.
"""

from __future__ import annotations

import math

from profiler_kit import units as fmt
from profiler_kit.records import Analysis, BytesCheck, MeasuredKernel, MeasuredTraffic

from . import plotly_json as pj
from .figures import _style, _text, _title, category_color, mode_color, MODE_SYMBOLS, roofs_drawn
from .plotly_json import Figure

KERNEL_GROUPS_DRAWN = 300     # per trace, largest first: points by kernel name and category


def _error(check: BytesCheck) -> str:
    return f"{check.error:+.1%}" if check.error is not None else "–"


def check_row(check: BytesCheck) -> dict:
    verdict = {True: "within", False: "miss", None: "not judged"}[check.within]
    return {"label": check.label, "kernels": fmt.count(check.kernels), "time": fmt.duration_us(check.gpu_us),
            "share": fmt.percent(check.time_share), "estimate": fmt.bytes_decimal(check.hbm_bytes_estimate),
            "measured": fmt.bytes_decimal(check.hbm_bytes_measured), "read": fmt.bytes_decimal(check.dram_read_bytes),
            "written": fmt.bytes_decimal(check.written_bytes), "error": _error(check),
            "error_v": check.error if check.error is not None else 0.0,
            "tolerance": f"±{check.tolerance:.0%}" if check.tolerance is not None else "–", "verdict": verdict,
            "spills": (f"{check.spilling_kernels} ({fmt.bytes_decimal(check.local_store_bytes)})"
                       if check.local_store_bytes else "–"),
            "rewriting": (f"{check.rewriting_kernels} ({fmt.bytes_decimal(check.rewriting_written_bytes)})"
                          if check.rewriting_kernels else "–")}


def measured_view(label: str, m: MeasuredTraffic) -> dict:
    bounds = sorted(set(m.bound_us_estimate) | set(m.bound_us_measured),
                    key=lambda b: -(m.bound_us_estimate.get(b, 0.0)))
    return {"label": label, "file": m.measurement, "tool": m.tool_version or "Nsight Compute",
            "device": m.device_name or "?", "window": m.window, "joined": fmt.count(m.joined_kernels),
            "trace_kernels": fmt.count(m.trace_kernels), "measured_kernels": fmt.count(m.measured_kernels),
            "coverage": fmt.percent(m.coverage), "time_coverage": fmt.percent(m.joined_time_fraction),
            "conclusive": m.conclusive, "mismatches": m.shape_mismatches,
            "cache_control": m.cache_control, "clock_control": m.clock_control,
            # ncu replays each kernel alone at base clocks, caches cold: its time against the trace's
            "ncu_time_ratio": _ncu_time_ratio(m),
            "groups": [check_row(g) for g in m.groups],          # each group once (MeasuredTraffic.groups)
            "layers": [check_row(c) for c in m.by_attention_call],
            "families": _largest_gaps(m),
            "bounds": [(b, fmt.duration_us(m.bound_us_estimate.get(b, 0.0)),
                        fmt.duration_us(m.bound_us_measured.get(b, 0.0))) for b in bounds]}


def _ncu_time_ratio(m: MeasuredTraffic) -> str:
    pairs = [(k.ncu_duration_us, k.dur_us) for k in m.kernels if k.ncu_duration_us is not None]
    trace_us = sum(t for _, t in pairs)
    return f"{sum(n for n, _ in pairs) / trace_us:.2f}×" if trace_us else "–"


FAMILIES_LISTED = 12


def _largest_gaps(m: MeasuredTraffic) -> list[dict]:
    """The kernel families whose estimate is farthest, in bytes, from the count: where to look."""
    groups = sorted(_by_name(m.kernels), key=lambda g: -abs(g["est"] - g["meas"]))[:FAMILIES_LISTED]
    return [{"name": g["name"], "category": g["category"], "count": g["count"], "time": fmt.duration_us(g["us"]),
             "estimate": fmt.bytes_decimal(g["est"]), "measured": fmt.bytes_decimal(g["meas"]),
             "gap": fmt.bytes_decimal(g["est"] - g["meas"]),
             "error": f"{g['est'] / g['meas'] - 1:+.0%}" if g["meas"] > 0 else "–",
             "dram_pct": fmt.percent(g["dram_pct_us"] / g["ncu_us"] / 100) if g["ncu_us"] else "–",
             "tensor_pct": fmt.percent(g["tensor_pct_us"] / g["ncu_us"] / 100) if g["ncu_us"] else "–"}
            for g in groups]


_VERDICT_RULES = ("estimate_vs_measured", "measurement_join_incomplete")


def measured_views(analyses: dict[str, Analysis]) -> list[dict]:
    """One view per analysis joined to a measurement, headed by the verdict the analysis stored
    (findings.estimate_vs_measured), as it stored it."""
    views = []
    for label, a in analyses.items():
        if a.measured is None:
            continue
        verdict = next((f for f in a.findings if f.rule in _VERDICT_RULES), None)
        views.append({**measured_view(label, a.measured),
                      "verdict": verdict.title if verdict else None,
                      "verdict_level": verdict.level if verdict else None})
    return views


def _by_name(kernels: list[MeasuredKernel]) -> list[dict]:
    """Joined kernels summed per (kernel name, category): one point per kernel family."""
    groups: dict[tuple[str, str], dict] = {}
    for k in kernels:
        if k.hbm_bytes_measured is None:
            continue
        g = groups.setdefault((k.name, k.category), {"name": k.name, "category": k.category, "count": 0,
                                                     "us": 0.0, "flops": 0.0, "est": 0.0, "meas": 0.0,
                                                     "ncu_us": 0.0, "dram_pct_us": 0.0, "tensor_pct_us": 0.0})
        g["count"] += 1
        g["us"] += k.dur_us
        g["flops"] += k.flops_estimate
        g["est"] += k.hbm_bytes_estimate
        g["meas"] += k.hbm_bytes_measured
        # ncu's % of peak, weighted by ncu's own durations (the clocks they were measured at)
        ncu_us = k.ncu_duration_us or 0.0
        g["ncu_us"] += ncu_us
        g["dram_pct_us"] += (k.dram_throughput_pct or 0.0) * ncu_us
        g["tensor_pct_us"] += (k.tensor_pipe_pct or 0.0) * ncu_us
    return sorted(groups.values(), key=lambda g: -g["us"])[:KERNEL_GROUPS_DRAWN]


def bytes_scatter(analyses: dict[str, Analysis]) -> Figure | None:
    """Estimated against measured bytes, one point per kernel family, on a log-log plane with the
    diagonal: above it the estimate is high, below it low. Families the model gives no bytes
    (helpers of an op) sit on the bottom edge."""
    fig = pj.figure()
    lo, hi = math.inf, 0.0
    drawn = False
    for i, (label, a) in enumerate(analyses.items()):
        if a.measured is None:
            continue
        groups = [g for g in _by_name(a.measured.kernels) if g["meas"] > 0]
        if not groups:
            continue
        floor = min(g["meas"] for g in groups) / 10
        t_max = max(g["us"] for g in groups)
        for cat in sorted({g["category"] for g in groups}):
            gs = [g for g in groups if g["category"] == cat]
            ys = [max(g["est"], floor) for g in gs]
            lo, hi = min(lo, floor, *[g["meas"] for g in gs]), max(hi, *ys, *[g["meas"] for g in gs])
            fig["data"].append(pj.scatter(
                x=[g["meas"] for g in gs], y=ys, mode="markers", name=_text(cat), legendgroup=_text(label),
                legendgrouptitle=dict(text=_text(label)),
                marker=dict(color=category_color(cat), symbol=MODE_SYMBOLS[i % len(MODE_SYMBOLS)],
                            size=[6 + 24 * math.sqrt(g["us"] / t_max) for g in gs],
                            line=dict(width=1.5, color=mode_color(i)), opacity=0.8),
                customdata=[[_text(fmt.short_kernel_name(g["name"])), g["count"], fmt.duration_us(g["us"]),
                             fmt.bytes_decimal(g["est"]), fmt.bytes_decimal(g["meas"]),
                             f"{g['est'] / g['meas'] - 1:+.0%}"] for g in gs],
                hovertemplate=("<b>%{customdata[0]}</b><br>%{customdata[1]} kernels, %{customdata[2]}<br>"
                               "estimated %{customdata[3]} · measured %{customdata[4]} "
                               "(%{customdata[5]})<extra></extra>")))
            drawn = True
    if not drawn:
        return None
    fig["data"].append(pj.scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(color="#1a202c", width=1),
                                  name="estimate = measured", hoverinfo="skip"))
    for factor, name in ((1.2, "±20 %"), (0.8, None)):
        fig["data"].append(pj.scatter(x=[lo, hi], y=[lo * factor, hi * factor], mode="lines", hoverinfo="skip",
                                      line=dict(color="#a0aec0", width=1, dash="dot"), name=name or "",
                                      showlegend=bool(name)))
    pj.update_axes(fig, "x", type="log", title=_title("bytes measured (Nsight Compute: DRAM reads + L2 writes)"),
                   tickformat="~s")
    pj.update_axes(fig, "y", type="log", title=_title("bytes estimated (cost model)"), tickformat="~s")
    return _style(fig, 520, left=72, legend=dict(orientation="v", x=1.02, y=1, groupclick="toggleitem"))


def measured_roofline(analyses: dict[str, Analysis]) -> Figure | None:
    """The roofline with each kernel family twice at the same achieved TFLOP/s: at its intensity
    from estimated bytes (open marker) and from measured bytes (filled), joined by a line."""
    bandwidth, roofs = roofs_drawn(analyses)
    rows = []
    for i, (label, a) in enumerate(analyses.items()):
        if a.measured is None:
            continue
        for g in _by_name(a.measured.kernels):
            if g["flops"] > 0 and g["est"] > 0 and g["meas"] > 0 and g["us"] > 0:
                rows.append((i, label, g))
    if not bandwidth or not roofs or not rows:
        return None
    bw_tb = bandwidth / 1e12
    tops = [peak / 1e12 for _, peak in roofs]
    xs = [g["flops"] / b for _, _, g in rows for b in (g["est"], g["meas"])]
    x_lo, x_hi = min(min(xs), min(tops) / bw_tb) / 3, max(max(xs), max(tops) / bw_tb) * 3
    fig = pj.figure(pj.scatter(x=[x_lo, max(tops) / bw_tb], y=[x_lo * bw_tb, max(tops)], mode="lines",
                               name="memory roof", line=dict(color="#1a202c", width=2), hoverinfo="skip",
                               showlegend=False))
    for (name, peak) in roofs:
        fig["data"].append(pj.scatter(x=[peak / 1e12 / bw_tb, x_hi], y=[peak / 1e12] * 2, mode="lines",
                                      showlegend=False, line=dict(color="#4a5568", width=1.5, dash="dash"),
                                      hoverinfo="skip"))
        pj.annotate(fig, x=math.log10(x_hi), y=math.log10(peak / 1e12), text=f"{_text(name)} {peak / 1e12:,.4g} TFLOP/s",
                    showarrow=False, xanchor="right", yanchor="bottom", font=dict(size=11))
    seg_x, seg_y = [], []
    for _, _, g in rows:
        y = g["flops"] / g["us"] / 1e6
        seg_x += [g["flops"] / g["est"], g["flops"] / g["meas"], None]
        seg_y += [y, y, None]
    fig["data"].append(pj.scatter(x=seg_x, y=seg_y, mode="lines", line=dict(color="#cbd5e0", width=1),
                                  hoverinfo="skip", showlegend=False))
    for basis, key, filled in (("estimated bytes", "est", False), ("measured bytes", "meas", True)):
        for i, label in dict.fromkeys((i, label) for i, label, _ in rows):
            gs = [g for j, _, g in rows if j == i]
            fig["data"].append(pj.scatter(
                x=[g["flops"] / g[key] for g in gs], y=[g["flops"] / g["us"] / 1e6 for g in gs], mode="markers",
                name=f"{_text(label)}: {basis}",
                marker=dict(symbol=MODE_SYMBOLS[i % len(MODE_SYMBOLS)] + ("" if filled else "-open"), size=8,
                            color=[category_color(g["category"]) for g in gs], line=dict(width=1)),
                customdata=[[_text(fmt.short_kernel_name(g["name"])), _text(g["category"]),
                             fmt.bytes_decimal(g[key]), fmt.duration_us(g["us"])] for g in gs],
                hovertemplate=(f"<b>%{{customdata[0]}}</b> (%{{customdata[1]}})<br>{basis}: %{{customdata[2]}}, "
                               "%{customdata[3]}<br>intensity %{x:.3g} FLOP/B · achieved %{y:.3g} TFLOP/s"
                               "<extra></extra>")))
    pj.update_axes(fig, "x", type="log", title=_title("arithmetic intensity (FLOP / byte)"), tickformat="~g")
    pj.update_axes(fig, "y", type="log", title=_title("achieved TFLOP/s (estimated FLOPs / trace time)"),
                   tickformat="~g")
    return _style(fig, 540, left=72, legend=dict(orientation="v", x=1.02, y=1))


def measured_figures(analyses: dict[str, Analysis]) -> dict:
    return {"measured_bytes": bytes_scatter(analyses), "measured_roofline": measured_roofline(analyses)}


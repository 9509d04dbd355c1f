"""Plotly figures of a sweep report, drawn from records.Sweep rows (one function per chart).

One curve per (group, mode): a group is what stays fixed while the resolution varies (model,
card, dtype, batch; analysis/sweep.py). Figures draw what the sweep analysis computed; they
scale units and nothing else.
"""

from __future__ import annotations

import plotly.graph_objects as go

from profiler_kit import units as fmt
from profiler_kit.analysis.sweep import group_of
from profiler_kit.records import Sweep, SweepRow

from .figures import BOUND_COLORS, HOST_COLOR, MODE_SYMBOLS, _style, _text, mode_color

DASHES = ["solid", "dot", "dash", "longdash", "dashdot"]


def _modes(rows: list[SweepRow]) -> list[str]:
    return list(dict.fromkeys(r.mode for r in rows))


def _groups(rows: list[SweepRow]) -> list[str]:
    return list(dict.fromkeys(group_of(r) for r in rows))


def _series(rows: list[SweepRow], value, x=lambda r: r.resolution):
    """(group index, group, mode index, mode, [rows sorted by x]) for each curve with data."""
    modes, groups = _modes(rows), _groups(rows)
    for gi, group in enumerate(groups):
        for mi, mode in enumerate(modes):
            rs = sorted((r for r in rows if group_of(r) == group and r.mode == mode and value(r) is not None
                         and x(r) is not None), key=x)
            if rs:
                yield gi, group, mi, mode, rs


def _name(group: str, mode: str, groups: int) -> str:
    return _text(mode if groups == 1 else f"{mode} · {group}")


def speedup(sweep: Sweep) -> go.Figure | None:
    """Step speed-up (solid) and GPU kernel-time speed-up (dotted) of each mode over its run's
    reference, against resolution."""
    rows = [r for r in sweep.rows if r.status == "ok"]
    fig = go.Figure()
    n_groups = len(_groups(rows))
    for gi, group, mi, mode, rs in _series(rows, lambda r: r.speedup):
        name = _name(group, mode, n_groups)
        fig.add_scatter(x=[r.resolution for r in rs], y=[r.speedup for r in rs], name=name, legendgroup=name,
                        mode="lines+markers", line=dict(color=mode_color(mi), dash=DASHES[gi % len(DASHES)]),
                        marker=dict(symbol=MODE_SYMBOLS[mi % len(MODE_SYMBOLS)], size=9),
                        customdata=[[fmt.speedup(r.min_speedup), fmt.duration_ms(r.step_median_ms),
                                     " (noisy)" if r.noisy else ""] for r in rs],
                        hovertemplate=f"{name}<br>%{{x}} px: %{{y:.2f}}× step speed-up%{{customdata[2]}}<br>"
                                      "from the fastest steps %{customdata[0]} · step %{customdata[1]}<extra></extra>")
        ks = [r for r in rs if r.kernel_speedup is not None]
        if ks:
            fig.add_scatter(x=[r.resolution for r in ks], y=[r.kernel_speedup for r in ks], legendgroup=name,
                            name=f"{name} (GPU kernels)", mode="lines+markers", opacity=0.6,
                            line=dict(color=mode_color(mi), dash="dot", width=1.5), marker=dict(size=6),
                            hovertemplate=f"{name}<br>%{{x}} px: %{{y:.2f}}× GPU kernel-time speed-up<extra></extra>")
    if not fig.data:
        return None
    fig.add_hline(y=1.0, line=dict(color="#1a202c", width=1))
    fig.update_xaxes(title="resolution (px)", type="category")
    fig.update_yaxes(title="speed-up over the reference (×)")
    return _style(fig, 460, legend=dict(orientation="v", x=1.02, y=1))


def step_and_kernel_time(sweep: Sweep) -> go.Figure | None:
    """Measured step time (markers with IQR) beside the GPU kernel time per step (bars)."""
    rows = [r for r in sweep.rows if r.status == "ok"]
    fig = go.Figure()
    n_groups = len(_groups(rows))
    for gi, group, mi, mode, rs in _series(rows, lambda r: r.step_median_ms):
        name = _name(group, mode, n_groups)
        xs = [f"{r.resolution} px" + ("" if n_groups == 1 else f" · {r.model}") for r in rs]
        fig.add_bar(x=xs, y=[r.kernel_ms_per_step or 0 for r in rs], name=f"{name}: GPU kernels",
                    legendgroup=name, marker_color=mode_color(mi), opacity=0.55, offsetgroup=name,
                    hovertemplate=f"{name}<br>%{{x}}: GPU kernels %{{y:.2f}} ms per step<extra></extra>")
        fig.add_scatter(x=xs, y=[r.step_median_ms for r in rs], name=f"{name}: measured step", legendgroup=name,
                        mode="markers", marker=dict(color=mode_color(mi), symbol="line-ew-open", size=18, line_width=3),
                        error_y=dict(type="data", array=[(r.step_iqr_ms or 0) / 2 for r in rs], visible=True),
                        hovertemplate=f"{name}<br>%{{x}}: step %{{y:.2f}} ms (median; whiskers: IQR)<extra></extra>")
    if not fig.data:
        return None
    fig.update_yaxes(title="ms per UNet step", rangemode="tozero")
    return _style(fig, 460, barmode="group", legend=dict(orientation="v", x=1.02, y=1))


def peak_memory(sweep: Sweep) -> go.Figure | None:
    """Peak allocated memory per mode against resolution; an X marks the first OOM of a curve."""
    fig = go.Figure()
    n_groups = len(_groups(sweep.rows))
    for gi, group, mi, mode, rs in _series([r for r in sweep.rows if r.status == "ok"],
                                           lambda r: r.peak_allocated_bytes, x=lambda r: r.tokens):
        name = _name(group, mode, n_groups)
        fig.add_scatter(x=[r.resolution for r in rs], y=[r.peak_allocated_bytes / 2**30 for r in rs], name=name,
                        mode="lines+markers", line=dict(color=mode_color(mi), dash=DASHES[gi % len(DASHES)]),
                        marker=dict(symbol=MODE_SYMBOLS[mi % len(MODE_SYMBOLS)], size=9),
                        customdata=[fmt.bytes_binary(r.peak_allocated_bytes) for r in rs],
                        hovertemplate=f"{name}<br>%{{x}} px: peak %{{customdata}}<extra></extra>")
    modes = _modes(sweep.rows)
    for f in sweep.oom_frontier:
        mi = modes.index(f.mode) if f.mode in modes else 0
        asked = fmt.bytes_binary(f.requested_bytes) if f.requested_bytes else "?"
        fig.add_scatter(x=[f.resolution], y=[(f.requested_bytes or 0) / 2**30], mode="markers",
                        name=_text(f"{f.mode} out of memory" + ("" if n_groups == 1 else f" · {f.group}")),
                        marker=dict(symbol="x", size=14, color=mode_color(mi), line_width=2),
                        hovertemplate=f"{_text(f.mode)} ran out of memory at %{{x}} px, asking for {asked} "
                                      "(y: the size asked for)<extra></extra>")
    if not fig.data:
        return None
    fig.update_xaxes(title="resolution (px)")
    fig.update_yaxes(title="peak allocated (GiB)", rangemode="tozero")
    return _style(fig, 420, legend=dict(orientation="v", x=1.02, y=1))


def bound_shares(sweep: Sweep) -> go.Figure | None:
    """Per job × mode: GPU kernel time by roofline bound, then the host's share of the step."""
    rows = [r for r in sweep.rows if r.status == "ok" and r.kernel_ms_per_step]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: (group_of(r), r.resolution or 0))
    n_groups = len(_groups(rows))
    labels = [_text(f"{r.resolution} px · {r.mode}" + ("" if n_groups == 1 else f" · {r.model}")) for r in rows]
    fig = go.Figure()
    for bound in ("compute", "memory", "latency", "unknown"):
        xs = [getattr(r, f"{bound}_bound_ms_per_step") or 0.0 for r in rows]
        if any(xs):
            fig.add_bar(y=labels, x=xs, orientation="h", name=f"{bound}-bound kernels (est.)",
                        marker_color=BOUND_COLORS[bound],
                        hovertemplate=f"%{{y}}<br>{bound}-bound: %{{x:.2f}} ms per step<extra></extra>")
    host = [r.host_ms_per_step or 0.0 for r in rows]
    if any(host):
        fig.add_bar(y=labels, x=host, orientation="h", name="GPU waiting on the host (step − kernel time)",
                    marker=dict(color=HOST_COLOR, pattern_shape=".", pattern_fgcolor="#dd6b20"),
                    hovertemplate="%{y}<br>host: %{x:.2f} ms per step<extra></extra>")
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title="ms per UNet step")
    return _style(fig, 120 + 24 * len(rows), left=20 + max(len(x) for x in labels) * 7, barmode="stack",
                  legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))


def attention_scaling(sweep: Sweep) -> go.Figure | None:
    """Attention kernel time per step against latent tokens, log-log, with each fit's exponent."""
    rows = [r for r in sweep.rows if r.status == "ok"]
    fits = {(f.group, f.mode): f for f in sweep.attention_fits}
    fig = go.Figure()
    n_groups = len(_groups(rows))
    for gi, group, mi, mode, rs in _series(rows, lambda r: r.attention_ms_per_step or None, x=lambda r: r.tokens):
        fit = fits.get((group, mode))
        name = _name(group, mode, n_groups) + (f" (∝ N^{fit.exponent:.2f})" if fit else "")
        fig.add_scatter(x=[r.tokens for r in rs], y=[r.attention_ms_per_step for r in rs], name=name,
                        mode="markers", marker=dict(color=mode_color(mi), symbol=MODE_SYMBOLS[mi % len(MODE_SYMBOLS)], size=10),
                        hovertemplate=f"{_text(mode)}<br>%{{x:,}} tokens: attention %{{y:.2f}} ms per step<extra></extra>")
        if fit:
            lo, hi = rs[0].tokens, rs[-1].tokens
            xs = [lo * (hi / lo) ** (i / 20) for i in range(21)]
            fig.add_scatter(x=xs, y=[fit.constant_ms * x ** fit.exponent for x in xs], mode="lines", showlegend=False,
                            line=dict(color=mode_color(mi), width=1.5, dash=DASHES[gi % len(DASHES)]), hoverinfo="skip")
    for gi, group, mi, mode, rs in _series(rows, lambda r: r.kernel_ms_per_step, x=lambda r: r.tokens):
        if mi:                   # the rest of the UNet, once per group: from the reference mode's rows
            continue
        rest = [(r.tokens, r.kernel_ms_per_step - (r.attention_ms_per_step or 0)) for r in rs]
        fig.add_scatter(x=[t for t, _ in rest], y=[v for _, v in rest], mode="lines+markers",
                        name=_text("rest of the UNet (" + mode + ")" + ("" if n_groups == 1 else f" · {group}")),
                        line=dict(color="#718096", dash="dash"), marker=dict(size=6),
                        hovertemplate="%{x:,} tokens: rest of the UNet %{y:.2f} ms per step<extra></extra>")
    if not fig.data:
        return None
    fig.update_xaxes(type="log", title="latent tokens at the top level, N = (resolution / 8)²")
    fig.update_yaxes(type="log", title="GPU ms per step")
    return _style(fig, 460, legend=dict(orientation="v", x=1.02, y=1))

"""Plotly figures of a sweep report, drawn from records.Sweep rows (one function per chart).

One curve per (group, mode): a group is what stays fixed while the resolution varies (model,
card, dtype, batch; analysis/sweep.py). Figures draw what the sweep analysis computed; they
scale units and nothing else.
"""

from __future__ import annotations

from profiler_kit import units as fmt
from profiler_kit.analysis.sweep import group_of
from profiler_kit.records import Sweep, SweepRow

from . import plotly_json as pj
from .figures import BOUND_COLORS, HOST_COLOR, MODE_SYMBOLS, _style, _text, _title, mode_color
from .plotly_json import Figure

DASHES = ["solid", "dot", "dash", "longdash", "dashdot"]


def _modes(rows: list[SweepRow]) -> list[str]:
    return list(dict.fromkeys(r.mode for r in rows))


def _groups(rows: list[SweepRow]) -> list[str]:
    return list(dict.fromkeys(group_of(r) for r in rows))


def _short_titles(groups: list[str]) -> dict[str, str]:
    """Facet titles: only the parts of the group names that differ (the model, usually)."""
    parts = [g.split(" · ") for g in groups]
    varying = [i for i in range(len(parts[0])) if len({p[i] for p in parts if len(p) > i}) > 1] if parts else []
    return {g: " · ".join(p[i] for i in varying) or g for g, p in zip(groups, parts)}


def _facets(rows: list[SweepRow], height: int, y_title: str):
    """One subplot per group (shared y axis), the mode colours shared by all; returns the figure,
    the groups in order (group i in grid cell i + 1) and a `legend(mode)` that shows each mode once."""
    groups = _groups(rows)
    titles = _short_titles(groups)
    widths = [max(1, len({r.resolution for r in rows if group_of(r) == g})) for g in groups]
    fig = pj.grid(rows=1, cols=len(groups), shared_y=True, column_widths=widths,
                  titles=[_text(titles[g]) for g in groups], horizontal_spacing=0.04)
    shown: set[str] = set()

    def legend(name: str) -> bool:
        first = name not in shown
        shown.add(name)
        return first
    pj.update_axes(fig, "y", cell=1, title=_title(y_title))
    pj.update_axes(fig, "x", type="category", title=_title("resolution (px)"))
    pj.update_layout(fig, height=height)
    return fig, groups, legend


def _curves(rows: list[SweepRow], group: str, value):
    modes = _modes(rows)
    for mode in modes:
        rs = sorted((r for r in rows if group_of(r) == group and r.mode == mode and value(r) is not None),
                    key=lambda r: r.resolution or 0)
        if rs:
            yield modes.index(mode), mode, rs


def speedup(sweep: Sweep) -> Figure | None:
    """Step speed-up (solid) and GPU kernel-time speed-up (dotted) of each mode over its run's
    reference, against resolution; one panel per model (group)."""
    rows = [r for r in sweep.rows if r.status == "ok" and r.speedup is not None]
    if not rows:
        return None
    fig, groups, legend = _facets(rows, 460, "speed-up over the reference (×)")
    for col, group in enumerate(groups, start=1):
        for mi, mode, rs in _curves(rows, group, lambda r: r.speedup):
            xs = [str(r.resolution) for r in rs]
            pj.in_cell(fig, col, pj.scatter(
                x=xs, y=[r.speedup for r in rs], name=_text(mode), legendgroup=_text(mode),
                showlegend=legend(mode), mode="lines+markers",
                line=dict(color=mode_color(mi)), marker=dict(symbol=MODE_SYMBOLS[mi % len(MODE_SYMBOLS)], size=9),
                customdata=[[fmt.speedup(r.min_speedup), fmt.duration_ms(r.step_median_ms),
                             fmt.speedup(r.kernel_speedup), " (noisy)" if r.noisy else ""] for r in rs],
                hovertemplate=f"{_text(mode)} · %{{x}} px<br>step speed-up %{{y:.2f}}×%{{customdata[3]}}, "
                              "from the fastest steps %{customdata[0]}<br>GPU kernel time %{customdata[2]} · "
                              "step %{customdata[1]}<extra></extra>"))
            ks = [r for r in rs if r.kernel_speedup is not None]
            if ks:
                pj.in_cell(fig, col, pj.scatter(
                    x=[str(r.resolution) for r in ks], y=[r.kernel_speedup for r in ks],
                    name=_text(mode), legendgroup=_text(mode), showlegend=False, mode="lines+markers",
                    opacity=0.55, line=dict(color=mode_color(mi), dash="dot", width=1.5), marker=dict(size=5),
                    hovertemplate=f"{_text(mode)} · %{{x}} px: %{{y:.2f}}× GPU kernel-time speed-up<extra></extra>"))
        pj.hline(fig, col, 1.0, line=dict(color="#1a202c", width=1))
    return _style(fig, 460, legend=dict(orientation="v", x=1.02, y=1))


def step_and_kernel_time(sweep: Sweep) -> Figure | None:
    """GPU kernel time per step (bars) and the measured median step (marks, whiskers: IQR)."""
    rows = [r for r in sweep.rows if r.status == "ok" and r.step_median_ms is not None]
    if not rows:
        return None
    fig, groups, legend = _facets(rows, 460, "ms per denoiser step")
    for col, group in enumerate(groups, start=1):
        for mi, mode, rs in _curves(rows, group, lambda r: r.step_median_ms):
            xs = [str(r.resolution) for r in rs]
            pj.in_cell(fig, col, pj.bar(
                x=xs, y=[r.kernel_ms_per_step or 0 for r in rs], name=_text(mode), legendgroup=_text(mode),
                showlegend=legend(mode), marker=dict(color=mode_color(mi)), opacity=0.6, offsetgroup=mode,
                hovertemplate=f"{_text(mode)} · %{{x}} px: GPU kernels %{{y:.2f}} ms per step<extra></extra>"))
            pj.in_cell(fig, col, pj.scatter(
                x=xs, y=[r.step_median_ms for r in rs], name=_text(mode), legendgroup=_text(mode),
                showlegend=False, mode="markers", offsetgroup=mode,
                marker=dict(color=mode_color(mi), symbol="line-ew-open", size=12, line=dict(width=3)),
                error_y=dict(type="data", array=[(r.step_iqr_ms or 0) / 2 for r in rs], visible=True,
                             color=mode_color(mi)),
                hovertemplate=f"{_text(mode)} · %{{x}} px: measured step %{{y:.2f}} ms (median; "
                              "whiskers: IQR)<extra></extra>"))
    pj.update_axes(fig, "y", rangemode="tozero")
    return _style(fig, 460, barmode="group", scattermode="group", legend=dict(orientation="v", x=1.02, y=1))


def peak_memory(sweep: Sweep) -> Figure | None:
    """Peak allocated memory per mode against resolution; an X marks a mode's first OOM, at
    the size it asked for."""
    rows = [r for r in sweep.rows if (r.status == "ok" and r.peak_allocated_bytes) or r.status == "oom"]
    if not any(r.peak_allocated_bytes for r in rows):
        return None
    fig, groups, legend = _facets(rows, 420, "peak allocated (GiB)")
    modes = _modes(rows)
    for col, group in enumerate(groups, start=1):
        for mi, mode, rs in _curves([r for r in rows if r.status == "ok"], group, lambda r: r.peak_allocated_bytes):
            pj.in_cell(fig, col, pj.scatter(
                x=[str(r.resolution) for r in rs], y=[r.peak_allocated_bytes / 2**30 for r in rs],
                name=_text(mode), legendgroup=_text(mode), showlegend=legend(mode),
                mode="lines+markers", line=dict(color=mode_color(mi)),
                marker=dict(symbol=MODE_SYMBOLS[mi % len(MODE_SYMBOLS)], size=9),
                customdata=[fmt.bytes_binary(r.peak_allocated_bytes) for r in rs],
                hovertemplate=f"{_text(mode)} · %{{x}} px: peak %{{customdata}}<extra></extra>"))
        for f in (f for f in sweep.oom_frontier if f.group == group):
            mi = modes.index(f.mode) if f.mode in modes else 0
            asked = fmt.bytes_binary(f.requested_bytes) if f.requested_bytes else "an unknown size"
            pj.in_cell(fig, col, pj.scatter(
                x=[str(f.resolution)], y=[(f.requested_bytes or 0) / 2**30], mode="markers",
                name=_text(f"{f.mode}: out of memory"), showlegend=legend(f"oom {f.mode}"),
                marker=dict(symbol="x", size=14, color=mode_color(mi), line=dict(width=2)),
                hovertemplate=f"{_text(f.mode)} ran out of memory at %{{x}} px asking for {asked} "
                              "(y: the size asked for)<extra></extra>"))
    pj.update_axes(fig, "y", rangemode="tozero")
    return _style(fig, 420, legend=dict(orientation="v", x=1.02, y=1))


def bound_shares(sweep: Sweep) -> Figure | None:
    """Per job × mode: GPU kernel time by roofline bound, then the host's share of the step."""
    rows = [r for r in sweep.rows if r.status == "ok" and r.kernel_ms_per_step]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: (group_of(r), r.resolution or 0))
    n_groups = len(_groups(rows))
    titles = _short_titles(_groups(rows))
    labels = [_text(f"{r.resolution} px · {r.mode}" + ("" if n_groups == 1 else f" · {titles[group_of(r)]}"))
              for r in rows]
    fig = pj.figure()
    for bound in ("compute", "memory", "latency", "unknown"):
        xs = [getattr(r, f"{bound}_bound_ms_per_step") or 0.0 for r in rows]
        if any(xs):
            fig["data"].append(pj.bar(y=labels, x=xs, orientation="h", name=f"{bound}-bound kernels (est.)",
                                      marker=dict(color=BOUND_COLORS[bound]),
                                      hovertemplate=f"%{{y}}<br>{bound}-bound: %{{x:.2f}} ms per step<extra></extra>"))
    host = [r.host_ms_per_step or 0.0 for r in rows]
    if any(host):
        fig["data"].append(pj.bar(y=labels, x=host, orientation="h", name="GPU waiting on the host (step − kernel time)",
                                  marker=dict(color=HOST_COLOR, pattern=dict(shape=".", fgcolor="#dd6b20")),
                                  hovertemplate="%{y}<br>host: %{x:.2f} ms per step<extra></extra>"))
    pj.update_axes(fig, "y", autorange="reversed")
    pj.update_axes(fig, "x", title=_title("ms per denoiser step"))
    return _style(fig, 120 + 24 * len(rows), left=20 + max(len(x) for x in labels) * 7, barmode="stack",
                  legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))


def _series(rows: list[SweepRow], value, x):
    """(group index, group, mode index, mode, [rows sorted by x]) for each curve with data."""
    modes, groups = _modes(rows), _groups(rows)
    for gi, group in enumerate(groups):
        for mi, mode in enumerate(modes):
            rs = sorted((r for r in rows if group_of(r) == group and r.mode == mode and value(r) is not None
                         and x(r) is not None), key=x)
            if rs:
                yield gi, group, mi, mode, rs


def attention_scaling(sweep: Sweep) -> Figure | None:
    """Attention kernel time per step against latent tokens, log-log, with each fit's exponent."""
    rows = [r for r in sweep.rows if r.status == "ok"]
    fits = {(f.group, f.mode): f for f in sweep.attention_fits}
    fig = pj.figure()
    titles = _short_titles(_groups(rows)) if rows else {}
    n_groups = len(titles)
    for gi, group, mi, mode, rs in _series(rows, lambda r: r.attention_ms_per_step or None, x=lambda r: r.tokens):
        fit = fits.get((group, mode))
        name = _text(mode if n_groups == 1 else f"{mode} · {titles[group]}") + (f" (∝ N^{fit.exponent:.2f})" if fit else "")
        fig["data"].append(pj.scatter(
            x=[r.tokens for r in rs], y=[r.attention_ms_per_step for r in rs], name=name,
            mode="markers", marker=dict(color=mode_color(mi), symbol=MODE_SYMBOLS[mi % len(MODE_SYMBOLS)], size=10),
            hovertemplate=f"{_text(mode)}<br>%{{x:,}} tokens: attention %{{y:.2f}} ms per step<extra></extra>"))
        if fit:
            lo, hi = rs[0].tokens, rs[-1].tokens
            xs = [lo * (hi / lo) ** (i / 20) for i in range(21)]
            fig["data"].append(pj.scatter(
                x=xs, y=[fit.constant_ms * x ** fit.exponent for x in xs], mode="lines", showlegend=False,
                line=dict(color=mode_color(mi), width=1.5, dash=DASHES[gi % len(DASHES)]), hoverinfo="skip"))
    for gi, group, mi, mode, rs in _series(rows, lambda r: r.kernel_ms_per_step, x=lambda r: r.tokens):
        if mi:                   # the rest of the UNet, once per group: from the reference mode's rows
            continue
        rest = [(r.tokens, r.kernel_ms_per_step - (r.attention_ms_per_step or 0)) for r in rs]
        fig["data"].append(pj.scatter(
            x=[t for t, _ in rest], y=[v for _, v in rest], mode="lines+markers",
            name=_text("rest of the model (" + mode + ")" + ("" if n_groups == 1 else f" · {titles[group]}")),
            line=dict(color="#718096", dash="dash"), marker=dict(size=6),
            hovertemplate="%{x:,} tokens: rest of the model %{y:.2f} ms per step<extra></extra>"))
    if not fig["data"]:
        return None
    pj.update_axes(fig, "x", type="log",
                   title=_title("image tokens at the top level, N (UNet: (resolution / 8)², DiT: (resolution / 16)²)"))
    pj.update_axes(fig, "y", type="log", title=_title("GPU ms per step"))
    return _style(fig, 460, legend=dict(orientation="v", x=1.02, y=1))


def predicted_vs_measured(sweep: Sweep) -> Figure | None:
    """The eager profiles' what-ifs (every launch free; the reference's profile with each mode's
    attention, launches free) against the replayed steps measured in the same sweep; the
    diagonal and the ±PREDICTION_TOLERANCE band."""
    from profiler_kit.records import PREDICTION_TOLERANCE

    series = {"own eager profile, every launch free": ("predicted_replayed_ms", "circle"),
              "reference's eager profile with this mode's attention, launches free": ("predicted_from_reference_ms", "diamond")}
    fig = pj.figure()
    lo, hi = None, None
    for name, (field, symbol) in series.items():
        pts = [p for p in sweep.execution_pairs if getattr(p, field) and p.replayed_step_median_ms
               and not (field == "predicted_from_reference_ms" and p.mode == p.reference_mode)]
        if not pts:
            continue
        xs = [p.replayed_step_median_ms for p in pts]
        ys = [getattr(p, field) for p in pts]
        lo = min([lo or min(xs)] + xs + ys)
        hi = max([hi or max(xs)] + xs + ys)
        fig["data"].append(pj.scatter(
            name=_text(name), x=xs, y=ys, mode="markers", marker=dict(symbol=symbol, size=10),
            customdata=[[_text(p.mode), p.resolution, _text(p.execution), f"{(y / x - 1) * 100:+.1f} %"]
                        for p, x, y in zip(pts, xs, ys)],
            hovertemplate="%{customdata[0]} at %{customdata[1]} px (%{customdata[2]})<br>"
                          "measured %{x:.2f} ms, predicted %{y:.2f} ms (%{customdata[3]})<extra></extra>"))
    if lo is None:
        return None
    edge = [lo * 0.85, hi * 1.15]
    fig["data"].append(pj.scatter(name="predicted = measured", x=edge, y=edge, mode="lines",
                                  line=dict(color="#1a202c", width=1)))
    for f, label in ((1 + PREDICTION_TOLERANCE, f"±{PREDICTION_TOLERANCE:.0%}"), (1 - PREDICTION_TOLERANCE, None)):
        fig["data"].append(pj.scatter(name=label or "", x=edge, y=[v * f for v in edge], mode="lines",
                                      showlegend=label is not None, line=dict(color="#a0aec0", width=1, dash="dot")))
    return _style(fig, 420, xaxis=dict(title=_title("measured replayed step, ms (median)")),
                  yaxis=dict(title=_title("predicted from the eager profile, ms (estimate)")))

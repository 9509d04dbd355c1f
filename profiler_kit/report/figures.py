"""Plotly figures built from the analysis records (profiler_kit.records), one function per chart.

Figures only draw what the analysis computed; no figure here derives a new number beyond unit
scaling and sums. Every string that comes from a trace (kernel, op, module names) passes through
`_text` first: Plotly renders a subset of HTML in labels and hover text, and a trace is untrusted
input. A figure is the plain dict plotly.js reads (`plotly_json`: building it through
plotly.graph_objects was most of the report's Python time); each is rendered without its own
copy of plotly.js (`render_div`), the page loads plotly.js once.
"""

from __future__ import annotations

import html
import math
from typing import Iterable

from profiler_kit import units as fmt
from profiler_kit.records import Analysis, Comparison, ModeRecord, StepStats

from . import plotly_json as pj
from .plotly_json import Figure

BOUND_COLORS = {"compute": "#2b6cb0", "memory": "#dd6b20", "latency": "#805ad5", "unknown": "#a0aec0",
                "interconnect": "#2f855a", "host_link": "#b7791f"}
IDLE_COLOR = "#e2e8f0"
CATEGORY_COLORS = {
    "attention": "#2f855a", "softmax": "#c53030", "gemm": "#2b6cb0", "conv": "#4c51bf",
    "layout": "#d69e2e", "norm": "#319795", "elementwise": "#dd6b20", "copy": "#718096",
    "other": "#a0aec0", "communication": "#97266d", "optimizer": "#744210", "embedding": "#285e61",
    "moe_routing": "#9c4221",
}
MODE_COLORS = ["#c53030", "#2b6cb0", "#2f855a", "#805ad5", "#d69e2e", "#319795", "#718096"]
MODE_SYMBOLS = ["circle", "diamond", "square", "triangle-up", "cross", "x", "star"]
_FONT = dict(family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size=13)
# A figure's config: no link to plotly.com in the mode bar (nothing on this page goes online),
# and PNG export at twice the resolution for slides.
_CONFIG = {"displaylogo": False, "responsive": True,
           "toImageButtonOptions": {"format": "png", "scale": 2}}


def _text(value: object) -> str:
    return html.escape(str(value), quote=False)


def category_color(name: str) -> str:
    return CATEGORY_COLORS.get(name, CATEGORY_COLORS["other"])


def mode_color(index: int) -> str:
    return MODE_COLORS[index % len(MODE_COLORS)]


def _label_px(labels: Iterable[object], size: int = 12) -> int:
    """Rough width of the longest label: about 0.6 em per character in a sans-serif font
    (entities such as &lt; count as the one character they show)."""
    return int(max((len(html.unescape(str(x))) for x in labels), default=0) * size * 0.6)


def _style(fig: Figure, height: int, left: int = 64, bottom: int = 50, **layout) -> Figure:
    """Common look. Margins are computed here from the labels, not by Plotly's axis automargin,
    which redraws every figure to measure its labels and made the first render ~40 % slower."""
    base = dict(font=_FONT, height=height, autosize=True,
                margin=dict(l=left, r=16, t=40, b=bottom), hoverlabel=dict(align="left"),
                legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    pj.update_layout(fig, **{**base, **layout})
    fig["layout"]["template"] = pj.template()          # shared, never copied: only serialised
    pj.update_axes(fig, "x", automargin=False)
    pj.update_axes(fig, "y", automargin=False)
    return fig


def _title(text: str) -> dict:
    """An axis title as Plotly writes it (a bare string is its text)."""
    return {"text": text}


def _chart_label(text: str, limit: int = 52) -> str:
    """Module scopes on an axis stay short enough for a laptop screen, keeping their informative
    end; hover and tables keep the full name."""
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def _mode_labels(names: Iterable[str], limit: int = 30) -> list[str]:
    """Mode / trace names on an axis, cut at the end if long (their start tells them apart).
    Each stays unique, since Plotly merges bars that share a category label."""
    out: list[str] = []
    for name in names:
        label = name if len(name) <= limit else name[:limit - 1] + "…"
        while label in out:
            label += "\u200b"          # invisible, keeps two long names that agree in front apart
        out.append(label)
    return [_text(x) for x in out]


def render_div(fig: Figure, div_id: str) -> str:
    """The figure as a <div> and the script that draws it; tells the page when it is drawn."""
    return pj.div(fig, div_id, _CONFIG, post_script="window.pkPlotDone('{plot_id}');")


HOST_COLOR = "#fbd38d"


def _bar_height(n_bars: int, extra: int = 0) -> int:
    return 130 + 34 * n_bars + extra


def time_split(analyses: dict[str, Analysis], step_ms: dict[str, StepStats] | None = None) -> Figure:
    """Per step: GPU kernel time by bound, then the time the GPU had no kernel running.

    With timed runs (experiment reports) that time is the measured median step minus the kernel
    time: the profiler's own host overhead stretches the profiled window, so the trace's idle
    time would overstate it. Without them (any trace) it is the idle time inside the profiled
    window. The trace covers `Analysis.steps` profiled steps; dividing by that count gives per-step
    figures. One horizontal bar per mode keeps long names readable.
    """
    step_ms = step_ms or {}
    labels = _mode_labels(analyses)
    per_step = {m: 1e3 * a.steps for m, a in analyses.items()}      # µs in window -> ms/step
    fig = pj.figure()

    def segment(name: str, values: list[float], color: str, **marker) -> None:
        fig["data"].append(pj.bar(name=name, y=labels, x=values, orientation="h", marker=dict(color=color, **marker),
                                  customdata=[fmt.duration_ms(v) for v in values],
                                  hovertemplate=f"%{{y}}<br>{name}: %{{customdata}} per step<extra></extra>"))

    kernel_ms = {m: 0.0 for m in analyses}
    for bound in BOUND_COLORS:
        xs = [a.bound_us.get(bound, 0.0) / per_step[m] for m, a in analyses.items()]
        for m, x in zip(analyses, xs):
            kernel_ms[m] += x
        if any(xs):
            segment(f"{bound}-bound kernels (est.)", xs, BOUND_COLORS[bound])
    timed = [m for m in analyses if step_ms.get(m) is not None]
    waiting = [max(0.0, step_ms[m].median_ms - kernel_ms[m]) if m in timed else 0.0 for m in analyses]
    if any(waiting):
        segment("GPU waiting on the host (measured step − kernel time)", waiting, HOST_COLOR,
                pattern=dict(shape=".", fgcolor="#dd6b20"))
    idle = [0.0 if m in timed else a.timeline.idle_us / per_step[m] for m, a in analyses.items()]
    if any(idle):
        segment("GPU idle in the profiled window", idle, IDLE_COLOR, pattern=dict(shape="/", fgcolor="#a0aec0"))
    if timed:
        med = [step_ms[m].median_ms for m in timed]
        iqr = [step_ms[m].iqr_ms for m in timed]
        fig["data"].append(pj.scatter(
            name="measured step (median, whiskers: IQR)",
            y=[lab for m, lab in zip(analyses, labels) if m in timed], x=med,
            mode="markers", marker=dict(symbol="line-ns-open", size=26, color="#1a202c", line=dict(width=3)),
            error_x=dict(type="data", array=[i / 2 for i in iqr], visible=True, color="#1a202c"),
            customdata=[[fmt.duration_ms(m), fmt.duration_ms(i)] for m, i in zip(med, iqr)],
            hovertemplate="%{y}<br>measured step: %{customdata[0]} (IQR %{customdata[1]})<extra></extra>"))
    pj.update_axes(fig, "y", autorange="reversed")
    return _style(fig, _bar_height(len(labels), 40), left=20 + _label_px(labels, 13),
                  barmode="stack", xaxis=dict(title=_title("ms per step")), bargap=0.3,
                  legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0, traceorder="normal"))


def categories(analyses: dict[str, Analysis]) -> Figure:
    """GPU time per kernel category: one stacked bar per mode or trace."""
    cats: list[str] = []
    for a in analyses.values():
        for c, v in a.categories_us.items():
            if v and c not in cats:
                cats.append(c)
    cats.sort(key=lambda c: -max(a.categories_us.get(c, 0.0) for a in analyses.values()))
    labels = _mode_labels(analyses)
    fig = pj.figure()
    for cat in cats:
        vals = [a.categories_us.get(cat, 0.0) / 1e3 for a in analyses.values()]
        totals = [a.kernels.total_us for a in analyses.values()]
        fig["data"].append(pj.bar(
            name=_text(cat), y=labels, x=vals, orientation="h", marker=dict(color=category_color(cat)),
            customdata=[[fmt.duration_ms(v), fmt.percent(fmt.share(v * 1e3, t))] for v, t in zip(vals, totals)],
            hovertemplate=f"%{{y}} · {_text(cat)}: %{{customdata[0]}} (%{{customdata[1]}} of kernel time)<extra></extra>"))
    pj.update_axes(fig, "y", autorange="reversed")
    legend_rows = -(-len(cats) // 3)          # the legend sits above, three entries a row
    return _style(fig, _bar_height(len(labels), 22 * legend_rows), barmode="stack", left=20 + _label_px(labels, 13),
                  xaxis=dict(title=_title("GPU kernel time in the profiled window (ms)")),
                  legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0, traceorder="normal"))


def _lighten(hex_color: str, amount: float = 0.55) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{int(c + (255 - c) * amount):02x}" for c in (r, g, b))


def blocks_treemap(analyses: dict[str, Analysis]) -> Figure | None:
    """Mode → block (UNet level or transformer block) → category; tile area is GPU time, so modes compare by size too.

    Two levels show at once (drawing all three made this the slowest figure on the page): each
    block is tinted by its largest category and its hover lists the top categories; a click
    opens the block's categories."""
    if not any(sum(1 for cats in a.blocks_us.values() if sum(cats.values())) > 1
               for a in analyses.values()):
        return None       # one tile ("outside modules") tells nothing: the trace has no module scopes
    ids, labels, parents, values, colors, hover = [], [], [], [], [], []
    for label, a in analyses.items():
        blocks = a.blocks_us
        mode_total = sum(sum(c.values()) for c in blocks.values())
        if not mode_total:
            continue
        root = _text(label)
        ids.append(root); labels.append(_text(label)); parents.append(""); values.append(mode_total)
        colors.append("#ffffff"); hover.append(fmt.duration_us(mode_total))
        for block, cats in blocks.items():
            block_total = sum(cats.values())
            if not block_total:
                continue
            bid = f"{root}/{_text(block)}"
            ids.append(bid); labels.append(_text(block)); parents.append(root); values.append(block_total)
            top = sorted(((us, c) for c, us in cats.items() if us), reverse=True)
            colors.append(_lighten(category_color(top[0][1])))
            hover.append(f"{fmt.duration_us(block_total)} ({fmt.percent(block_total / mode_total)} of {_text(label)})<br>"
                         + ", ".join(f"{_text(c)} {fmt.percent(us / block_total, 0)}" for us, c in top[:4]))
            for cat, us in cats.items():
                if not us:
                    continue
                ids.append(f"{bid}/{_text(cat)}"); labels.append(_text(cat)); parents.append(bid); values.append(us)
                colors.append(category_color(cat))
                hover.append(f"{fmt.duration_us(us)} ({fmt.percent(us / block_total)} of the block)")
    fig = pj.figure(pj.treemap(ids=ids, labels=labels, parents=parents, values=values,
                               branchvalues="total", customdata=hover, maxdepth=2,
                               marker=dict(colors=colors), textinfo="label+percent parent",
                               hovertemplate="%{id}<br>%{customdata}<extra></extra>",
                               tiling=dict(pad=2), pathbar=dict(visible=True)))
    return _style(fig, 520, margin=dict(l=4, r=4, t=30, b=4))  # no axes: margins fixed


def short_scope(scope: str) -> str:
    """down_blocks.0.attentions.1.transformer_blocks.0.attn1 -> down_blocks.0.attentions.1.attn1."""
    return scope.replace(".transformer_blocks.0.", ".")


def attention_by_layer(analyses: dict[str, Analysis]) -> list[dict]:
    """One row per attention layer (module scope), each mode's calls summed in it."""
    rows: dict[str, dict] = {}
    for label, a in analyses.items():
        for call in a.attention.calls_or_empty:
            scope = call.scope or "(unknown scope)"
            row = rows.setdefault(scope, {"scope": scope, "kind": call.kind, "level": call.level,
                                          "q_tokens": call.q_tokens, "kv_tokens": call.kv_tokens,
                                          "heads": call.heads, "head_dim": call.head_dim,
                                          "batch_x_heads": call.batch_x_heads, "modes": {}})
            m = row["modes"].setdefault(label, {"calls": 0, "time_us": 0.0, "flops_estimate": 0.0,
                                                "hbm_bytes_estimate": 0.0, "backends": [], "kernels": []})
            m["calls"] += 1
            m["time_us"] += call.time_us
            m["flops_estimate"] += call.flops_estimate
            m["hbm_bytes_estimate"] += call.hbm_bytes_estimate
            for key, values in (("backends", [call.backend]), ("kernels", call.kernels)):
                for v in values:
                    if v and v not in m[key]:
                        m[key].append(v)
    return list(rows.values())


def attention_layers(analyses: dict[str, Analysis]) -> Figure | None:
    rows = attention_by_layer(analyses)
    if not rows:
        return None
    names = [_text(_chart_label(short_scope(r["scope"]), 44)
                   + f" · {r['kind'] or '?'} {r['q_tokens'] or '?'}×{r['kv_tokens'] or '?'}")
             for r in rows]
    fig = pj.figure()
    for i, label in enumerate(analyses):
        vals = [(r["modes"].get(label) or {}).get("time_us", 0.0) for r in rows]
        if not any(vals):
            continue
        backends = [", ".join((r["modes"].get(label) or {}).get("backends") or ["–"]) for r in rows]
        fig["data"].append(pj.bar(
            name=_text(label), y=names, x=vals, orientation="h", marker=dict(color=mode_color(i)),
            customdata=[[fmt.duration_us(v), _text(b)] for v, b in zip(vals, backends)],
            hovertemplate=f"{_text(label)}<br>%{{y}}<br>%{{customdata[0]}} · backend %{{customdata[1]}}<extra></extra>"))
    pj.update_axes(fig, "y", autorange="reversed", tickfont=dict(size=11))
    pj.update_axes(fig, "x", title=_title("GPU time in the profiled window (µs)"))
    return _style(fig, 140 + 14 * len(rows) * len(analyses), left=20 + _label_px(names, 11),
                  barmode="group", bargap=0.25)


ROOFLINE_POINTS = 400   # per mode, largest first: a bigger model's long tail adds weight, not insight


def _points(analyses: dict[str, Analysis]):
    for i, (label, a) in enumerate(analyses.items()):
        usable = [p for p in a.roofline_points or []
                  if (p.intensity or 0) > 0 and p.flops_estimate > 0 and p.time_us > 0]
        for p in sorted(usable, key=lambda p: -p.time_us)[:ROOFLINE_POINTS]:
            yield i, label, p


def roofs_drawn(analyses: dict[str, Analysis]) -> tuple[float | None, list[tuple[str, float]]]:
    """(memory roof in B/s, [(label, peak FLOP/s)]): exactly the roofs the analyses recorded as
    used (Analysis.roofs), highest first; roofs of equal height share one line and one label."""
    bandwidth = None
    by_peak: dict[float, list[str]] = {}
    for a in analyses.values():
        if a.roofs is None:
            continue
        bandwidth = a.roofs.memory_bandwidth_bytes_per_s
        for roof in a.roofs.compute:
            labels = by_peak.setdefault(roof.peak_flops_per_s, [])
            if roof.label not in labels:
                labels.append(roof.label)
    return bandwidth, [(" / ".join(labels), peak) for peak, labels in sorted(by_peak.items(), reverse=True)]


def other_roofs_drawn(analyses: dict[str, Analysis]) -> tuple[str, float | None, list[tuple[str, float]]]:
    """The roofs of the basis that did NOT judge, as recorded beside the ones that did: ("measured",
    memory B/s, [(label, FLOP/s)]) when the datasheet judged, or ("datasheet", ...) when the
    measured roofs did. Empty where the analyses recorded no second figure."""
    basis, bandwidth, by_peak = "measured", None, {}
    for a in analyses.values():
        if a.roofs is None or (a.roofs.calibration is None and a.roofs.basis == "datasheet"):
            continue
        basis = "datasheet" if a.roofs.basis == "measured" else "measured"
        other = (a.roofs.memory_bandwidth_datasheet_bytes_per_s if basis == "datasheet"
                 else a.roofs.memory_bandwidth_measured_bytes_per_s)
        if other and not math.isclose(other, a.roofs.memory_bandwidth_bytes_per_s, rel_tol=1e-9):
            bandwidth = other
        for roof in a.roofs.compute:
            peak = roof.datasheet_flops_per_s if basis == "datasheet" else roof.measured_flops_per_s
            if peak and not math.isclose(peak, roof.peak_flops_per_s, rel_tol=1e-9):
                labels = by_peak.setdefault(peak, [])
                if roof.label not in labels:
                    labels.append(roof.label)
    return basis, bandwidth, [(" / ".join(labels), peak) for peak, labels in sorted(by_peak.items(), reverse=True)]


OTHER_ROOF_COLOR = "#dd6b20"


def _draw_other_roofs(fig: Figure, analyses: dict[str, Analysis], x_lo: float, x_hi: float) -> None:
    """The roofs of the other basis, dashed and labelled, beside the ones that judged."""
    basis, bandwidth, roofs = other_roofs_drawn(analyses)
    line = dict(color=OTHER_ROOF_COLOR, width=1.5, dash="dot")
    if bandwidth:
        bw_tb = bandwidth / 1e12
        top = max([t / 1e12 for _, t in roofs] + [x_hi * bw_tb / 3])
        fig["data"].append(pj.scatter(x=[x_lo, top / bw_tb], y=[x_lo * bw_tb, top], mode="lines", line=line,
                                      name=f"{basis} roofs", legendgroup="other-roofs", hoverinfo="skip"))
        pj.annotate(fig, x=math.log10(x_lo * 1.5), y=math.log10(x_lo * 1.5 * bw_tb),
                    text=f"HBM {bandwidth / 1e9:,.4g} GB/s ({basis})", showarrow=False,
                    textangle=-28, xanchor="left", yanchor="top", font=dict(size=11, color=OTHER_ROOF_COLOR))
    for i, (name, peak) in enumerate(roofs):
        tflops = peak / 1e12
        fig["data"].append(pj.scatter(x=[x_lo, x_hi], y=[tflops, tflops], mode="lines", line=line, hoverinfo="skip",
                                      name=f"{basis} roofs", legendgroup="other-roofs",
                                      showlegend=not bandwidth and i == 0))
        pj.annotate(fig, x=math.log10(x_hi), y=math.log10(tflops), text=f"{_text(name)} {tflops:,.4g} TFLOP/s ({basis})",
                    showarrow=False, xanchor="right", yanchor="top", font=dict(size=11, color=OTHER_ROOF_COLOR))


def roofline(analyses: dict[str, Analysis]) -> Figure | None:
    """Log-log roofline: achieved TFLOP/s against arithmetic intensity, both from the cost model,
    under the roofs the analysis judged each op against (and no others)."""
    points = list(_points(analyses))
    bandwidth, roofs = roofs_drawn(analyses)
    if not bandwidth or not roofs or not points:
        return None
    bw_tb = bandwidth / 1e12                              # TB/s: TFLOP/s = TB/s × FLOP/byte
    roofs_tflops = [(name, peak / 1e12) for name, peak in roofs]
    intens = [p.intensity for _, _, p in points]
    x_lo = min(min(intens), min(r for _, r in roofs_tflops) / bw_tb) / 3
    x_hi = max(max(intens), max(r for _, r in roofs_tflops) / bw_tb) * 3
    top = max(r for _, r in roofs_tflops)
    judged_by = next((a.roofs.basis for a in analyses.values() if a.roofs is not None), "datasheet")
    suffix = " (measured)" if judged_by == "measured" else ""
    fig = pj.figure(pj.scatter(x=[x_lo, top / bw_tb], y=[x_lo * bw_tb, top], mode="lines", name="memory roof",
                               line=dict(color="#1a202c", width=2), hoverinfo="skip", showlegend=False))
    for name, tflops in roofs_tflops:
        fig["data"].append(pj.scatter(x=[tflops / bw_tb, x_hi], y=[tflops, tflops], mode="lines", showlegend=False,
                                      line=dict(color="#4a5568", width=1.5, dash="dash"), hoverinfo="skip"))
        pj.annotate(fig, x=math.log10(x_hi), y=math.log10(tflops), text=f"{_text(name)} {tflops:,.4g} TFLOP/s{suffix}",
                    showarrow=False, xanchor="right", yanchor="bottom", font=dict(size=11))
    pj.annotate(fig, x=math.log10(x_lo * 1.5), y=math.log10(x_lo * 1.5 * bw_tb),
                text=f"HBM {bandwidth / 1e9:,.4g} GB/s{suffix}", showarrow=False,
                textangle=-28, xanchor="left", yanchor="bottom", font=dict(size=11))
    _draw_other_roofs(fig, analyses, x_lo, x_hi)
    t_max = max(p.time_us for _, _, p in points)
    groups: dict[tuple[int, str, str], list] = {}
    for i, label, p in points:
        groups.setdefault((i, label, p.category or "other"), []).append(p)
    for (i, label, cat), ps in sorted(groups.items()):
        fig["data"].append(pj.scatter(
            x=[p.intensity for p in ps],
            y=[p.flops_estimate / p.time_us / 1e6 for p in ps],
            mode="markers", name=_text(cat), legendgroup=_text(label),
            legendgrouptitle=dict(text=_text(label)),
            marker=dict(symbol=MODE_SYMBOLS[i % len(MODE_SYMBOLS)], color=category_color(cat),
                        size=[6 + 30 * math.sqrt(p.time_us / t_max) for p in ps],
                        line=dict(width=1.5, color=mode_color(i)), opacity=0.8),   # outline: mode
            customdata=[[_text(p.op), _text(p.shapes), p.count, fmt.duration_us(p.time_us),
                         fmt.flops(p.flops_estimate), fmt.bytes_decimal(p.hbm_bytes_estimate), p.bound,
                         fmt.percent(p.attainment), _text(f"{p.dtype} {p.engine}")] for p in ps],
            hovertemplate=(f"<b>%{{customdata[0]}}</b> ({_text(label)}, {_text(cat)})<br>%{{customdata[1]}}<br>"
                           "%{customdata[2]} calls, %{customdata[3]}<br>"
                           "estimated %{customdata[4]}, %{customdata[5]}<br>"
                           "intensity %{x:.3g} FLOP/B · achieved %{y:.3g} TFLOP/s<br>"
                           "%{customdata[6]}-bound · %{customdata[7]} of its roofline (%{customdata[8]} roof)"
                           "<extra></extra>")))
    pj.update_axes(fig, "x", type="log", title=_title("arithmetic intensity (FLOP / byte, estimated)"), tickformat="~g")
    pj.update_axes(fig, "y", type="log", title=_title("achieved TFLOP/s (estimated FLOPs / measured time)"),
                   tickformat="~g")
    return _style(fig, 560, left=72, legend=dict(orientation="v", x=1.02, y=1, groupclick="toggleitem"))


def memory_peaks(rows: dict[str, ModeRecord]) -> Figure:
    """Peak allocated and reserved memory per mode (timed runs), GiB."""
    fig = pj.figure()
    labels = _mode_labels(rows)
    for key, name, color in (("peak_allocated_bytes", "peak allocated", "#2b6cb0"),
                             ("peak_reserved_bytes", "peak reserved", "#a3bffa")):
        xs = [(getattr(r, key) or 0) / 2**30 for r in rows.values()]
        fig["data"].append(pj.bar(name=name, y=labels, x=xs, orientation="h", marker=dict(color=color),
                                  customdata=[fmt.bytes_binary(getattr(r, key)) for r in rows.values()],
                                  hovertemplate=f"%{{y}} {name}: %{{customdata}}<extra></extra>"))
    pj.update_axes(fig, "y", autorange="reversed")
    return _style(fig, _bar_height(len(labels), 20 * len(labels)), left=20 + _label_px(labels, 13),
                  barmode="group", xaxis=dict(title=_title("GiB")))


MEMORY_POINTS = 600     # per line: enough for a 1366 px chart, small enough for a 6 MB page


def downsample_keep_extremes(xs: list[float], ys: list[float], points: int = MEMORY_POINTS):
    """At most `points` samples, keeping each bucket's lowest and highest value in time order,
    so the peak and the troughs of the allocation curve survive the thinning."""
    if len(xs) <= points:
        return list(xs), list(ys)
    buckets = points // 2
    size = len(xs) / buckets
    out_x, out_y = [], []
    for i in range(buckets):
        lo, hi = int(i * size), max(int((i + 1) * size), int(i * size) + 1)
        idx = range(lo, min(hi, len(xs)))
        keep = sorted({min(idx, key=ys.__getitem__), max(idx, key=ys.__getitem__)})
        out_x += [xs[k] for k in keep]
        out_y += [ys[k] for k in keep]
    return out_x, out_y


def memory_timeline(analyses: dict[str, Analysis]) -> Figure | None:
    fig = pj.figure()
    for i, (label, a) in enumerate(analyses.items()):
        tl = a.memory.timeline
        if tl is None:
            continue
        ts, alloc = downsample_keep_extremes(tl.ts_us, tl.allocated_bytes)
        if not ts:
            continue
        t0 = ts[0]
        fig["data"].append(pj.scatter(
            x=[round((t - t0) / 1e3, 3) for t in ts], y=[round(b / 2**30, 4) for b in alloc],
            name=_text(label), mode="lines", line=dict(color=mode_color(i), width=2, shape="hv"),
            hovertemplate=f"{_text(label)}<br>%{{x:.2f}} ms: %{{y:.3f}} GiB<extra></extra>"))
    if not fig["data"]:
        return None
    return _style(fig, 340, xaxis=dict(title=_title("time since the first allocation in the trace (ms)")),
                  yaxis=dict(title=_title("allocated (GiB)")))


def comparison_deltas(comparison: Comparison) -> Figure:
    """b − a per category and per block: negative means b spends less GPU time there."""
    a, b = _text(comparison.a), _text(comparison.b)
    sections = [("categories_us", "by category"), ("blocks_us", "by block / module")]
    counts = [max(1, len(getattr(comparison, key))) for key, _ in sections]
    height = 240 + 24 * sum(counts)
    fig = pj.grid(rows=2, cols=1, titles=[f"{b} − {a}, {t}" for _, t in sections],
                  row_heights=counts, vertical_spacing=110 / height)   # room for axis title + next title
    labels = []
    for row, (key, _) in enumerate(sections, start=1):
        items = sorted(getattr(comparison, key).items(), key=lambda kv: kv[1].delta)
        ys = [_text(_chart_label(k, 40)) for k, _ in items]
        labels += ys
        deltas = [v.delta / 1e3 for _, v in items]
        pj.in_cell(fig, row, pj.bar(
            y=ys, x=deltas, orientation="h", showlegend=False,
            marker=dict(color=["#2f855a" if d < 0 else "#c53030" for d in deltas]),
            customdata=[[_text(k), fmt.duration_us(v.a), fmt.duration_us(v.b),
                         fmt.duration_us(v.delta)] for k, v in items],
            hovertemplate=f"%{{customdata[0]}}<br>{a}: %{{customdata[1]}}<br>{b}: %{{customdata[2]}}<br>"
                          "change: %{customdata[3]}<extra></extra>"))
        pj.update_axes(fig, "x", cell=row, title=_title("change in GPU time (ms)"), zeroline=True,
                       zerolinecolor="#1a202c")
    return _style(fig, height, left=20 + _label_px(labels, 12))

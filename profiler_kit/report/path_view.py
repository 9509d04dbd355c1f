"""The critical path in the report: a figure of the first profiled step's path per trace or mode,
its breakdown, and the what-ifs re-timed on it (analysis.json's ``critical_path``).

Draws and formats what the analysis stored; the path, its parts and every prediction were
decided there (analysis/critical_path.py, analysis/what_if.py).
"""

from __future__ import annotations

from profiler_kit import units as fmt
from profiler_kit.records import PATH_PARTS, Analysis, StepStats
from profiler_kit.report import plotly_json as pj
from profiler_kit.report.figures import _label_px, _mode_labels, _style, _text, _title, category_color
from profiler_kit.report.plotly_json import Figure

PART_LABELS = {"cpu": "host work (ops, Python)", "launch": "launch overhead", "sync": "sync wait",
               "gpu": "GPU kernels", "gpu_gap": "GPU gap"}
PART_COLORS = {"cpu": "#fbd38d", "launch": "#b794f4", "sync": "#e53e3e", "gpu_gap": "#cbd5e0"}


def path_figure(analyses: dict[str, Analysis]) -> Figure | None:
    """One row per trace: its first step's path from the step's start (0) to its end, each
    stretch coloured by what the step waited on (GPU kernels by category)."""
    rows = {m: a.critical_path.steps[0] for m, a in analyses.items()
            if a.critical_path is not None and a.critical_path.steps and a.critical_path.steps[0].segments}
    if not rows:
        return None
    labels = dict(zip(rows, _mode_labels(rows)))
    groups: dict[tuple[str, str], dict[str, list]] = {}
    for mode, step in rows.items():
        for s in step.segments:
            key = (s.part, s.label)
            g = groups.setdefault(key, {"y": [], "x": [], "base": [], "text": []})
            g["y"].append(labels[mode])
            g["x"].append(s.dur_us / 1e3)
            g["base"].append(s.start_us / 1e3)
            g["text"].append(fmt.duration_us(s.dur_us))
    fig = pj.figure()
    for (part, label), g in sorted(groups.items(), key=lambda kv: PATH_PARTS.index(kv[0][0])):
        name = f"GPU: {label}" if part == "gpu" else PART_LABELS.get(part, part)
        color = category_color(label) if part == "gpu" else PART_COLORS.get(part, "#a0aec0")
        fig["data"].append(pj.bar(
            name=_text(name), y=g["y"], x=g["x"], base=g["base"], orientation="h",
            marker=dict(color=color, line=dict(width=0)), customdata=g["text"],
            hovertemplate=f"%{{y}}<br>{_text(name)}: %{{customdata}} from %{{base:.3f}} ms<extra></extra>"))
    pj.update_axes(fig, "y", autorange="reversed")
    return _style(fig, 130 + 46 * len(rows), left=20 + _label_px(labels.values(), 13), barmode="overlay",
                  xaxis=dict(title=_title("ms from the step's start (first profiled step)")), bargap=0.25)


def path_rows(analyses: dict[str, Analysis]) -> list[dict]:
    """Per trace: the mean path and its parts, formatted, with the host's top op."""
    out = []
    for mode, a in analyses.items():
        cp = a.critical_path
        if cp is None or not cp.steps:
            continue
        n = len(cp.steps)
        parts = {p: sum(s.breakdown_us.get(p, 0.0) for s in cp.steps) / n for p in PATH_PARTS}
        length = cp.length_us
        first = cp.steps[0]
        top_gpu = max(first.gpu_by_category_us.items(), key=lambda kv: kv[1], default=(None, 0.0))
        top_cpu = max(((k, v) for k, v in first.cpu_by_name_us.items() if k != "(other)"),
                      key=lambda kv: kv[1], default=(None, 0.0))
        out.append({"label": mode, "steps": n, "source": cp.step_source, "length": fmt.duration_us(length),
                    "parts": {p: f"{fmt.duration_us(v)} ({fmt.percent(v / length if length else None)})"
                              for p, v in parts.items()},
                    "top_gpu": f"{top_gpu[0]} {fmt.duration_us(top_gpu[1])}" if top_gpu[0] else "–",
                    "top_cpu": f"{top_cpu[0]} {fmt.duration_us(top_cpu[1])}" if top_cpu[0] else "–",
                    "latency": fmt.duration_us(cp.launch_latency_us),
                    "launch_bound": f"{first.launch_bound:,} of {first.activities:,}"})
    return out


def what_if_rows(analyses: dict[str, Analysis], step_ms: dict[str, StepStats] | None = None) -> list[dict]:
    """Per trace and scenario: the predicted step beside the profiled path (and, in a run, the
    measured step of the same mode). Of the other modes' attention, only the fastest's (the
    first stored: what_if.with_mode_what_ifs adds them fastest first); analysis.json has all."""
    step_ms = step_ms or {}
    out = []
    for mode, a in analyses.items():
        cp = a.critical_path
        if cp is None:
            continue
        measured = step_ms.get(mode)
        fastest = next((w.reference for w in cp.what_if if w.reference), None)
        for w in cp.what_if:
            if w.reference is not None and w.reference != fastest:
                continue
            out.append({"label": mode, "title": w.title, "scenario": w.scenario,
                        "baseline": fmt.duration_us(w.baseline_step_us),
                        "predicted": fmt.duration_us(w.predicted_step_us),
                        "speedup": fmt.speedup(w.speedup),
                        "measured": fmt.duration_ms(measured.median_ms) if measured else "–"})
    return out

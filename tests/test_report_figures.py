"""Figures drawn from real analyzer output: what they keep when they thin or trim data."""

from __future__ import annotations

import msgspec

from profiler_kit.report import figures
from report_support import VIT, analysis, sd_summary


def test_memory_timeline_thinning_keeps_the_peak_and_order():
    tl = sd_summary().modes["vanilla"].analysis.memory.timeline
    assert len(tl.ts_us) > figures.MEMORY_POINTS, "the SD trace's timeline is long enough to thin"
    xs, ys = figures.downsample_keep_extremes(tl.ts_us, tl.allocated_bytes)
    assert len(xs) <= figures.MEMORY_POINTS and xs == sorted(xs)
    assert max(ys) == max(tl.allocated_bytes)
    assert min(ys) == min(tl.allocated_bytes)


def test_time_split_reaches_the_measured_step():
    """Run reports: kernel time by bound plus the GPU waiting on the host add up to the median step."""
    summary = sd_summary()
    modes = summary.ok_modes()
    fig = figures.time_split({m: r.analysis for m, r in modes.items()}, {m: r.step_ms for m, r in modes.items()})
    bars = [t for t in fig.data if t.type == "bar"]
    for i, (mode, record) in enumerate(modes.items()):
        total = sum(t.x[i] for t in bars)
        kernel_ms = record.analysis.kernel_us_per_step / 1e3
        assert abs(total - max(record.step_ms.median_ms, kernel_ms)) < 0.05 * kernel_ms, mode


def test_roofline_draws_exactly_the_roofs_the_analysis_used():
    """One owner for the roofs: the chart's ceilings are the analysis's recorded roofs, no more."""
    a = analysis(VIT)
    fig = figures.roofline({"vit": a})
    notes = [ann.text for ann in fig.layout.annotations]
    roof_notes = [n for n in notes if "TFLOP/s" in n]
    assert len(roof_notes) == len({r.peak_flops_per_s for r in a.roofs.compute})
    for roof in a.roofs.compute:
        assert any(roof.label in n and f"{roof.peak_flops_per_s / 1e12:,.4g} TFLOP/s" in n for n in roof_notes)
    assert any(f"{a.gpu_spec.memory_bandwidth_gbps:,.4g} GB/s" in n for n in notes)
    dashed = [t for t in fig.data if t.mode == "lines" and t.line.dash == "dash"]
    assert sorted(t.y[0] for t in dashed) == sorted({r.peak_flops_per_s / 1e12 for r in a.roofs.compute})
    assert figures.roofline({"vit": msgspec.structs.replace(a, roofs=None)}) is None

"""Figures drawn from real analyzer output: what they keep when they thin or trim data."""

from __future__ import annotations

from profiler_kit.report import figures
from report_support import VIT, analysis, sd_summary


def test_memory_timeline_thinning_keeps_the_peak_and_order():
    a = sd_summary()["modes"]["vanilla"]["analysis"]
    tl = a["memory"]["timeline"]
    assert len(tl["ts_us"]) > figures.MEMORY_POINTS, "the SD trace's timeline is long enough to thin"
    xs, ys = figures.downsample_keep_extremes(tl["ts_us"], tl["allocated_bytes"])
    assert len(xs) <= figures.MEMORY_POINTS and xs == sorted(xs)
    assert max(ys) == max(tl["allocated_bytes"])
    assert min(ys) == min(tl["allocated_bytes"])


def test_time_split_reaches_the_measured_step():
    """Run reports: kernel time by bound plus the GPU waiting on the host add up to the median step."""
    summary = sd_summary()
    modes = {m: r for m, r in summary["modes"].items() if r["status"] == "ok"}
    fig = figures.time_split({m: r["analysis"] for m, r in modes.items()}, {m: r["step_ms"] for m, r in modes.items()})
    bars = [t for t in fig.data if t.type == "bar"]
    for i, (mode, record) in enumerate(modes.items()):
        total = sum(t.x[i] for t in bars)
        kernel_ms = record["analysis"]["kernels"]["total_us"] / figures.steps_in(record["analysis"]) / 1e3
        assert abs(total - max(record["step_ms"]["median"], kernel_ms)) < 0.05 * kernel_ms, mode


def test_roofline_ceilings_come_from_the_spec():
    a = analysis(VIT)
    fig = figures.roofline({"vit": a}, a["gpu_spec"])
    notes = " ".join(ann.text for ann in fig.layout.annotations)
    assert f"{a['gpu_spec']['fp16_tensor_tflops']:g} TFLOP/s" in notes
    assert f"{a['gpu_spec']['memory_bandwidth_gbps']:g} GB/s" in notes
    assert figures.roofline({"vit": a}, None) is None

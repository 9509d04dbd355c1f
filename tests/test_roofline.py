"""Roofline: bound, attainment and ceilings against hand calculations on datasheet figures."""

from __future__ import annotations

import pytest

from profiler_kit.analysis.cost_model import OpCost, estimate_op
from profiler_kit.analysis.roofline import (LATENCY_THRESHOLD_US, LOW_ATTAINMENT, SUBSTANTIAL_WORK_US,
                                            ridge_point, roofline, roofs_used, roof_label)
from profiler_kit.hardware.specs import load_spec

H = "c10::Half"


@pytest.fixture(scope="module")
def h100():
    return load_spec("h100-sxm")


def test_vanilla_softmax_is_memory_bound(h100):
    # SD 1.5 at 512 px: softmax over 16 x 4096 x 4096 fp16 scores, 1 GiB of traffic.
    cost = estimate_op("aten::_softmax", [[16, 4096, 4096], [], []], [H, "Scalar", "Scalar"], ["", "-1", "False"])
    point = roofline(cost, duration_us=450.0, spec=h100)
    memory_us = 2 * 2 * 16 * 4096 * 4096 / 3350e9 * 1e6          # 320.5 µs at 3.35 TB/s
    assert point.memory_us == pytest.approx(memory_us)
    assert point.roofline_us == pytest.approx(memory_us)
    assert point.bound == "memory"
    assert point.attainment == pytest.approx(memory_us / 450.0)
    assert point.achieved_gbps == pytest.approx(cost.bytes / 450e-6 / 1e9)
    assert point.intensity_flops_per_byte == pytest.approx(1.25)   # 5 FLOPs per 4 bytes
    assert (point.engine, point.dtype, point.peak_tflops) == ("cuda", "fp16", 133.8)


def test_large_gemm_is_compute_bound(h100):
    cost = estimate_op("aten::mm", [[8192, 8192], [8192, 8192]], [H, H], ["", ""])
    compute_us = 2 * 8192**3 / 989.4e12 * 1e6
    point = roofline(cost, duration_us=1.25 * compute_us, spec=h100)
    assert point.bound == "compute"
    assert point.compute_us == pytest.approx(compute_us)
    assert point.attainment == pytest.approx(0.8)
    assert point.achieved_tflops == pytest.approx(989.4 * 0.8)
    assert point.intensity_flops_per_byte > ridge_point(h100, "fp16", "tensor")


def test_fused_attention_is_compute_bound_where_vanilla_is_not(h100):
    fused = estimate_op("xformers::efficient_attention_forward_cutlass", [[2, 4096, 8, 40]] * 3, [H] * 3, ["", "", ""])
    point = roofline(fused, duration_us=200.0, spec=h100)
    assert point.bound == "compute"          # ~2000 FLOP/byte, far right of the 295 ridge
    assert point.intensity_flops_per_byte > 1000


def test_short_kernels_are_latency_bound(h100):
    # A tiny element-wise op: its roofline time is nanoseconds, its kernel takes ~3 µs.
    cost = estimate_op("aten::add", [[1024], [1024], []], [H, H, "Scalar"], ["", "", "1"])
    point = roofline(cost, duration_us=3.0, spec=h100)
    assert point.duration_us < LATENCY_THRESHOLD_US and point.bound == "latency"


def test_little_work_far_below_both_roofs_is_latency_bound(h100):
    # 8 MiB (2.5 µs of ideal traffic) taking 60 µs: 4% of bandwidth, long enough not to be
    # "short", too little work to fill the GPU (the SD UNet's 8x8 convolutions look like this).
    cost = OpCost(flops=0.0, bytes=8 * 2**20, engine="cuda", dtype="fp16", formula="copy", kind="copy")
    point = roofline(cost, duration_us=60.0, spec=h100)
    assert point.roofline_us < SUBSTANTIAL_WORK_US
    assert point.attainment < LOW_ATTAINMENT and point.bound == "latency" and point.far_below_roof
    # 64 MiB at 80% of bandwidth (25 µs) is memory-bound.
    big = OpCost(flops=0.0, bytes=64 * 2**20, engine="cuda", dtype="fp16", formula="copy", kind="copy")
    fast = roofline(big, duration_us=big.bytes / 3350e9 * 1e6 / 0.8, spec=h100)
    assert fast.bound == "memory" and fast.attainment == pytest.approx(0.8) and not fast.far_below_roof


def test_substantial_but_inefficient_kernel_keeps_its_nearer_roof(h100):
    # SD 1.5's top-level attention through PyTorch's CUTLASS kernel (head_dim 40) as an H200
    # trace shows it: ~580 µs per call against a 43 µs compute roof. Launch latency cannot
    # explain that; the kernel is compute-side inefficient, and flagged as far below its roof.
    cost = estimate_op("aten::_scaled_dot_product_efficient_attention", [[2, 8, 4096, 40]] * 3 + [[]] * 5,
                       [H] * 3 + ["", "Scalar", "Scalar", "Scalar", ""], ["", "", "", "", "False", "0.", "False", ""])
    point = roofline(cost, duration_us=580.0, spec=h100)
    assert point.roofline_us > SUBSTANTIAL_WORK_US and point.attainment < LOW_ATTAINMENT
    assert point.bound == "compute" and point.far_below_roof


def test_zero_duration_does_not_divide_by_zero(h100):
    cost = OpCost(flops=1.0, bytes=1.0, engine="cuda", dtype="fp32", formula="elementwise")
    point = roofline(cost, duration_us=0.0, spec=h100)
    assert point.bound == "latency" and point.attainment == 0.0


def test_tf32_roof_only_when_allowed(h100):
    """The cost model decides TF32 (one owner); the roofline judges against the cost's roof."""
    args = ([[4096, 4096], [4096, 4096]], ["float", "float"], ["", ""])
    assert roofline(estimate_op("aten::mm", *args), 1000.0, h100).peak_tflops == pytest.approx(66.9)
    tf32 = roofline(estimate_op("aten::mm", *args, allow_tf32=True), 1000.0, h100)
    assert (tf32.engine, tf32.dtype, tf32.peak_tflops) == ("tensor", "tf32", pytest.approx(494.7))
    # TF32 never applies to element-wise math.
    add = estimate_op("aten::add", [[2**24], [2**24], []], ["float", "float", "Scalar"], ["", "", "1"],
                      allow_tf32=True)
    assert roofline(add, 1000.0, h100).engine == "cuda"


def test_no_compute_roof_for_math_the_card_lacks():
    a100 = load_spec("a100")
    cost = OpCost(flops=2e12, bytes=1e9, engine="tensor", dtype="fp8_e4m3", formula="gemm.scaled_mm", kind="gemm")
    point = roofline(cost, 10_000.0, a100)
    assert point.compute_us is None and point.bound == "unknown"
    assert point.roofline_us == pytest.approx(1e9 / 2039e9 * 1e6)


def test_ridge_points_by_hand(h100):
    assert ridge_point(h100, "fp16", "tensor") == pytest.approx(989.4e12 / 3350e9)
    assert ridge_point(h100, "fp32", "cuda") == pytest.approx(66.9e12 / 3350e9)
    assert ridge_point(load_spec("a100"), "fp8_e4m3", "tensor") is None


def test_roofs_used_are_the_roofs_that_judged(h100):
    """What the analysis records (and the chart draws): each roof that judged an op, its ridge,
    and the time judged against it; roofs of the card no op used are left out."""
    mm = estimate_op("aten::mm", [[4096, 4096], [4096, 4096]], ["c10::Half", "c10::Half"], ["", ""])
    add = estimate_op("aten::add", [[2**24], [2**24], []], ["float", "float", "Scalar"], ["", "", "1"])
    points = [roofline(mm, 300.0, h100), roofline(mm, 200.0, h100), roofline(add, 250.0, h100)]
    roofs = roofs_used(points, h100, allow_tf32=False)
    assert [(r.label, r.judged_us) for r in roofs.compute] == [("FP16 tensor", 500.0), ("FP32 CUDA cores", 250.0)]
    assert roofs.compute[0].ridge_flops_per_byte == pytest.approx(989.4e12 / 3350e9)
    assert roofs.memory_bandwidth_bytes_per_s == 3350e9 and roofs.allow_tf32 is False


def test_a_roof_met_at_another_dtypes_rate_says_whose_rate_it_is(h100):
    """Integers and bool have no peak of their own: they meet the FP32 CUDA-core figure
    (specs.peak_field), and the roof's name says so rather than printing an "INT64 66.9 TFLOP/s"
    no datasheet gives; bf16 on a card without BF16 tensor cores likewise."""
    assert roof_label(h100, "tensor", "fp16") == "FP16 tensor"
    assert roof_label(h100, "cuda", "fp32") == "FP32 CUDA cores"
    assert roof_label(h100, "cuda", "int64") == "INT64 CUDA cores (at the FP32 CUDA cores rate)"
    assert roof_label(load_spec("v100"), "tensor", "bf16") == "BF16 tensor (at the FP32 CUDA cores rate)"
    index = estimate_op("aten::add", [[2**20], [2**20], []], ["long int", "long int", "Scalar"], ["", "", "1"])
    roofs = roofs_used([roofline(index, 50.0, h100)], h100, allow_tf32=False)
    assert [(r.label, r.dtype) for r in roofs.compute] == [("INT64 CUDA cores (at the FP32 CUDA cores rate)", "int64")]

"""Roofline judgement of one op (Williams, Waterman & Patterson 2009): pure, no torch.

An op doing F FLOPs and moving B bytes cannot finish faster than
``roofline_us = max(F / peak, B / bandwidth)``, with ``peak`` the rate of the engine and dtype it
runs on (tensor cores for fp16/bf16/tf32 matmul, conv and attention; CUDA cores otherwise).
Whichever term is larger names the bound. Kernels that are very short, or that reach only a small
fraction of either roof while having little work to do, are limited by something the model does
not contain (launch latency, tail effects, too few blocks to fill the SMs) and are called
``latency``-bound instead.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import msgspec
import numpy as np

from profiler_kit.records import ROOF_BASES, Roof, RoofCalibration, Roofs
from profiler_kit.hardware.specs import GpuSpec, memory_bandwidth_bytes_per_s, peak_field, peak_flops

from .cost_model.op_cost import OpCost

# A kernel shorter than this is dominated by fixed costs, not by its FLOPs or bytes: launching
# it and ramping all SMs up and down (the "tail" of its last wave) takes a few µs on current
# NVIDIA GPUs, and a DRAM round trip alone is ~0.5-1 µs. Below 5 µs the roofline's answer says
# little about what would make the kernel faster.
LATENCY_THRESHOLD_US = 5.0

# A kernel reaching less than 10% of both its compute roof and its memory roof is not limited
# by either: it is starved (too few blocks to fill the SMs, serial dependencies, waiting on
# synchronization). Well-tuned GEMMs reach 60-90% of the compute roof and streaming kernels
# 70-90% of bandwidth; 10% leaves a wide margin for estimate error before we call it latency.
LOW_ATTAINMENT = 0.10

# ...but only when the op's ideal work is small. A kernel whose roofline time is at least this
# long has work enough to fill every SM for many waves, and its fixed costs (launch, ramp-up,
# the last wave's tail: a few µs) cannot explain a 10x shortfall. It is inefficient inside
# (tile padding such as head_dim 40 padded to 64, an sm80 kernel on an sm90 card, register
# spills), so it is judged against its nearer roof and flagged ``far_below_roof``. Seen on an
# H200: PyTorch's CUTLASS attention kernel for SD 1.5 (head_dim 40) runs ~580 µs per call
# against a 43 µs compute roof, 7.5% attainment, and is no more latency-bound than a GEMM.
SUBSTANTIAL_WORK_US = 10.0

# interconnect: collectives (NCCL/RCCL), limited by NVLink/network, not HBM; host_link:
# host<->device copies (Memcpy HtoD/DtoH), limited by PCIe / NVLink-C2C (GpuSpec.host_link_gbps).
BOUNDS = ("compute", "memory", "latency", "unknown", "interconnect", "host_link")


class RooflinePoint(msgspec.Struct, frozen=True, gc=False):
    """Where one op call sits against the roofline of a GPU. Built from estimates.

    A msgspec Struct, not a dataclass: a 1 GB trace judges 220k op calls, and a frozen
    dataclass's __init__ (a Python call setting each field through object.__setattr__) took
    0.45 s to build them, a Struct's (C) 0.03 s. gc=False: points only refer to numbers and
    strings, never back to a container, so the cycle collector need not track them."""

    intensity_flops_per_byte: float
    roofline_us: float            # max(compute_us, memory_us): the fastest this op could run
    compute_us: float | None      # F / peak; None where the card has no such math (fp8 on A100)
    memory_us: float              # B / bandwidth
    bound: str                    # "compute" | "memory" | "latency" | "unknown"
    attainment: float             # roofline_us / duration_us (1.0 = at the roof)
    duration_us: float
    achieved_tflops: float        # F / duration, TFLOP/s
    achieved_gbps: float          # B / duration, GB/s
    peak_tflops: float | None     # the compute roof used
    engine: str                   # engine of the roof used ("tensor" / "cuda")
    dtype: str                    # dtype of the roof used ("tf32" when fp32 ran as TF32)
    far_below_roof: bool = False  # attainment < LOW_ATTAINMENT: worth a look whatever the bound


def roofline(cost: OpCost, duration_us: float, spec: GpuSpec) -> RooflinePoint:
    """Judge one op call (its estimated cost, its measured kernel time) against ``spec``.

    The roof is the cost's own engine and dtype: whether fp32 matmuls and convs ran as TF32 is
    decided once, by the cost model (``estimate_op(allow_tf32=...)`` labels them "tf32" on the
    tensor engine), so the verdict and the chart can never use different roofs.
    """
    return roofline_at(roof_terms(cost, spec), cost, duration_us)


def roof_terms(cost: OpCost, spec: GpuSpec) -> tuple:
    """The part of :func:`roofline` that depends on the cost and the card only, not on the
    duration: (peak FLOP/s, memory_us, compute_us, roofline_us). Many calls of one op share
    a cost, so a caller judging each call reuses these (kernel_costs does, per cost)."""
    peak = peak_flops(spec, cost.dtype, cost.engine)
    memory_us = cost.bytes / memory_bandwidth_bytes_per_s(spec) * 1e6
    compute_us = cost.flops / peak * 1e6 if peak else None
    return peak, memory_us, compute_us, max(compute_us or 0.0, memory_us)


def roofline_at(terms: tuple, cost: OpCost, duration_us: float) -> RooflinePoint:
    """:func:`roofline` from ``roof_terms(cost, spec)``: the same point, the same arithmetic."""
    engine, dtype = cost.engine, cost.dtype
    peak, memory_us, compute_us, roofline_us = terms
    duration_s = duration_us * 1e-6

    if duration_us > 0:
        attainment = roofline_us / duration_us
        achieved_tflops = cost.flops / duration_s / 1e12
        achieved_gbps = cost.bytes / duration_s / 1e9
    else:
        attainment = achieved_tflops = achieved_gbps = 0.0

    if compute_us is None:
        # No compute roof for this math on this card: neither bound nor attainment can be judged.
        bound = "unknown"
    elif duration_us < LATENCY_THRESHOLD_US or (
            attainment < LOW_ATTAINMENT and roofline_us < SUBSTANTIAL_WORK_US):
        # roofline_us is the larger of the two roofs, so attainment < 10% means below 10% of both.
        bound = "latency"
    else:
        bound = "compute" if compute_us >= memory_us else "memory"

    return RooflinePoint(
        intensity_flops_per_byte=cost.intensity_flops_per_byte,
        roofline_us=roofline_us, compute_us=compute_us, memory_us=memory_us, bound=bound,
        attainment=attainment, duration_us=duration_us, achieved_tflops=achieved_tflops,
        achieved_gbps=achieved_gbps, peak_tflops=peak / 1e12 if peak else None,
        engine=engine, dtype=dtype, far_below_roof=attainment < LOW_ATTAINMENT,
    )


def roofline_many(costs: list[OpCost], durations_us: list[float], spec: GpuSpec) -> list[RooflinePoint]:
    """``[roofline(c, d, spec) for c, d in zip(costs, durations_us)]``, the same points.

    Why: a trace of 300k kernels has 200k op calls to judge, and one call at a time was a
    second of Python. The terms that depend on the cost only are made once per distinct cost
    (calls of one op share their OpCost object); the per-call arithmetic runs column-wise in
    float64, the same operations in the same order as :func:`roofline`, so every figure is the
    same double."""
    row_of: dict[int, int] = {}
    distinct: list[OpCost] = []
    rows = []
    for cost in costs:
        row = row_of.get(id(cost))
        if row is None:
            row = row_of[id(cost)] = len(distinct)
            distinct.append(cost)
        rows.append(row)
    if not rows:
        return []
    terms = [roof_terms(c, spec) for c in distinct]
    at = np.asarray(rows, dtype=np.int64)
    duration = np.asarray(durations_us, dtype=np.float64)
    roof_us = np.asarray([t[3] for t in terms], dtype=np.float64)[at]
    compute = np.asarray([t[2] if t[2] is not None else np.nan for t in terms], dtype=np.float64)[at]
    memory = np.asarray([t[1] for t in terms], dtype=np.float64)[at]
    has_roof = np.asarray([t[2] is not None for t in terms])[at]
    flops = np.asarray([float(c.flops) for c in distinct], dtype=np.float64)[at]
    nbytes = np.asarray([float(c.bytes) for c in distinct], dtype=np.float64)[at]
    ran = duration > 0
    safe = np.where(ran, duration, 1.0)
    duration_s = safe * 1e-6
    attainment = np.where(ran, roof_us / safe, 0.0)
    achieved_tflops = np.where(ran, flops / duration_s / 1e12, 0.0)
    achieved_gbps = np.where(ran, nbytes / duration_s / 1e9, 0.0)
    latency = (duration < LATENCY_THRESHOLD_US) | ((attainment < LOW_ATTAINMENT)
                                                   & (roof_us < SUBSTANTIAL_WORK_US))
    bound = np.where(~has_roof, 0, np.where(latency, 1, np.where(compute >= memory, 2, 3)))
    bound_names = ("unknown", "latency", "compute", "memory")
    per_row = [(c.intensity_flops_per_byte, t[3], t[2], t[1], t[0] / 1e12 if t[0] else None,
                c.engine, c.dtype) for c, t in zip(distinct, terms)]
    fixed = [per_row[r] for r in rows]
    return list(map(RooflinePoint,
                    [f[0] for f in fixed], [f[1] for f in fixed], [f[2] for f in fixed],
                    [f[3] for f in fixed], [bound_names[b] for b in bound.tolist()],
                    attainment.tolist(), list(durations_us), achieved_tflops.tolist(),
                    achieved_gbps.tolist(), [f[4] for f in fixed], [f[5] for f in fixed],
                    [f[6] for f in fixed], (attainment < LOW_ATTAINMENT).tolist()))


def ridge_point(spec: GpuSpec, dtype: str, engine: str) -> float | None:
    """Arithmetic intensity (FLOP/byte) where the compute roof meets the memory roof.

    Ops below it are memory-bound at best; above it, compute-bound at best.
    """
    peak = peak_flops(spec, dtype, engine)
    return peak / memory_bandwidth_bytes_per_s(spec) if peak else None


# Label of each compute roof a kernel can be judged against, highest-rate engines first.
ROOF_LABELS = {
    ("tensor", "fp8_e4m3"): "FP8 tensor", ("tensor", "fp8_e5m2"): "FP8 tensor",
    ("tensor", "fp6"): "FP6 tensor", ("tensor", "fp4"): "FP4 tensor",
    ("tensor", "fp16"): "FP16 tensor", ("tensor", "bf16"): "BF16 tensor",
    ("tensor", "tf32"): "TF32 tensor", ("cuda", "fp16"): "FP16 CUDA cores",
    ("cuda", "bf16"): "BF16 CUDA cores", ("cuda", "fp32"): "FP32 CUDA cores",
    ("cuda", "fp64"): "FP64 CUDA cores",
}


_ENGINE_NAMES = {"tensor": "tensor", "cuda": "CUDA cores"}
# The roof each spec field is (its label names the field's own math).
_FIELD_LABELS = {"fp16_tensor_tflops": "FP16 tensor", "bf16_tensor_tflops": "BF16 tensor",
                 "tf32_tensor_tflops": "TF32 tensor", "fp8_tensor_tflops": "FP8 tensor",
                 "fp6_tensor_tflops": "FP6 tensor", "fp4_tensor_tflops": "FP4 tensor",
                 "fp16_tflops": "FP16 CUDA cores", "bf16_tflops": "BF16 CUDA cores",
                 "fp32_tflops": "FP32 CUDA cores", "fp64_tflops": "FP64 CUDA cores"}


def roof_label(spec: GpuSpec, engine: str, dtype: str) -> str:
    """The roof's name, saying whose rate it is when the math meets another dtype's peak: an
    int64 element-wise kernel is judged at the FP32 CUDA-core rate (specs.peak_field), and a
    roof called "INT64 CUDA cores 66.9 TFLOP/s" would claim a peak no datasheet prints."""
    own = ROOF_LABELS.get((engine, dtype), f"{dtype.upper()} {_ENGINE_NAMES[engine]}")
    rate = _FIELD_LABELS.get(peak_field(spec, dtype, engine))
    return own if rate in (None, own) else f"{own} (at the {rate} rate)"


# The GpuSpec field each measured roof replaces (calibrate.py measures exactly these keys).
MEASURED_FIELDS = {("tensor", "fp16"): "fp16_tensor_tflops", ("tensor", "bf16"): "bf16_tensor_tflops",
                   ("tensor", "tf32"): "tf32_tensor_tflops", ("cuda", "fp32"): "fp32_tflops"}


def judging_spec(spec: GpuSpec, calibration: RoofCalibration | None, basis: str) -> GpuSpec:
    """The spec every kernel is judged against: ``spec`` itself (basis "datasheet"), or a copy
    whose peaks are the calibration's measured ones (basis "measured"). The one place that
    decides; a roof the calibration lacks (fp16 CUDA cores, fp8, a skipped dtype) keeps its
    datasheet figure, so the fallbacks of specs.peak_field stay those of the datasheet."""
    if basis not in ROOF_BASES:
        raise ValueError(f"unknown roof basis {basis!r}; use one of {', '.join(ROOF_BASES)}")
    if basis == "datasheet" or calibration is None:
        return spec
    changes = {field: calibration.roof(*key).measured_per_s / 1e12
               for key, field in MEASURED_FIELDS.items() if calibration.roof(*key) is not None}
    if calibration.memory_roof is not None:
        changes["memory_bandwidth_gbps"] = calibration.memory_roof.measured_per_s / 1e9
    return dataclasses.replace(spec, **changes)


def _measured_flops(judge: GpuSpec, calibration: RoofCalibration | None, engine: str,
                    dtype: str) -> float | None:
    """The measured figure of the roof (engine, dtype) meets: the measurement behind the spec
    field it reads (specs.peak_field), None where no measurement feeds that field."""
    if calibration is None:
        return None
    field = peak_field(judge, dtype, engine)
    key = next((k for k, f in MEASURED_FIELDS.items() if f == field), None)
    measured = calibration.roof(*key) if key else None
    return measured.measured_per_s if measured else None


def roofs_used(points: Iterable[RooflinePoint], spec: GpuSpec, allow_tf32: bool | None,
               calibration: RoofCalibration | None = None, basis: str = "datasheet") -> Roofs:
    """The memory roof and every compute roof that judged at least one op, with the kernel time
    judged against each (highest roof first): what the analysis records and the chart draws.

    ``spec`` is the datasheet spec; the points were judged against
    ``judging_spec(spec, calibration, basis)``. Each roof carries both figures and the record
    says which basis judged."""
    judge = judging_spec(spec, calibration, basis)
    bandwidth = memory_bandwidth_bytes_per_s(judge)
    judged: dict[tuple[str, str], list] = {}
    for p in points:
        if p.peak_tflops:
            entry = judged.setdefault((p.engine, p.dtype), [p.peak_tflops * 1e12, 0.0])
            entry[1] += p.duration_us
    compute = [Roof(label=roof_label(judge, *key), engine=key[0],
                    dtype=key[1], peak_flops_per_s=peak, ridge_flops_per_byte=peak / bandwidth,
                    judged_us=us, datasheet_flops_per_s=peak_flops(spec, key[1], key[0]),
                    measured_flops_per_s=_measured_flops(judge, calibration, *key))
               for key, (peak, us) in judged.items()]
    compute.sort(key=lambda r: -r.peak_flops_per_s)
    memory = calibration.memory_roof if calibration is not None else None
    return Roofs(gpu_key=spec.key, memory_bandwidth_bytes_per_s=bandwidth, allow_tf32=allow_tf32,
                 compute=compute, basis="measured" if judge is not spec else "datasheet",
                 memory_bandwidth_datasheet_bytes_per_s=memory_bandwidth_bytes_per_s(spec),
                 memory_bandwidth_measured_bytes_per_s=memory.measured_per_s if memory else None,
                 calibration=calibration)

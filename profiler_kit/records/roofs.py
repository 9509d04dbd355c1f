"""What kernels are judged against: the GPU spec a run used (``GpuSpecRecord``), the roofs an
analysis used (``Roofs``), and roofs_measured.json, the practical ceilings measured on one card
(``RoofCalibration``, written by profiler_kit/capture/calibrate.py)."""

from __future__ import annotations

import math
import os
from typing import Literal, get_args

from profiler_kit.records.base import SCHEMA_VERSION, Record, _convert, _load
from profiler_kit.records.stats import StepStats

# What bounds and every "% of roof" are judged against: the datasheet's peaks or the card's
# measured ones (roofline.judging_spec decides with it; config validates roofs= against it).
RoofBasis = Literal["datasheet", "measured"]
ROOF_BASES: tuple[str, ...] = get_args(RoofBasis)

class GpuSpecRecord(Record, kw_only=True):
    """The GPU spec a run or an analysis was judged against (conf/gpu/*.yaml, datasheet peaks),
    resolved once, with where it came from and any mismatch with the device."""

    key: str
    name: str
    fp16_tensor_tflops: float
    fp32_tflops: float
    memory_bandwidth_gbps: float
    memory_bytes: int
    l2_bytes: int
    sm_count: int
    source: str
    match: list[str] = []
    bf16_tensor_tflops: float | None = None
    tf32_tensor_tflops: float | None = None
    fp16_tflops: float | None = None
    bf16_tflops: float | None = None
    fp8_tensor_tflops: float | None = None
    fp6_tensor_tflops: float | None = None
    fp4_tensor_tflops: float | None = None
    fp64_tflops: float | None = None
    architecture: str = ""
    compute_capability: str = ""
    exclude: list[str] = []
    notes: str = ""
    host_link: str = ""                      # "PCIe Gen5 x16", "NVLink-C2C"
    host_link_gbps: float | None = None      # GB/s per direction, datasheet peak
    host_link_source: str = ""
    matched_from: str | None = None      # "config" (+gpu=), "device_name", "--gpu", "deviceProperties"
    mismatch: str | None = None          # +gpu=NAME names another card than the device

def _same_figure(a: float | None, b: float | None) -> bool:
    """The same rate, up to the rounding of a trip through TFLOP/s or GB/s (GpuSpec's units)."""
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9)


class Roof(Record, kw_only=True):
    """A compute roof the analysis judged kernels against."""

    label: str                           # "FP16 tensor", "FP32 CUDA cores", ...
    engine: str                          # "tensor" | "cuda"
    dtype: str                           # "fp16", "bf16", "tf32", "fp32", ...
    peak_flops_per_s: float
    ridge_flops_per_byte: float          # where this roof meets the memory roof
    judged_us: float                     # kernel time judged against this roof
    # Both figures of this roof, whichever judged (Roofs.basis): the spec's datasheet peak and
    # the calibration's measured one (None: not measured, or an analysis from before 2026-12).
    datasheet_flops_per_s: float | None = None
    measured_flops_per_s: float | None = None

    @property
    def basis(self) -> RoofBasis:
        """Which figure ``peak_flops_per_s`` is: measured only where a measurement fed it."""
        return "measured" if _same_figure(self.measured_flops_per_s, self.peak_flops_per_s) else "datasheet"


class Roofs(Record, kw_only=True):
    """Exactly the roofs the analysis used: the memory roof and each compute roof that judged
    at least one op. The roofline chart draws these and no others."""

    gpu_key: str
    memory_bandwidth_bytes_per_s: float
    allow_tf32: bool | None              # None: PyTorch's defaults (matmul off, cuDNN conv on)
    compute: list[Roof] = []
    # What every bound and "% of roof" was judged against: the datasheet peaks, or the ones
    # measured on the card (RoofCalibration). A roof the calibration lacks keeps its datasheet
    # figure either way (Roof.basis says which each one is).
    basis: RoofBasis = "datasheet"
    memory_bandwidth_datasheet_bytes_per_s: float | None = None
    memory_bandwidth_measured_bytes_per_s: float | None = None   # the device-to-device copy's
    calibration: RoofCalibration | None = None     # the measurements, shown beside the datasheet

    def roof(self, engine: str, dtype: str) -> Roof | None:
        return next((r for r in self.compute if r.engine == engine and r.dtype == dtype), None)

    @property
    def memory_basis(self) -> RoofBasis:
        """Which figure ``memory_bandwidth_bytes_per_s`` is (as Roof.basis for a compute roof)."""
        return ("measured" if _same_figure(self.memory_bandwidth_measured_bytes_per_s,
                                           self.memory_bandwidth_bytes_per_s) else "datasheet")

RoofEngine = Literal["tensor", "cuda", "memory"]


class MeasuredRoof(Record, kw_only=True):
    """One ceiling measured on the card by a kernel that should reach it, next to its datasheet
    figure. Compute roofs carry the engine and dtype keys of the roofline (``("tensor", "fp16")``,
    ``("tensor", "bf16")``, ``("tensor", "tf32")``, ``("cuda", "fp32")``); memory ones have
    engine "memory" and dtype "copy" (the memory roof) or "elementwise" (shown beside it)."""

    engine: RoofEngine
    dtype: str
    measured_per_s: float                    # FLOP/s (compute) or B/s (memory), from the median time
    datasheet_per_s: float | None = None     # the matched conf/gpu spec's figure; None: no spec
    work_per_call: float                     # FLOPs or bytes moved by one timed call
    time_ms: StepStats                       # per call, CUDA events: median, IQR, min, n
    method: str                              # the kernel and its size, e.g. "dst.copy_(src), 1 GiB fp16"

    @property
    def unit(self) -> str:
        return "B" if self.engine == "memory" else "FLOP"

    @property
    def measured_fraction(self) -> float | None:
        """measured / datasheet (typically 0.7-0.95: datasheets print boost-clock peaks)."""
        return self.measured_per_s / self.datasheet_per_s if self.datasheet_per_s else None


class SkippedRoof(Record, kw_only=True):
    """A roof not measured on this card, and why (no BF16 tensor cores, out of memory, ...)."""

    engine: RoofEngine
    dtype: str
    reason: str


class RoofCalibration(Record, kw_only=True):
    """roofs_measured.json: the card's measured ceilings, cached per card in the user's cache
    and copied into each run folder that used them. Valid for the exact software it was
    measured with (device name, driver, torch and CUDA versions): anything else re-measures."""

    schema_version: int = SCHEMA_VERSION
    device_name: str
    driver: str | None = None
    torch: str
    cuda: str | None = None
    measured_at: str                         # ISO 8601, local time with its offset
    gpu_key: str | None = None               # the conf/gpu spec the datasheet figures come from
    roofs: list[MeasuredRoof] = []
    skipped: list[SkippedRoof] = []
    calibration_s: float = 0.0               # wall time of the whole measurement

    def roof(self, engine: str, dtype: str) -> MeasuredRoof | None:
        return next((r for r in self.roofs if r.engine == engine and r.dtype == dtype), None)

    @property
    def memory_roof(self) -> MeasuredRoof | None:
        """The device-to-device copy: the memory roof (the elementwise kernel is shown beside)."""
        return self.roof("memory", "copy")

    def identity(self) -> tuple[str, str | None, str, str | None]:
        """What a cached calibration must match to be reused."""
        return (self.device_name, self.driver, self.torch, self.cuda)


def read_roof_calibration(path: str | os.PathLike) -> RoofCalibration:
    """The one reader of roofs_measured.json (run folder or cache); RecordError on a bad file."""
    return _convert(_load(path), RoofCalibration, str(path))

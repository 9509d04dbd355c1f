"""Typed records of every artifact that crosses a stage: ``summary.json`` (capture, then the
run's analysis), ``analysis.json`` (one trace), ``comparison.json`` (two traces), ``sweep.json``
(a multirun) and the findings stored in each. No torch import: the analyzer, the report and other tools read these.

One writer and one reader per artifact (:func:`write_record`, :func:`read_summary`,
:func:`read_analysis`, :func:`read_comparison`). Values are in base units with the unit in the
field name (``median_ms``, ``peak_allocated_bytes``, ``window_us``); the report picks display
units. A record owns the judgements that belong to its own figures, in one place, as
``torch.utils.benchmark.Measurement`` does: :class:`StepStats` decides ``noisy`` and every layer
reads that flag. ``schema_version`` is checked on read; version-1 files (before 2026-11-29) are
migrated on read, see :func:`_migrate_v1_summary`.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import statistics
import tempfile
import zlib
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar, get_args

import msgspec

SCHEMA_VERSION = 2

# The step-time IQR above this fraction of the median marks a timing as noisy: a speed-up smaller
# than that spread is not resolved by the measurement. 10 % is torch.utils.benchmark's own
# threshold for its "may be noisy" warning (Measurement._IQR_WARN_THRESHOLD = 0.1).
NOISE_IQR_FRACTION = 0.10

Status = Literal["ok", "oom", "unavailable", "error"]
# A run: "running" while capture writes it, "complete" once every mode has its record,
# "failed" when the job could not run at all (no such device, the model did not build): the
# summary then says why, so a sweep goes on and its aggregate lists the failure.
RunStatus = Literal["running", "complete", "failed", "interrupted"]
Level = Literal["key", "warn", "info"]
# What bounds and every "% of roof" are judged against: the datasheet's peaks or the card's
# measured ones (roofline.judging_spec decides with it; config validates roofs= against it).
RoofBasis = Literal["datasheet", "measured"]
ROOF_BASES: tuple[str, ...] = get_args(RoofBasis)


class RecordError(ValueError):
    """An artifact that cannot be read; the message is one line saying what to do."""


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every artifact record: immutable, keyword-only, JSON via msgspec."""

    def to_builtins(self) -> dict:
        return msgspec.to_builtins(self)


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------

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


class Finding(Record, kw_only=True):
    """One verdict at the top of a report, decided by the analysis from its own figures.

    ``figures`` holds the numbers the verdict rests on, in base units, so other tools (the sweep
    aggregator) can use them without parsing text."""

    rule: str                            # stable id, e.g. "memory_bound_attention"
    level: Level                         # "key": headline result; "warn": fix or distrust
    title: str
    detail: str
    remedy: str | None = None
    subject: str | None = None           # the mode / trace label it is about
    figures: dict[str, float] = {}


# --------------------------------------------------------------------------------------------
# analysis.json: one trace
# --------------------------------------------------------------------------------------------

class TraceSource(Record, kw_only=True):
    path: str
    size_bytes: int
    device_names: list[str] = []
    device_properties: list[dict[str, Any]] = []
    schema: str = "kineto"
    has_gpu: bool = False
    base_us: float = 0.0                 # origin of every *start_us / ts_us in the outputs
    scope_source: str = "none"


class HostLinkFigures(Record, kw_only=True):
    """Host<->device copies against the host link (PCIe / NVLink-C2C), per direction; GB/s."""

    host_link: str | None = None
    host_link_gbps: float | None = None
    htod_count: int = 0
    htod_bytes: float = 0.0
    htod_us: float = 0.0
    htod_achieved_gbps: float | None = None
    htod_floor_us: float | None = None       # bytes / host_link_gbps: the fastest the copies could be
    dtoh_count: int = 0
    dtoh_bytes: float = 0.0
    dtoh_us: float = 0.0
    dtoh_achieved_gbps: float | None = None
    dtoh_floor_us: float | None = None


class KernelTotals(Record, kw_only=True):
    count: int = 0
    total_us: float = 0.0
    memcpy_count: int = 0
    memset_count: int = 0
    memcpy_us: float = 0.0
    memset_us: float = 0.0
    host_link: HostLinkFigures | None = None
    graph_replay_count: int = 0              # launched by cudaGraphLaunch: no op / module in the trace
    graph_replay_us: float = 0.0


class StepWindow(Record, kw_only=True):
    name: str
    start_us: float
    window_us: float
    busy_us: float
    idle_us: float
    idle_breakdown_us: dict[str, float] = {}


class Timeline(Record, kw_only=True):
    window_us: float = 0.0
    busy_us: float = 0.0                     # union of GPU activity intervals: never > window
    idle_us: float = 0.0
    idle_breakdown_us: dict[str, float] = {}
    start_us: float | None = None
    steps: list[StepWindow] = []
    unlaunched_count: int = 0                # GPU activity with no launch record in the trace
    unlaunched_us: float = 0.0               # (queued before the profiler started): kept apart


class AttentionCall(Record, kw_only=True):
    scope: str
    kind: str | None = None              # "self" | "cross"
    level: str | None = None             # UNet block
    q_tokens: int | None = None
    kv_tokens: int | None = None
    heads: int | None = None
    head_dim: int | None = None
    batch_x_heads: int | None = None
    backend: str | None = None
    kernels: list[str] = []
    time_us: float = 0.0
    flops_estimate: float = 0.0
    hbm_bytes_estimate: float = 0.0
    bound_us: dict[str, float] = {}      # the call's kernel time by roofline bound
    start_us: float = 0.0
    named_by: str = "module"             # "module": scope is its module path; "position": by place and shape


class AttentionSummary(Record, kw_only=True):
    total_us: float = 0.0
    backends: dict[str, float] = {}
    fallback: bool = False               # some calls ran SDPA's math (unfused) path
    mixed: bool = False                  # more than one backend ran
    flops_estimate: float = 0.0
    hbm_bytes_estimate: float = 0.0
    calls: list[AttentionCall] | None = None   # None: left out of a trimmed copy

    @property
    def calls_or_empty(self) -> list[AttentionCall]:
        return self.calls or []


class MemoryTimeline(Record, kw_only=True):
    ts_us: list[float] = []
    allocated_bytes: list[int] = []


class LiveAllocation(Record, kw_only=True):
    op: str
    scope: str
    bytes: int


class MemoryFigures(Record, kw_only=True):
    peak_allocated_bytes: int | None = None
    peak_reserved_bytes: int | None = None
    device_id: int | None = None
    events: int = 0
    timeline: MemoryTimeline | None = None
    live_at_peak: list[LiveAllocation] = []
    allocated_before_trace_bytes: int | None = None


class TopKernel(Record, kw_only=True):
    name: str
    category: str
    count: int
    total_us: float
    mean_us: float
    flops_estimate: float
    hbm_bytes_estimate: float
    bound: str
    achieved_tflops: float
    achieved_gbps: float


class RooflineOp(Record, kw_only=True):
    """One (op, shapes, category) of the roofline chart, summed over its calls; estimates."""

    op: str
    shapes: str
    category: str
    count: int
    time_us: float
    flops_estimate: float
    hbm_bytes_estimate: float
    intensity: float | None              # FLOP / byte, estimated
    bound: str
    attainment: float | None
    roofline_us: float | None
    engine: str
    dtype: str
    formula: str


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


# --------------------------------------------------------------------------------------------
# Nsight Compute: what the hardware counted (ncu_<mode>.json) and its join to a trace
# --------------------------------------------------------------------------------------------

# The cost model's byte estimate is judged against the measurement with these tolerances (issue
# 11's goal, argued in docs/cost-model.md "Measured against Nsight Compute"): whole totals (the
# UNet call, attention as a whole) within 10 %; a kernel class within 20 %, judged only where it
# holds at least 1 % of the joined GPU time (smaller classes move no total and no verdict).
TOTAL_BYTES_TOLERANCE = 0.10
CLASS_BYTES_TOLERANCE = 0.20
CLASS_MIN_TIME_SHARE = 0.01
# A join that pairs fewer of the trace's kernels than this with a measured kernel cannot speak
# for the trace: its totals are shown, its verdict is withheld.
MIN_JOIN_COVERAGE = 0.90
# A kernel counts as spilling from 1 MB of local stores: below that the stores are a stack frame
# or a few spilled registers (CUTLASS's attention kernel stores 0.5 MB at 4,096 tokens), noise in
# its traffic; above it they are a loop's worth (FlashAttention-2's sm80 kernel on an H200: 74 MB).
SPILL_MIN_BYTES = 1e6
L2_SECTOR_BYTES = 32        # lts__t_sectors_* count 32-byte sectors


class NcuKernel(Record, kw_only=True):
    """One kernel as Nsight Compute counted it. Counters come from ncu's own replay of the
    kernel (caches flushed before it, clocks locked: see NcuMeasurement), so ``duration_ns`` is
    ncu's, not the run's timing."""

    index: int                               # position in the measured range (ncu's ID order)
    name: str                                # demangled, as ncu prints it
    grid: list[int] = []
    block: list[int] = []
    duration_ns: float | None = None         # gpu__time_duration.sum, under ncu
    dram_read_bytes: float | None = None     # dram__bytes_read.sum
    dram_write_bytes: float | None = None    # dram__bytes_write.sum: writes that left L2 during the kernel
    l2_write_bytes: float | None = None      # lts__t_sectors_srcunit_tex_op_write.sum x 32 B: all the SMs wrote
    local_store_bytes: float | None = None   # l1tex__t_sectors_pipe_lsu_mem_local_op_st.sum x 32 B: spill stores
    dram_throughput_pct: float | None = None     # dram__throughput, % of peak sustained
    sm_throughput_pct: float | None = None       # sm__throughput (full metric set only)
    memory_throughput_pct: float | None = None   # gpu__compute_memory_throughput (full set only)
    tensor_pipe_pct: float | None = None         # sm__pipe_tensor_cycles_active, % of peak

    @property
    def written_bytes(self) -> float | None:
        """Bytes the kernel wrote to memory. L2 is write-back: a kernel's output that fits in L2
        is still there when the kernel ends and reaches DRAM after ncu's window, so
        ``dram__bytes_write`` misses it (0 for a 4 MiB add on an H200). What the SMs wrote into
        L2 is the whole output (exact for a GEMM and an add, checked on the H200), all of which
        HBM receives by write-back; without that counter, the DRAM writes seen in the window.

        Less the stores to local memory (a thread's private scratch: register spills): they go
        through L2 like any store but are re-read from there and die with the kernel, so they
        reach HBM only when evicted during it, which ``dram__bytes_write`` then sees (hence the
        max). Measured on the H200 (docs/cost-model.md): PyTorch's FlashAttention-2 kernel at 255
        registers per thread wrote 79.2 MB into L2 for a 5.2 MB output, and 73.7 MB of it were
        local stores; at 9,216 tokens 366.9 MB, 354.5 MB of them local."""
        if self.l2_write_bytes is not None:
            return max(self.stored_bytes, self.dram_write_bytes or 0.0)
        return self.dram_write_bytes

    @property
    def stored_bytes(self) -> float | None:
        """What the SMs wrote into L2 other than spills (local-memory stores; 0 where the
        measurement lacks that counter): what written_bytes and l2_rewritten_bytes_min judge."""
        if self.l2_write_bytes is None:
            return None
        return self.l2_write_bytes - (self.local_store_bytes or 0.0)

    @property
    def hbm_bytes_measured(self) -> float | None:
        """HBM traffic the kernel caused: DRAM reads (cold caches: its own reads) + its writes."""
        if self.dram_read_bytes is None:
            return None
        return self.dram_read_bytes + (self.written_bytes or 0.0)


class NcuMeasurement(Record, kw_only=True):
    """ncu_<mode>.json: one UNet call measured by Nsight Compute, kernel by kernel."""

    schema_version: int = SCHEMA_VERSION
    mode: str | None = None
    device_name: str | None = None
    tool_version: str = ""                   # "Nsight Compute 2025.3.1.0 (build ...)"
    command: str = ""                        # the ncu command line
    range: str = ""                          # what was measured (cudaProfilerStart/Stop around one call)
    metric_set: str = ""                     # "lean" | "full" | "custom"
    metrics: list[str] = []
    cache_control: str = "all"               # "all": caches flushed before every kernel (ncu's default)
    clock_control: str = "base"              # "base": clocks locked to base (ncu's default)
    measured_at: str | None = None
    wall_s: float | None = None              # how long ncu took
    kernels: list[NcuKernel] = []


class BytesCheck(Record, kw_only=True):
    """Estimated against measured HBM bytes over one group of joined kernels (a category, an
    attention layer, the attention, the whole call). The group decides its own verdict."""

    label: str
    kernels: int
    gpu_us: float                            # the trace's time of those kernels
    time_share: float                        # of the joined kernels' time
    hbm_bytes_estimate: float
    hbm_bytes_measured: float
    dram_read_bytes: float
    written_bytes: float
    tolerance: float | None = None           # None: not judged (class under CLASS_MIN_TIME_SHARE)
    rewriting_kernels: int = 0               # kernels that rewrote lines in L2 (MeasuredKernel.rewrote_l2)
    rewriting_written_bytes: float = 0.0     # what those kernels wrote into L2
    spilling_kernels: int = 0                # kernels that spilled (MeasuredKernel.spilled: >= SPILL_MIN_BYTES)
    local_store_bytes: float = 0.0           # all the group's local-memory stores: L2 traffic, left out of the measured bytes

    @property
    def error(self) -> float | None:
        """(estimate - measured) / measured: +0.10 = the estimate is 10 % high."""
        if self.hbm_bytes_measured <= 0:
            return None
        return self.hbm_bytes_estimate / self.hbm_bytes_measured - 1.0

    @property
    def within(self) -> bool | None:
        """Within tolerance; None when not judged or not measurable."""
        if self.tolerance is None or self.error is None:
            return None
        return abs(self.error) <= self.tolerance


class MeasuredKernel(Record, kw_only=True):
    """One trace kernel joined to its measured twin."""

    trace_index: int                         # position among the window's kernels (start order)
    ncu_index: int
    name: str                                # the trace's name
    category: str
    dur_us: float                            # the trace's duration
    ncu_duration_us: float | None
    flops_estimate: float
    hbm_bytes_estimate: float
    hbm_bytes_measured: float | None
    dram_read_bytes: float | None
    written_bytes: float | None
    bound_estimate: str                      # from estimated bytes (the analysis' bound)
    bound_measured: str                      # from measured bytes (same FLOPs, same time, same roofs)
    attention_call: str | None = None        # scope of the attention layer it belongs to
    # It wrote more into L2 than the L2 holds, yet less of it reached DRAM than the excess: a
    # write-back L2 must evict unique data beyond its capacity, so it wrote the same lines again
    # (register spills to local memory, accumulation in place). Its written_bytes then overstate
    # its HBM writes by at least l2_rewritten_bytes_min.
    l2_rewritten_bytes_min: float = 0.0
    # stores to local memory (register spills): L2 traffic left out of written_bytes; None where
    # the measurement lacks the counter (measurements from before it was collected)
    local_store_bytes: float | None = None
    dram_throughput_pct: float | None = None
    sm_throughput_pct: float | None = None
    tensor_pipe_pct: float | None = None

    @property
    def spilled(self) -> bool:
        """It stored a loop's worth to local memory (SPILL_MIN_BYTES or more), not a stack frame."""
        return (self.local_store_bytes or 0.0) >= SPILL_MIN_BYTES


def l2_rewritten_bytes_min(kernel: NcuKernel, l2_bytes: int | None) -> float:
    """Bytes a kernel certainly wrote more than once into L2 (MeasuredKernel.l2_rewritten_bytes_min):
    L2 writes beyond the L2's capacity plus what reached DRAM. 0 without the counters or the size."""
    if not l2_bytes or kernel.l2_write_bytes is None or kernel.dram_write_bytes is None:
        return 0.0
    return max(0.0, kernel.stored_bytes - l2_bytes - kernel.dram_write_bytes)


class MeasuredTraffic(Record, kw_only=True):
    """A trace joined to an Nsight Compute measurement of the same call: coverage, and estimated
    against measured bytes per kernel, category, attention layer, attention and in total."""

    measurement: str                         # file it came from
    tool_version: str = ""
    device_name: str | None = None
    cache_control: str = "all"
    clock_control: str = "base"
    window: str = ""                         # the trace's kernels joined: "ProfilerStep#1", "whole trace"
    trace_kernels: int = 0
    measured_kernels: int = 0
    joined_kernels: int = 0
    shape_mismatches: int = 0                # joined by name, but grid or block differ
    joined_time_fraction: float = 0.0        # of the window's kernel time
    # of the joined kernels' time, under an op the cost model costed: without it (kernels replayed
    # from a CUDA graph, no record_shapes) a kernel's estimate is not zero bytes but unknown
    costed_time_fraction: float = 1.0
    total: BytesCheck | None = None
    attention: BytesCheck | None = None
    by_category: list[BytesCheck] = []
    by_attention_call: list[BytesCheck] = []
    bound_us_estimate: dict[str, float] = {}     # joined kernel time by bound from estimated bytes
    bound_us_measured: dict[str, float] = {}     # ... from measured bytes
    kernels: list[MeasuredKernel] = []

    @property
    def coverage(self) -> float:
        return self.joined_kernels / self.trace_kernels if self.trace_kernels else 0.0

    @property
    def conclusive(self) -> bool:
        """Enough of the trace joined for its totals to speak for the call, the pairs are the same
        launches (names alone also pair the kernels of another batch size or resolution, whose
        grids differ: the 768 px measurement against the 512 px trace, 627 of 765 pairs), and the
        joined kernels have estimates to judge (not replayed from a CUDA graph)."""
        joined_alike = self.joined_kernels - self.shape_mismatches
        return (self.coverage >= MIN_JOIN_COVERAGE
                and joined_alike >= MIN_JOIN_COVERAGE * self.joined_kernels
                and self.costed_time_fraction >= MIN_JOIN_COVERAGE)

    @property
    def groups(self) -> list[BytesCheck]:
        """The totals, then every class but attention, which is already a total (the same kernels,
        judged by the tighter total tolerance): what is listed and judged, each group once."""
        totals = [g for g in (self.total, self.attention) if g is not None]
        return totals + [c for c in self.by_category if not (self.attention and c.label == "attention")]

    @property
    def misses(self) -> list[BytesCheck]:
        """Every judged group outside its tolerance (totals, then classes)."""
        return [g for g in self.groups if g.within is False]


class MeasureStatus(Record, kw_only=True):
    """How a mode's Nsight Compute measurement went (ModeRecord.measure)."""

    status: Literal["measured", "unavailable", "failed"]
    reason: str | None = None
    file: str | None = None                  # ncu_<mode>.json in the run folder
    report_file: str | None = None           # the raw .ncu-rep (opens in Nsight Compute)
    kernels: int = 0
    wall_s: float | None = None


class Analysis(Record, kw_only=True):
    """analysis.json: the figures of one Kineto trace (docs/data-contracts.md)."""

    schema_version: int = SCHEMA_VERSION
    label: str | None = None
    source: TraceSource
    gpu_spec: GpuSpecRecord | None = None
    kernels: KernelTotals = KernelTotals()
    timeline: Timeline = Timeline()
    bound_us: dict[str, float] = {}
    bound_by_category_us: dict[str, dict[str, float]] = {}
    categories_us: dict[str, float] = {}
    blocks_us: dict[str, dict[str, float]] = {}
    attention: AttentionSummary = AttentionSummary()
    flops_estimate: float = 0.0
    hbm_bytes_estimate: float = 0.0
    roofline_floor_us: float | None = None
    roofs: Roofs | None = None
    memory: MemoryFigures = MemoryFigures()
    top_kernels: list[TopKernel] | None = None
    roofline_points: list[RooflineOp] | None = None
    measured: MeasuredTraffic | None = None  # joined Nsight Compute measurement (analyze --ncu, measure=ncu)
    findings: list[Finding] = []
    warnings: list[str] = []

    @property
    def steps(self) -> int:
        """Profiled steps in the trace window (ProfilerStep annotations); 1 when it has none."""
        return max(1, len(self.timeline.steps))

    @property
    def kernel_us_per_step(self) -> float:
        return self.kernels.total_us / self.steps

    @property
    def ops_attributed(self) -> bool:
        """False when most GPU activity was replayed from CUDA graphs: the trace then holds no
        aten op or module for it, so unfused attention (found by its op pattern) cannot be seen."""
        k = self.kernels
        return k.graph_replay_count * 2 < k.count + k.memcpy_count + k.memset_count

    @property
    def attention_share(self) -> float | None:
        """Attention's share of GPU kernel time; None without kernel time, and None where no
        attention was found in a graph replay (unknown there, not zero)."""
        if not self.kernels.total_us or (not self.attention.total_us and not self.ops_attributed):
            return None
        return self.attention.total_us / self.kernels.total_us


# --------------------------------------------------------------------------------------------
# comparison.json: two traces
# --------------------------------------------------------------------------------------------

class Pair(Record, kw_only=True):
    """One figure in a and in b; ``delta`` (b - a) is derived on construction and on read."""

    a: float
    b: float
    delta: float = 0.0

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "delta", self.b - self.a)

    @staticmethod
    def of(a: float | None, b: float | None) -> "Pair":
        return Pair(a=a or 0.0, b=b or 0.0)


class CallPair(Record, kw_only=True):
    """The n-th call of one attention layer in a and in b (None where absent)."""

    scope: str
    occurrence: int
    kind: str | None = None
    level: str | None = None
    a_us: float | None = None
    b_us: float | None = None
    a_bytes_estimate: float | None = None
    b_bytes_estimate: float | None = None
    a_flops_estimate: float | None = None
    b_flops_estimate: float | None = None
    a_backend: str | None = None
    b_backend: str | None = None


class Comparison(Record, kw_only=True):
    """comparison.json: b against a, aligned by name. Deltas are b - a (``Pair.delta``)."""

    schema_version: int = SCHEMA_VERSION
    a: str
    b: str
    total_us: Pair
    busy_us: Pair
    window_us: Pair
    categories_us: dict[str, Pair] = {}
    blocks_us: dict[str, Pair] = {}
    blocks_categories_us: dict[str, dict[str, Pair]] = {}
    bound_us: dict[str, Pair] = {}
    flops_estimate: Pair
    hbm_bytes_estimate: Pair
    attention_us: Pair
    attention_hbm_bytes_estimate: Pair
    peak_allocated_bytes: Pair
    attention_calls: list[CallPair] = []
    findings: list[Finding] = []


# --------------------------------------------------------------------------------------------
# summary.json: one experiment run
# --------------------------------------------------------------------------------------------

class StepStats(Record, kw_only=True):
    """UNet step times of one mode, ms: the measurement and its own noise verdict.

    ``noisy`` is decided here and only here (IQR > NOISE_IQR_FRACTION of the median), set on
    construction and on every read, so a stored flag can never disagree with the rule."""

    median_ms: float
    iqr_ms: float
    min_ms: float
    n: int
    noisy: bool = False

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(
            self, "noisy", bool(self.median_ms > 0 and self.iqr_ms > NOISE_IQR_FRACTION * self.median_ms))

    @property
    def iqr_fraction(self) -> float | None:
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else None

    @staticmethod
    def of(times_ms: list[float]) -> "StepStats":
        if not times_ms:
            raise ValueError("StepStats.of needs at least one step time")
        q = (statistics.quantiles(times_ms, n=4, method="inclusive") if len(times_ms) > 1
             else [times_ms[0]] * 3)
        return StepStats(median_ms=statistics.median(times_ms), iqr_ms=q[2] - q[0],
                         min_ms=min(times_ms), n=len(times_ms))


class ModeRecord(Record, kw_only=True):
    """One attention mode of a run: status, measurements, and (after analysis) its trace's."""

    status: Status
    reason: str | None = None
    description: str | None = None
    output_rel_error: float | None = None
    output_tolerance: float | None = None
    output_match: bool | None = None
    step_ms: StepStats | None = None         # UNet steps in the run's execution mode
    step_ms_samples: list[float] = []
    eager_step_ms: StepStats | None = None   # the same mode run eagerly, interleaved (execution != eager)
    setup_s: float | None = None             # CUDA-graph capture or torch.compile time, apart from steps
    loop_it_per_s: float | None = None
    peak_allocated_bytes: int | None = None
    peak_reserved_bytes: int | None = None
    weights_bytes: int | None = None
    oom_requested_bytes: int | None = None   # what the allocator was asked for when it ran out
    trace: str | None = None                 # file name in the run folder
    # how far an ok mode got: "prepared" (checked, warmed up, profiled; not timed yet: what an
    # interrupted run leaves) or "timed" (step times measured). Modes that did not run: "timed".
    phase: Literal["prepared", "timed"] = "timed"
    attention_kernels: list[str] = []        # longest first (set by the analysis)
    measure: MeasureStatus | None = None     # measure=ncu: how the Nsight Compute measurement went
    analysis: Analysis | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class ModeComparison(Record, kw_only=True):
    """One mode against the reference mode of its run."""

    speedup: float                           # reference median step / this mode's (the run's execution)
    min_speedup: float                       # from the fastest steps: least disturbed by noise
    loop_speedup: float                      # denoising-loop it/s ratio
    kernel_speedup: float | None = None      # GPU kernel time per step ratio (from the traces)
    eager_speedup: float | None = None       # from the eager steps, where the run also timed them
    memory_saved_bytes: int | None = None
    memory_saved_fraction: float | None = None


class RunInfo(Record, kw_only=True):
    """What the run's "auto" settings resolved to on the device."""

    device: str
    dtype: str
    batch: int
    latent_shape: list[int]
    warmup: int
    iterations: int
    execution: str = "eager"                 # eager | cuda_graphs | compile
    compile_mode: str | None = None
    timing: str = ""
    parameters: int | None = None
    weights: str | None = None
    started: str | None = None


class Summary(Record, kw_only=True):
    """summary.json of one run (docs/data-contracts.md)."""

    schema_version: int = SCHEMA_VERSION
    status: RunStatus = "complete"
    reason: str | None = None                # why the run failed or stopped
    command: str | None = None
    config: dict[str, Any] = {}
    environment: dict[str, Any] = {}
    run: RunInfo | None = None               # None when the run failed before the UNet was built
    gpu_spec: GpuSpecRecord | None = None
    reference_mode: str
    efficient_mode: str | None = None
    efficient_mode_reason: str | None = None
    comparison: dict[str, ModeComparison] = {}
    modes: dict[str, ModeRecord] = {}
    findings: list[Finding] = []
    analyzed: bool = False                   # the analysis step has run on this folder
    warnings: list[str] = []
    roof_calibration: str | None = None      # the run folder's measured roofs (roofs_measured.json)
    roof_basis: RoofBasis = "datasheet"   # what the analysis judges against

    @property
    def card(self) -> str | None:
        return self.environment.get("gpu_name")

    @property
    def allow_tf32(self) -> bool | None:
        """The run set torch's TF32 flags from config.tf32 (both matmul and cuDNN)."""
        value = self.config.get("tf32")
        return bool(value) if value is not None else None

    def ok_modes(self) -> dict[str, ModeRecord]:
        return {m: r for m, r in self.modes.items() if r.ok}

    def analyses(self) -> dict[str, Analysis]:
        return {m: r.analysis for m, r in self.modes.items() if r.ok and r.analysis is not None}


# --------------------------------------------------------------------------------------------
# sweep.json: a Hydra multirun (or any folder of run folders), aggregated
# --------------------------------------------------------------------------------------------

SweepJobStatus = Literal["complete", "failed", "running", "interrupted", "unreadable"]


class SweepJob(Record, kw_only=True):
    """One run folder of the sweep."""

    job: str                                 # folder, relative to the sweep folder
    status: SweepJobStatus
    reason: str | None = None
    overrides: list[str] = []                # .hydra/overrides.yaml, when Hydra wrote one
    model: str | None = None
    resolution: int | None = None
    card: str | None = None                  # the GPU's name, or "CPU"
    dtype: str | None = None
    batch: int | None = None
    execution: str = "eager"
    reference_mode: str | None = None
    efficient_mode: str | None = None
    report: str | None = None                # its report.html, relative to the sweep folder


class SweepRow(Record, kw_only=True):
    """One mode of one job (a row of sweep.csv). Per-step figures divide the trace's kernel
    time by its profiled steps; speed-ups are against the reference mode of the same run."""

    job: str
    model: str | None
    resolution: int | None
    card: str | None
    dtype: str | None
    batch: int | None
    execution: str = "eager"
    tokens: int | None                       # latent tokens at the UNet's top level: (resolution / 8)²
    mode: str
    status: str
    reason: str | None = None
    step_median_ms: float | None = None
    step_iqr_ms: float | None = None
    step_min_ms: float | None = None
    noisy: bool | None = None
    speedup: float | None = None
    min_speedup: float | None = None
    kernel_speedup: float | None = None
    eager_step_median_ms: float | None = None   # the same mode timed eagerly (execution != eager)
    eager_speedup: float | None = None
    setup_s: float | None = None             # CUDA-graph capture / torch.compile time
    kernel_ms_per_step: float | None = None
    attention_ms_per_step: float | None = None
    compute_bound_ms_per_step: float | None = None
    memory_bound_ms_per_step: float | None = None
    latency_bound_ms_per_step: float | None = None
    unknown_bound_ms_per_step: float | None = None
    host_ms_per_step: float | None = None    # measured median step - GPU kernel time (>= 0)
    hbm_bytes_estimate_per_step: float | None = None
    # measure=ncu: the profiled call as Nsight Compute counted it, and the estimate's error
    # (estimate / measured - 1) on the whole call and on attention; None without a conclusive join
    hbm_bytes_measured_per_call: float | None = None
    hbm_bytes_error: float | None = None
    attention_hbm_bytes_error: float | None = None
    peak_allocated_bytes: int | None = None
    oom_requested_bytes: int | None = None


class AttentionFit(Record, kw_only=True):
    """attention_ms_per_step = constant · tokens^exponent, least squares in log-log over the
    jobs of one (model, card, dtype, batch) group; where it meets the rest of the UNet's kernel
    time (fitted the same way)."""

    group: str                               # "sd15 · NVIDIA H200 · fp16 · batch 2"
    mode: str
    points: int
    exponent: float
    constant_ms: float                       # attention ms per step at 1 token (the fit's scale)
    r2: float
    crosses_rest_at_tokens: float | None = None
    crossing_in_range: bool = False          # inside the measured token range (else extrapolated)


class OomFrontier(Record, kw_only=True):
    """The first configuration (smallest resolution) of a group where a mode ran out of memory."""

    group: str
    mode: str
    job: str
    resolution: int | None
    requested_bytes: int | None
    last_ok_resolution: int | None = None


class Sweep(Record, kw_only=True):
    """sweep.json (docs/data-contracts.md): every job and mode of a sweep folder, fits,
    the OOM frontier and the sweep's findings. Written identically for identical inputs."""

    schema_version: int = SCHEMA_VERSION
    jobs: list[SweepJob] = []
    rows: list[SweepRow] = []
    attention_fits: list[AttentionFit] = []
    oom_frontier: list[OomFrontier] = []
    findings: list[Finding] = []
    warnings: list[str] = []


# --------------------------------------------------------------------------------------------
# roofs_measured.json: the practical ceilings measured on one card (profiler_kit/calibrate.py)
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Writing: one atomic writer for every file the toolkit produces
# --------------------------------------------------------------------------------------------

def write_atomic(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """``write(tmp)`` fills a temporary file beside ``path``, which is then renamed onto it:
    readers never see half a file, and an interrupted write leaves the old one in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)        # mkstemp makes it private; outputs are for sharing
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return write_atomic(path, write)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: a figure that is not finite is written as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def to_json(record: Record) -> str:
    return json.dumps(_finite(msgspec.to_builtins(record)), indent=1, allow_nan=False,
                      ensure_ascii=False) + "\n"


def write_record(path: str | os.PathLike, record: Record) -> Path:
    """The one JSON writer: summary.json, analysis.json, comparison.json."""
    return write_text_atomic(path, to_json(record))


# --------------------------------------------------------------------------------------------
# Reading, with the schema version checked
# --------------------------------------------------------------------------------------------

R = TypeVar("R", bound=Record)


def _load(path: str | os.PathLike) -> dict:
    try:
        raw = Path(path).read_bytes()
        data = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    except OSError as exc:
        raise RecordError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, EOFError, zlib.error) as exc:   # EOFError, zlib.error: a damaged gzip
        raise RecordError(f"{path} is not valid JSON ({exc}): was it written by profiler_kit?") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path} holds a JSON {type(data).__name__}, not a profiler_kit record")
    return data


def _convert(data: dict, kind: type[R], where: str) -> R:
    version = data.get("schema_version")
    if version is not None and (not isinstance(version, int) or version > SCHEMA_VERSION):
        raise RecordError(f"{where} has schema_version {version}, newer than this profiler_kit reads "
                          f"({SCHEMA_VERSION}): upgrade profiler_kit")
    try:
        return msgspec.convert(data, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise RecordError(f"{where} is not a valid {kind.__name__} record: {exc}") from None


def summary_from_builtins(data: dict, where: str = "summary") -> Summary:
    if data.get("schema_version", 1) == 1:
        data = _migrate_v1_summary(data)
    return _convert(data, Summary, where)


def analysis_from_builtins(data: dict, where: str = "analysis") -> Analysis:
    if data.get("schema_version", 1) == 1:
        data = _migrate_v1_analysis(data)
    return _convert(data, Analysis, where)


def comparison_from_builtins(data: dict, where: str = "comparison") -> Comparison:
    if data.get("schema_version", 1) == 1:
        data = _migrate_v1_comparison(data)
    return _convert(data, Comparison, where)


def read_summary(path: str | os.PathLike) -> Summary:
    return summary_from_builtins(_load(path), str(path))


def read_analysis(path: str | os.PathLike) -> Analysis:
    return analysis_from_builtins(_load(path), str(path))


def read_comparison(path: str | os.PathLike) -> Comparison:
    return comparison_from_builtins(_load(path), str(path))


def read_sweep(path: str | os.PathLike) -> Sweep:
    return _convert(_load(path), Sweep, str(path))


def read_ncu_measurement(path: str | os.PathLike) -> NcuMeasurement:
    """ncu_<mode>.json, plain or gzipped (test data is committed gzipped)."""
    return _convert(_load(path), NcuMeasurement, str(path))


# --------------------------------------------------------------------------------------------
# Schema version 1 (before 2026-11-29): what changed, migrated on read
# --------------------------------------------------------------------------------------------

_SIZE = re.compile(r"([0-9.]+)\s*([KMGT]?)(i?)B")


def parse_size_bytes(text: str | None) -> int | None:
    """'12.50 GiB' (PyTorch's OOM message) -> bytes; None if there is no size in it."""
    m = _SIZE.search(text or "")
    if not m:
        return None
    power = " KMGT".index(m.group(2) or " ")
    return int(float(m.group(1)) * (1024 if m.group(3) else 1000) ** power)


def _migrate_v1_analysis(a: dict) -> dict:
    """v1 had no roofs, no findings and no per-call bounds: they stay empty (re-analyse the
    trace for them); everything else kept its name."""
    return {**a, "schema_version": SCHEMA_VERSION}


def _migrate_v1_comparison(c: dict) -> dict:
    """v1 comparisons had no schema_version and no findings; their figures kept their names."""
    return {**c, "schema_version": SCHEMA_VERSION}


def _migrate_v1_summary(s: dict) -> dict:
    """v1 named step times without units (``step_ms.median``), kept the OOM size as text and had
    no stored findings; v2 has units in every field name and the findings of the analysis."""
    modes = {}
    for name, rec in (s.get("modes") or {}).items():
        rec = dict(rec)
        step = rec.pop("step_ms", None)
        if step:
            rec["step_ms"] = {"median_ms": step["median"], "iqr_ms": step["iqr"],
                              "min_ms": step["min"], "n": step["n"]}
        if "oom_requested" in rec:
            rec["oom_requested_bytes"] = parse_size_bytes(rec.pop("oom_requested"))
        if isinstance(rec.get("analysis"), dict):
            rec["analysis"] = _migrate_v1_analysis(rec["analysis"])
        modes[name] = rec
    comparison = {}
    for name, c in (s.get("comparison") or {}).items():
        ref, mine = (s.get("modes") or {}).get(s.get("reference_mode"), {}), (s.get("modes") or {}).get(name, {})
        r_min, m_min = (ref.get("step_ms") or {}).get("min"), (mine.get("step_ms") or {}).get("min")
        comparison[name] = {**c, "min_speedup": r_min / m_min if r_min and m_min else c["speedup"]}
    return {**s, "schema_version": SCHEMA_VERSION, "modes": modes, "comparison": comparison,
            "analyzed": any("analysis" in r for r in modes.values())}

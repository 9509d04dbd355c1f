"""Nsight Compute: what the hardware counted (ncu_<mode>.json, ``NcuMeasurement``), its join to a
trace (``MeasuredTraffic``) and the tolerances its verdict is judged with."""

from __future__ import annotations

import os
from typing import Literal

from profiler_kit.records.base import SCHEMA_VERSION, Record, _convert, _load

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

def read_ncu_measurement(path: str | os.PathLike) -> NcuMeasurement:
    """ncu_<mode>.json, plain or gzipped (test data is committed gzipped)."""
    return _convert(_load(path), NcuMeasurement, str(path))

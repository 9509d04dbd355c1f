"""analysis.json: the figures of one Kineto trace (``Analysis``) and the findings stored in every
record (``Finding``)."""

from __future__ import annotations

import os
from typing import Any, Literal

from profiler_kit.records.base import SCHEMA_VERSION, Record, _convert, _load
from profiler_kit.records.critical_path import CriticalPath
from profiler_kit.records.ncu import MeasuredTraffic
from profiler_kit.records.roofs import GpuSpecRecord, Roofs

Level = Literal["key", "warn", "info"]

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
    graph_replay_count: int = 0              # launched by cudaGraphLaunch
    graph_replay_us: float = 0.0
    graph_joined_count: int = 0              # of those, joined to their capture's launch (ops known)
    graph_joined_us: float = 0.0


class GraphJoinFigures(Record, kw_only=True):
    """How the graph replays of a trace were joined to their capture (analysis/graph_join.py):
    what share of the replayed time has its op, shapes and module, and why the rest has not."""

    capture_source: str                      # "this trace" or the capture file's path
    replays: int = 0                         # graph launches with activity in the trace
    captures: int = 0                        # capture regions found
    replayed_count: int = 0
    replayed_us: float = 0.0
    joined_count: int = 0
    joined_us: float = 0.0
    name_checked_count: int = 0              # joined, and the capture's recorded kernel name agreed
    name_mismatches: int = 0                 # replays joined by position although a name disagreed
    unjoined_us: dict[str, float] = {}       # reason -> replayed time left without an op
    unjoined_count: dict[str, int] = {}

    @property
    def joined_share(self) -> float | None:
        return self.joined_us / self.replayed_us if self.replayed_us else None


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
    setup_steps: list[str] = []              # steps that captured a graph: left out of the totals
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
    prologue_us: float = 0.0             # of time_us: quantization prologue (Sage's INT8/FP8 quant)
    flops_estimate: float = 0.0
    hbm_bytes_estimate: float = 0.0
    bound_us: dict[str, float] = {}      # the call's kernel time by roofline bound
    start_us: float = 0.0
    named_by: str = "module"             # "module": scope is its module path; "position": by place and shape


class AttentionSummary(Record, kw_only=True):
    total_us: float = 0.0
    prologue_us: float = 0.0             # of total_us: quantization prologues of the calls
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
    models_us: dict[str, float] = {}         # kernel time per model (outermost nn.Module frame)
    attention: AttentionSummary = AttentionSummary()
    flops_estimate: float = 0.0
    hbm_bytes_estimate: float = 0.0
    roofline_floor_us: float | None = None
    roofs: Roofs | None = None
    memory: MemoryFigures = MemoryFigures()
    top_kernels: list[TopKernel] | None = None
    roofline_points: list[RooflineOp] | None = None
    measured: MeasuredTraffic | None = None  # joined Nsight Compute measurement (analyze --ncu, measure=ncu)
    graph_join: GraphJoinFigures | None = None   # None: no graph replay in the trace
    critical_path: CriticalPath | None = None    # None: analysed before issue 22, or trimmed
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
        """False when most GPU activity was replayed from CUDA graphs without a capture to join
        it to: the trace then holds no aten op or module for it, so unfused attention (found by
        its op pattern) cannot be seen."""
        k = self.kernels
        unjoined = k.graph_replay_count - k.graph_joined_count
        return unjoined * 2 < k.count + k.memcpy_count + k.memset_count

    @property
    def attention_share(self) -> float | None:
        """Attention's share of GPU kernel time; None without kernel time, and None where no
        attention was found in a graph replay (unknown there, not zero)."""
        if not self.kernels.total_us or (not self.attention.total_us and not self.ops_attributed):
            return None
        return self.attention.total_us / self.kernels.total_us

def analysis_from_builtins(data: dict, where: str = "analysis") -> Analysis:
    if data.get("schema_version", 1) == 1:
        data = _migrate_v1_analysis(data)
    return _convert(data, Analysis, where)

def read_analysis(path: str | os.PathLike) -> Analysis:
    return analysis_from_builtins(_load(path), str(path))

def _migrate_v1_analysis(a: dict) -> dict:
    """v1 had no roofs, no findings and no per-call bounds: they stay empty (re-analyse the
    trace for them); everything else kept its name."""
    return {**a, "schema_version": SCHEMA_VERSION}

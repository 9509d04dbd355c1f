"""The critical path of each profiled step and the what-ifs re-timed on it (``analysis.json``'s
``critical_path``; analysis/critical_path.py builds it, analysis/what_if.py re-times it).

The record owns the one rule about its own figures: a step's breakdown sums to its length
(``CriticalPathStep.balanced``), and ``WhatIf.speedup`` is the baseline over the prediction."""

from __future__ import annotations

from profiler_kit.records.base import Record

# Keys of CriticalPathStep.breakdown_us, in the order the report lists them.
PATH_PARTS = ("cpu", "launch", "sync", "gpu", "gpu_gap")
# A breakdown may differ from the length by rounding only (ns -> µs floats): 1 ns.
BALANCE_TOLERANCE_US = 1e-3


class PathSegment(Record, kw_only=True):
    """One stretch of the path, for the figure: consecutive pieces of the same part and label
    merged. ``part`` is one of PATH_PARTS; ``label`` the GPU category, the host op or the call."""

    part: str
    label: str
    start_us: float
    dur_us: float


class CriticalPathStep(Record, kw_only=True):
    name: str
    start_us: float                       # the step's CPU start (trace's base_us origin)
    length_us: float                      # start to the end of the step's last GPU work
    breakdown_us: dict[str, float] = {}   # PATH_PARTS -> µs on the path; sums to length_us
    gpu_by_category_us: dict[str, float] = {}   # "gpu" split by kernel category
    cpu_by_name_us: dict[str, float] = {}       # "cpu" split by the innermost op / Python frame
    gpu_work_us: float = 0.0              # all GPU activity of the step, on the path or not
    activities: int = 0                   # GPU activities launched in the step
    launch_bound: int = 0                 # of those, started by their launch (not their stream)
    segments: list[PathSegment] | None = None   # the first step only (the figure)

    @property
    def balanced(self) -> bool:
        return abs(sum(self.breakdown_us.values()) - self.length_us) <= BALANCE_TOLERANCE_US


class WhatIf(Record, kw_only=True):
    """A scenario re-timed on the step's dependency graph (not Amdahl): its predicted step time,
    the mean over the steps, beside the measured path's mean length."""

    scenario: str                         # stable id: attention_x2, launches_free, attention_as:<mode>, ...
    title: str
    predicted_step_us: float
    baseline_step_us: float
    reference: str | None = None          # the mode whose attention times were borrowed

    @property
    def speedup(self) -> float | None:
        return self.baseline_step_us / self.predicted_step_us if self.predicted_step_us else None


class SyncCause(Record, kw_only=True):
    """Blocking host calls of one kind and cause inside the steps."""

    call: str                             # cudaDeviceSynchronize, cudaStreamSynchronize, cudaMemcpy, ...
    op: str = ""                          # the innermost op around it (aten::item, aten::_local_scalar_dense)
    frame: str = ""                       # the innermost Python frame around it (with_stack / with_modules)
    count: int = 0
    total_us: float = 0.0                 # host time in the calls
    mid_step: int = 0                     # of them, followed by more launches in the same step: a stall


class GpuGap(Record, kw_only=True):
    step: str
    start_us: float                       # from the step's start
    dur_us: float
    host: str = ""                        # the host op running at the gap's middle


class StepChecks(Record, kw_only=True):
    """The diffusers profiling guide's by-eye checks, measured (analysis/step_checks.py)."""

    syncs: list[SyncCause] = []
    gaps: list[GpuGap] = []               # the longest, at most 10
    gap_count: int = 0
    gap_total_us: float = 0.0
    gap_min_us: float = 0.0               # the threshold a gap passed
    launch_latency_us: dict[str, float] = {}   # p10, p50, p90, p99: launch call -> start, idle stream
    launches_measured: int = 0
    kernels_per_step: list[int] = []
    memory_growth_bytes: list[int] | None = None   # allocated at each step's end less at its start


class CriticalPath(Record, kw_only=True):
    step_source: str                      # "ProfilerStep", "--step NAME", "graph replay", "whole trace"
    steps: list[CriticalPathStep] = []
    what_if: list[WhatIf] = []
    launch_latency_us: float | None = None     # median launch -> start onto an idle stream
    notes: list[str] = []
    checks: StepChecks | None = None

    @property
    def length_us(self) -> float:
        """Mean path length over the steps."""
        return sum(s.length_us for s in self.steps) / len(self.steps) if self.steps else 0.0


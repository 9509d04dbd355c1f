"""sweep.json: a Hydra multirun (or any folder of run folders), aggregated (``Sweep``)."""

from __future__ import annotations

import os
from typing import Literal

from profiler_kit.records.analysis import Finding
from profiler_kit.records.base import SCHEMA_VERSION, Record, _convert, _load
from profiler_kit.records.stats import host_hides_gain

SweepJobStatus = Literal["complete", "failed", "running", "interrupted", "cancelled", "timed_out", "preempted",
                         "killed", "unreadable"]


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
    tokens: int | None                       # image tokens at the model's top level (RunInfo.image_tokens)
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
    # the critical path of the profiled step (analysis.critical_path): its mean length and each
    # what-if's predicted step, re-timed on it; scenario id -> ms per step
    path_ms_per_step: float | None = None
    what_if_ms: dict[str, float] = {}


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


class ExecutionPair(Record, kw_only=True):
    """One mode at one configuration, run eagerly and replayed (CUDA graphs / torch.compile),
    side by side: what the host hides in eager mode, and the why of the replayed kernels."""

    group: str                               # model · card · dtype · batch (no execution)
    resolution: int | None
    mode: str
    execution: str                           # the replayed world: "cuda_graphs" or "compile"
    eager_job: str | None = None             # the eager job (None: the replayed job's own eager timing)
    replayed_job: str
    eager_step_median_ms: float | None = None
    replayed_step_median_ms: float | None = None
    replay_gain: float | None = None         # eager step / replayed step of this mode
    eager_speedup: float | None = None       # over the reference mode, eagerly
    replayed_speedup: float | None = None    # over the reference mode, replayed
    replayed_kernel_ms_per_step: float | None = None
    replayed_attention_share: float | None = None      # of the replayed kernel time
    replayed_memory_bound_share: float | None = None   # of the replayed kernel time
    replayed_unknown_bound_share: float | None = None  # no op joined: no bound decided
    eager_host_ms_per_step: float | None = None        # eager step - its kernel time
    # predicted from the eager profiles (critical_path what-ifs), to set against the replayed
    # step: this mode's own profile with every launch free, and the reference mode's profile with
    # every launch free and this mode's attention
    predicted_replayed_ms: float | None = None
    predicted_from_reference_ms: float | None = None
    reference_mode: str | None = None

    @property
    def host_hides_gain(self) -> bool:
        """The eager speed-up is smaller than the replayed one beyond the noise (stats.host_hides_gain)."""
        return host_hides_gain(self.replayed_speedup, self.eager_speedup)

    @property
    def prediction_error(self) -> float | None:
        return _error(self.predicted_replayed_ms, self.replayed_step_median_ms)

    @property
    def reference_prediction_error(self) -> float | None:
        return _error(self.predicted_from_reference_ms, self.replayed_step_median_ms)


# How close a prediction from the eager profile must come to the measured replayed step to be
# called right: issue 22's goal, about the run-to-run spread of a step between sweeps (±2-4 %)
# plus the profiler's own change to kernel durations (1-2 %), with room.
PREDICTION_TOLERANCE = 0.10


def prediction_within(error: float) -> bool:
    """Is a prediction's relative error (predicted / measured - 1) inside PREDICTION_TOLERANCE?
    The one place that judges it: the sweep's finding and its report read this."""
    return abs(error) <= PREDICTION_TOLERANCE


def _error(predicted: float | None, measured: float | None) -> float | None:
    return predicted / measured - 1 if predicted and measured else None


class Sweep(Record, kw_only=True):
    """sweep.json (docs/data-contracts.md): every job and mode of a sweep folder, fits,
    the OOM frontier and the sweep's findings. Written identically for identical inputs."""

    schema_version: int = SCHEMA_VERSION
    jobs: list[SweepJob] = []
    rows: list[SweepRow] = []
    attention_fits: list[AttentionFit] = []
    oom_frontier: list[OomFrontier] = []
    execution_pairs: list[ExecutionPair] = []
    findings: list[Finding] = []
    warnings: list[str] = []

def read_sweep(path: str | os.PathLike) -> Sweep:
    return _convert(_load(path), Sweep, str(path))

"""summary.json: one experiment run (``Summary``), each attention mode's record (``ModeRecord``)
and the comparison of each mode against the reference."""

from __future__ import annotations

import os
from typing import Any, Literal

from profiler_kit.records.analysis import Analysis, Finding, _migrate_v1_analysis
from profiler_kit.records.base import SCHEMA_VERSION, Record, _convert, _load, parse_size_bytes
from profiler_kit.records.ncu import MeasureStatus
from profiler_kit.records.roofs import GpuSpecRecord, RoofBasis
from profiler_kit.records.stats import StepStats, host_hides_gain

Status = Literal["ok", "oom", "unavailable", "error"]
# A run: "running" while capture writes it, "complete" once every mode has its record,
# "failed" when the job could not run at all (no such device, the model did not build): the
# summary then says why, so a sweep goes on and its aggregate lists the failure. A run stopped
# from outside keeps the modes measured before and says how it ended: "interrupted" (Ctrl-C, a
# SIGTERM of unknown origin), or, as the scheduler reported it (capture/cluster.py),
# "cancelled" (scancel), "timed_out" (the time limit: SLURM's warning signal, or the hard limit),
# "preempted", "killed" (ended without a word: SIGKILL, out of host memory, a node failure).
RunStatus = Literal["running", "complete", "failed", "interrupted", "cancelled", "timed_out", "preempted", "killed"]

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
    capture_trace: str | None = None         # the CUDA-graph capture of the trace's replays
    # how far an ok mode got: "prepared" (checked, warmed up, profiled; not timed yet: what an
    # interrupted run leaves) or "timed" (step times measured). Modes that did not run: "timed".
    phase: Literal["prepared", "timed"] = "timed"
    attention_kernels: list[str] = []        # longest first (set by the analysis)
    # what the capture saw run (capture/attention_ran.py: the ops that pick the attention kernel,
    # by family: flash, efficient, cudnn, math, xformers, flex, flash_attn, ...), and why it is not
    # what the mode asked for (a pinned backend that fell back), None when it is
    attention_ran: list[str] = []
    attention_fallback: str | None = None
    measure: MeasureStatus | None = None     # measure=ncu: how the Nsight Compute measurement went
    analysis: Analysis | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def note(self) -> str | None:
        """What a table says beside the status: the recorded reason, or, for an ok mode an
        interrupted run left before its timing, that it has no step time (a bare "ok" beside
        an empty step column reads as a missing figure)."""
        if self.reason is not None:
            return self.reason
        if self.ok and self.phase == "prepared":
            return "prepared, not timed: the run ended before the timing"
        return None


class ModeComparison(Record, kw_only=True):
    """One mode against the reference mode of its run."""

    speedup: float                           # reference median step / this mode's (the run's execution)
    min_speedup: float                       # from the fastest steps: least disturbed by noise
    loop_speedup: float                      # denoising-loop it/s ratio
    kernel_speedup: float | None = None      # GPU kernel time per step ratio (from the traces)
    eager_speedup: float | None = None       # from the eager steps, where the run also timed them
    eager_spread: float = 0.0                # IQR/median of the two eager timings, summed
    memory_saved_bytes: int | None = None
    memory_saved_fraction: float | None = None

    @property
    def host_hides_gain(self) -> bool:
        """The eager speed-up is smaller than the run's own beyond the noise (stats.host_hides_gain)."""
        return host_hides_gain(self.speedup, self.eager_speedup, self.eager_spread)


class RunInfo(Record, kw_only=True):
    """What the run's "auto" settings resolved to on the device."""

    device: str
    dtype: str
    batch: int
    latent_shape: list[int]
    # the image (or video) tokens the attention sees at the model's top level: (resolution/8)²
    # for the UNet, (resolution/16)² after a transformer's 2x2 patches (x latent frames for
    # Wan); None in summaries written before transformers (the sweep falls back to the latents)
    image_tokens: int | None = None
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

def summary_from_builtins(data: dict, where: str = "summary") -> Summary:
    if data.get("schema_version", 1) == 1:
        data = _migrate_v1_summary(data)
    return _convert(data, Summary, where)

def read_summary(path: str | os.PathLike) -> Summary:
    return summary_from_builtins(_load(path), str(path))

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

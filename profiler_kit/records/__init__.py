"""Typed records of every artifact that crosses a stage, one module per artifact:

| module | artifact |
|---|---|
| `base` | `Record`, `RecordError`, the one atomic writer and the checked reader |
| `stats` | `StepStats`: timings and their noise verdict |
| `roofs` | the GPU spec a run used, the roofs an analysis used, `roofs_measured.json` |
| `ncu` | `ncu_<mode>.json` (Nsight Compute) and its join to a trace |
| `analysis` | `analysis.json` (one trace) and `Finding` |
| `critical_path` | `analysis.json`'s critical path of each step and its what-ifs |
| `comparison` | `comparison.json` (two traces) |
| `summary` | `summary.json` (one run) |
| `sweep` | `sweep.json` (a multirun) |

No torch import: the analyzer, the report and other tools read these. One writer and one reader
per artifact (:func:`write_record`, :func:`read_summary`, :func:`read_analysis`, ...). Values are
in base units with the unit in the field name (``median_ms``, ``peak_allocated_bytes``,
``window_us``); the report picks display units. A record owns the judgements that belong to its
own figures, in one place, as ``torch.utils.benchmark.Measurement`` does: :class:`StepStats`
decides ``noisy`` and every layer reads that flag. ``schema_version`` is checked on read;
version-1 files (before 2026-11-29) are migrated on read (``summary._migrate_v1_summary``).

Every name is importable from here (``from profiler_kit.records import read_summary, Summary``),
as it was when this was one module.
"""

from __future__ import annotations

from profiler_kit.records.base import (
    SCHEMA_VERSION, RecordError, Record, write_atomic, write_text_atomic, to_json, write_record,
    parse_size_bytes)
from profiler_kit.records.stats import (
    NOISE_IQR_FRACTION, StepStats)
from profiler_kit.records.roofs import (
    RoofBasis, ROOF_BASES, GpuSpecRecord, Roof, Roofs, RoofEngine, MeasuredRoof, SkippedRoof,
    RoofCalibration, read_roof_calibration)
from profiler_kit.records.ncu import (
    TOTAL_BYTES_TOLERANCE, CLASS_BYTES_TOLERANCE, CLASS_MIN_TIME_SHARE, MIN_JOIN_COVERAGE,
    SPILL_MIN_BYTES, L2_SECTOR_BYTES, NcuKernel, NcuMeasurement, BytesCheck, MeasuredKernel,
    l2_rewritten_bytes_min, MeasuredTraffic, MeasureStatus, read_ncu_measurement)
from profiler_kit.records.analysis import (
    Level, Finding, TraceSource, HostLinkFigures, KernelTotals, StepWindow, Timeline, AttentionCall,
    AttentionSummary, MemoryTimeline, LiveAllocation, MemoryFigures, TopKernel, RooflineOp,
    GraphJoinFigures, Analysis, analysis_from_builtins, read_analysis)
from profiler_kit.records.critical_path import (
    PATH_PARTS, BALANCE_TOLERANCE_US, PathSegment, CriticalPathStep, WhatIf, CriticalPath, SyncCause,
    GpuGap, StepChecks)
from profiler_kit.records.comparison import (
    Pair, CallPair, Comparison, comparison_from_builtins, read_comparison)
from profiler_kit.records.summary import (
    Status, RunStatus, ModeRecord, ModeComparison, RunInfo, Summary, summary_from_builtins,
    read_summary)
from profiler_kit.records.sweep import (
    SweepJobStatus, SweepJob, SweepRow, AttentionFit, OomFrontier, ExecutionPair, Sweep, read_sweep,
    PREDICTION_TOLERANCE, prediction_within)

__all__ = [
    'SCHEMA_VERSION', 'RecordError', 'Record', 'write_atomic', 'write_text_atomic', 'to_json',
    'write_record', 'parse_size_bytes', 'NOISE_IQR_FRACTION', 'StepStats', 'RoofBasis',
    'ROOF_BASES', 'GpuSpecRecord', 'Roof', 'Roofs', 'RoofEngine', 'MeasuredRoof', 'SkippedRoof',
    'RoofCalibration', 'read_roof_calibration', 'TOTAL_BYTES_TOLERANCE', 'CLASS_BYTES_TOLERANCE',
    'CLASS_MIN_TIME_SHARE', 'MIN_JOIN_COVERAGE', 'SPILL_MIN_BYTES', 'L2_SECTOR_BYTES', 'NcuKernel',
    'NcuMeasurement', 'BytesCheck', 'MeasuredKernel', 'l2_rewritten_bytes_min', 'MeasuredTraffic',
    'MeasureStatus', 'read_ncu_measurement', 'Level', 'Finding', 'TraceSource', 'HostLinkFigures',
    'KernelTotals', 'StepWindow', 'Timeline', 'AttentionCall', 'AttentionSummary', 'MemoryTimeline',
    'LiveAllocation', 'MemoryFigures', 'TopKernel', 'RooflineOp', 'GraphJoinFigures', 'Analysis',
    'analysis_from_builtins', 'read_analysis', 'PATH_PARTS', 'BALANCE_TOLERANCE_US', 'PathSegment',
    'CriticalPathStep', 'WhatIf', 'CriticalPath', 'SyncCause', 'GpuGap', 'StepChecks', 'Pair', 'CallPair', 'Comparison',
    'comparison_from_builtins', 'read_comparison', 'Status', 'RunStatus', 'ModeRecord',
    'ModeComparison', 'RunInfo', 'Summary', 'summary_from_builtins', 'read_summary',
    'SweepJobStatus', 'SweepJob', 'SweepRow', 'AttentionFit', 'OomFrontier', 'ExecutionPair', 'Sweep', 'read_sweep', 'PREDICTION_TOLERANCE', 'prediction_within']

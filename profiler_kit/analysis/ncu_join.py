"""Join an Nsight Compute measurement (ncu_<mode>.json) to a trace's kernels, and hold the cost
model's byte estimates against what the hardware counted. No torch, no GPU: the same join runs
inside a run's analysis and offline (``python -m profiler_kit.analyze TRACE --ncu FILE``).

The join. ncu measured one call, kernel by kernel in launch order; the trace recorded one or
more profiler steps. Each step (or the whole trace, without steps) is a candidate window; in each
the trace's kernels, in launch order, are aligned with ncu's by their function names (``nsight.
base_name``: ncu and CUPTI demangle templates and namespaces differently) as a longest common
subsequence (difflib), which tolerates a kernel present on one side only (a cuDNN workspace
init, an algorithm picked differently) without shifting the rest. The window pairing the most
kernels is the join; grid or block sizes that differ between a pair are counted as
``shape_mismatches``. Coverage is reported in kernels and in trace time.

Estimated against measured, per group of joined kernels: the whole call, attention, each kernel
category and each attention layer (records.BytesCheck decides each verdict). Estimates are per
kernel as the analysis split them (kernel_costs: an op's bytes over its work kernels, none on its
helpers), so a helper's traffic the model does not know (cuDNN's layout conversions) shows as a
miss of its category, which is what it is.

Written bytes are what the SMs wrote into L2 less their stores to local memory (register spills,
NcuKernel.written_bytes): exact for a kernel that writes each output byte once, an overstatement
for one that rewrites lines in L2. Spills are counted (``local_store_bytes``, per kernel and per
group) where the measurement has the counter; the join flags the rewriting it can prove beyond
them (records.l2_rewritten_bytes_min, from the card's L2 size). Before the spill counter was
collected, the xformers FlashAttention kernel on the H200 showed 79 MB written into L2 for a 5 MB
output at 512 px, 0.05 MB of it reaching DRAM: 74 MB of it were spills.

The bound from measured bytes: each costed op is judged again with the same FLOPs, the same
kernel time and the same roofs, its bytes replaced by what its work kernels measured. Where an
op's work kernels were not all joined, its bound stays the estimate's.
"""

from __future__ import annotations

import dataclasses
import difflib
import os

import numpy as np

from profiler_kit.analysis.categories import CATEGORIES
from profiler_kit.analysis.kernel_costs import KernelCosts
from profiler_kit.analysis.kernels import KernelTable
from profiler_kit.analysis.roofline import BOUNDS, roofline
from profiler_kit.hardware.nsight import base_name
from profiler_kit.records import (CLASS_BYTES_TOLERANCE, CLASS_MIN_TIME_SHARE, TOTAL_BYTES_TOLERANCE,
                                  Analysis, BytesCheck, MeasuredKernel, MeasuredTraffic, NcuMeasurement,
                                  l2_rewritten_bytes_min)
from profiler_kit.trace import KERNEL

_ATTENTION = CATEGORIES.index("attention")


def _windows(table: KernelTable, analysis: Analysis) -> list[tuple[str, np.ndarray]]:
    """(name, kernel indices in launch order) of each profiler step, else of the whole trace."""
    gpu = table.trace.gpu
    kernels = np.flatnonzero(gpu.kind == KERNEL)
    launch = np.where(table.launch_ns[kernels] >= 0, table.launch_ns[kernels], gpu.start_ns[kernels])
    kernels = kernels[np.lexsort((gpu.start_ns[kernels], launch))]
    starts_us = gpu.start_ns[kernels] / 1000.0
    out = []
    for step in analysis.timeline.steps:
        inside = (starts_us >= step.start_us) & (starts_us < step.start_us + step.window_us)
        if inside.any():
            out.append((step.name, kernels[inside]))
    return out or [("whole trace", kernels)]


def _align(trace_keys: list[str], ncu_keys: list[str]) -> list[tuple[int, int]]:
    matcher = difflib.SequenceMatcher(None, trace_keys, ncu_keys, autojunk=False)
    return [(a + i, b + i) for a, b, n in matcher.get_matching_blocks() for i in range(n)]


def _check(label: str, rows: list[MeasuredKernel], joined_us: float, tolerance: float | None) -> BytesCheck:
    gpu_us = float(sum(r.dur_us for r in rows))
    rewriting = [r for r in rows if r.l2_rewritten_bytes_min > 0]
    return BytesCheck(
        label=label, kernels=len(rows), gpu_us=gpu_us, time_share=gpu_us / joined_us if joined_us else 0.0,
        hbm_bytes_estimate=float(sum(r.hbm_bytes_estimate for r in rows)),
        hbm_bytes_measured=float(sum(r.hbm_bytes_measured or 0.0 for r in rows)),
        dram_read_bytes=float(sum(r.dram_read_bytes or 0.0 for r in rows)),
        written_bytes=float(sum(r.written_bytes or 0.0 for r in rows)), tolerance=tolerance,
        rewriting_kernels=len(rewriting), rewriting_written_bytes=float(sum(r.written_bytes or 0.0 for r in rewriting)),
        spilling_kernels=sum(1 for r in rows if r.spilled),
        local_store_bytes=float(sum(r.local_store_bytes or 0.0 for r in rows)))


def _measured_bounds(pairs: dict[int, float], table: KernelTable, costs: KernelCosts, spec) -> dict[int, str]:
    """{kernel: bound} from measured bytes, for the work kernels of every op whose work kernels
    were all joined (module docstring)."""
    if spec is None:
        return {}
    # the work kernels of each costed op, grouped once: the op's cost is judged against their
    # time (kernel_costs), so against their measured bytes too; its helpers keep their own bound
    work_of: dict[int, list[int]] = {}
    for k in np.flatnonzero(costs.is_work).tolist():
        work_of.setdefault(int(costs.cost_node[k]), []).append(k)
    out: dict[int, str] = {}
    for p in costs.points:
        work = work_of.get(p.node, [])
        if p.point is None or not work or any(k not in pairs for k in work):
            continue
        measured = sum(pairs[k] for k in work)
        bound = roofline(dataclasses.replace(p.cost, bytes=measured), p.time_us, spec).bound
        for k in work:
            out[k] = bound
    return out


def join_measurement(table: KernelTable, costs: KernelCosts, analysis: Analysis, spec,
                     measurement: NcuMeasurement, source: str) -> MeasuredTraffic:
    """The measurement joined to the trace (module docstring); ``source`` names its file."""
    names = table.trace.names
    gpu = table.trace.gpu
    ncu_keys = [base_name(k.name) for k in measurement.kernels]
    best = None
    for window, kernels in _windows(table, analysis):
        keys = [base_name(names[gpu.name_id[k]]) for k in kernels.tolist()]
        pairs = _align(keys, ncu_keys)
        if best is None or len(pairs) > len(best[2]):
            best = (window, kernels, pairs)
    window, kernels, pairs = best
    by_kernel = {int(kernels[a]): measurement.kernels[b] for a, b in pairs}
    measured_bytes = {k: m.hbm_bytes_measured for k, m in by_kernel.items() if m.hbm_bytes_measured is not None}
    bound_measured = _measured_bounds(measured_bytes, table, costs, spec)
    rows = []
    joined = []
    mismatches = 0
    for a, b in pairs:
        k = int(kernels[a])
        joined.append(k)
        m = measurement.kernels[b]
        grid, block = gpu.grid[k].tolist(), gpu.block[k].tolist()
        if m.grid and m.block and any(grid) and (grid != m.grid or block != m.block):
            mismatches += 1
        bound = BOUNDS[int(costs.bound[k])]
        call = int(table.attention_call[k]) if table.category[k] == _ATTENTION else -1
        rows.append(MeasuredKernel(
            trace_index=a, ncu_index=m.index, name=names[gpu.name_id[k]], category=CATEGORIES[table.category[k]],
            dur_us=float(table.dur_us[k]),
            ncu_duration_us=m.duration_ns / 1000.0 if m.duration_ns is not None else None,
            flops_estimate=float(costs.flops[k]), hbm_bytes_estimate=float(costs.hbm_bytes[k]),
            hbm_bytes_measured=m.hbm_bytes_measured, dram_read_bytes=m.dram_read_bytes,
            written_bytes=m.written_bytes, bound_estimate=bound, bound_measured=bound_measured.get(k, bound),
            attention_call=(table.scope_of_node(call) if call in table.tree.scope_names else table.scope(k))
            if call >= 0 else None,
            l2_rewritten_bytes_min=l2_rewritten_bytes_min(m, getattr(spec, "l2_bytes", None)),
            local_store_bytes=m.local_store_bytes,
            dram_throughput_pct=m.dram_throughput_pct, sm_throughput_pct=m.sm_throughput_pct,
            tensor_pipe_pct=m.tensor_pipe_pct))
    window_us = float(table.dur_us[kernels].sum())
    joined_us = float(sum(r.dur_us for r in rows))
    categories = sorted({r.category for r in rows},
                        key=lambda c: -sum(r.dur_us for r in rows if r.category == c))
    by_category = []
    for c in categories:
        members = [r for r in rows if r.category == c]
        share = sum(r.dur_us for r in members) / joined_us if joined_us else 0.0
        by_category.append(_check(c, members, joined_us,
                                  CLASS_BYTES_TOLERANCE if share >= CLASS_MIN_TIME_SHARE else None))
    calls: dict[str, list[MeasuredKernel]] = {}
    for r in rows:
        if r.attention_call is not None:
            calls.setdefault(r.attention_call, []).append(r)
    attention = [r for r in rows if r.category == "attention"]
    bound_est: dict[str, float] = {}
    bound_meas: dict[str, float] = {}
    for r in rows:
        bound_est[r.bound_estimate] = bound_est.get(r.bound_estimate, 0.0) + r.dur_us
        bound_meas[r.bound_measured] = bound_meas.get(r.bound_measured, 0.0) + r.dur_us
    return MeasuredTraffic(
        measurement=os.path.basename(source), tool_version=measurement.tool_version,
        device_name=measurement.device_name, cache_control=measurement.cache_control,
        clock_control=measurement.clock_control, window=window, trace_kernels=len(kernels),
        measured_kernels=len(measurement.kernels), joined_kernels=len(rows), shape_mismatches=mismatches,
        joined_time_fraction=joined_us / window_us if window_us else 0.0,
        costed_time_fraction=(sum(r.dur_us for r, k in zip(rows, joined) if costs.cost_node[k] >= 0) / joined_us
                              if joined_us else 0.0),
        total=_check("total", rows, joined_us, TOTAL_BYTES_TOLERANCE),
        attention=_check("attention", attention, joined_us, TOTAL_BYTES_TOLERANCE) if attention else None,
        by_category=by_category,
        by_attention_call=[_check(label, members, joined_us, None) for label, members in calls.items()],
        bound_us_estimate=bound_est, bound_us_measured=bound_meas, kernels=rows)


MEASURED_CSV_COLUMNS = ("trace_index", "ncu_index", "name", "category", "attention_call", "dur_us",
                        "ncu_duration_us", "flops_estimate", "hbm_bytes_estimate", "hbm_bytes_measured",
                        "error", "dram_read_bytes", "written_bytes", "local_store_bytes", "l2_rewritten_bytes_min",
                        "bound_estimate", "bound_measured", "dram_throughput_pct", "tensor_pipe_pct",
                        "sm_throughput_pct")


def write_measured_csv(measured: MeasuredTraffic, path) -> None:
    """measured.csv: one row per joined kernel, estimated beside measured (error = estimate /
    measured - 1, empty where nothing was measured), for a spreadsheet or pandas."""
    from profiler_kit.analysis import kernels_csv

    def rows():
        for k in measured.kernels:
            error = (k.hbm_bytes_estimate / k.hbm_bytes_measured - 1.0
                     if k.hbm_bytes_measured else None)
            yield (k.trace_index, k.ncu_index, k.name, k.category, k.attention_call or "", k.dur_us,
                   k.ncu_duration_us, k.flops_estimate, k.hbm_bytes_estimate, k.hbm_bytes_measured, error,
                   k.dram_read_bytes, k.written_bytes, k.local_store_bytes, k.l2_rewritten_bytes_min, k.bound_estimate,
                   k.bound_measured, k.dram_throughput_pct, k.tensor_pipe_pct, k.sm_throughput_pct)
    with open(path, "w", newline="", encoding="utf-8") as f:
        kernels_csv.write_rows(f, MEASURED_CSV_COLUMNS, rows())

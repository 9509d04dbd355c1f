"""The checks the diffusers profiling guide asks a user to make by eye in Perfetto, computed:
host syncs and what caused them, GPU gaps and the host work beside them, the launch-latency
distribution, kernels per step and memory growth across steps (``critical_path.checks``).

Figures only; analysis/path_findings.py judges them. Built on the path model's steps
(critical_path.PathModel), so "a step" means the same thing here as on the path.
"""

from __future__ import annotations

import numpy as np

from profiler_kit.analysis.critical_path import LAUNCH_CALL, PathModel
from profiler_kit.trace import KERNEL, MODULE

# A GPU gap worth showing: 50 µs is five median launch latencies on the H200 (9.7 µs, SD 1.5
# eager): not one late launch but host work, a sync or a copy between two kernels.
GAP_MIN_US = 50.0
GAPS_KEPT = 10
SYNCS_KEPT = 20
LATENCY_PERCENTILES = (10, 50, 90, 99)


def _causes(model: PathModel, calls: np.ndarray) -> list[tuple[str, str]]:
    """(innermost op, innermost Python frame) enclosing each runtime call ("" when none)."""
    table = model.table
    tree, spans, names = table.tree, table.trace.spans, table.trace.names
    out = []
    for node in model.rt_enclosing[calls].tolist():
        op = int(tree.nearest_op[node]) if node >= 0 else -1
        frame, up = "", node
        while up >= 0:
            if spans.kind[up] == MODULE:
                frame = names[spans.name_id[up]]
                break
            up = int(tree.parent[up])
        out.append((names[spans.name_id[op]] if op >= 0 else "", frame))
    return out


def sync_figures(model: PathModel) -> list[dict]:
    """Every blocking call inside a step, grouped by (call, op, frame): count, host time, and
    whether the host launched more GPU work after it in the same step (a stall mid-step)."""
    table = model.table
    rt, names = table.trace.runtime, table.trace.names
    launch_ids = np.asarray([i for i, nm in enumerate(names) if LAUNCH_CALL.match(nm)], dtype=np.int64)
    is_launch = np.isin(rt.name_id, launch_ids)
    groups: dict[tuple, dict] = {}
    # The blocking calls and each thread's launch starts, taken once: scanning every runtime
    # call per step and per blocking call was quadratic in the steps.
    blocking = np.flatnonzero(model.rt_class == 2)
    blocking_start = rt.start_ns[blocking]
    blocking_end = blocking_start + rt.dur_ns[blocking]
    launch_starts: dict[int, np.ndarray] = {}
    for g in model.steps:
        if not len(g.sync_end):
            continue
        calls = blocking[(blocking_start >= g.t0) & (blocking_end <= max(g.cpu_end, g.t0))]
        for r, (op, frame) in zip(calls.tolist(), _causes(model, calls)):
            th, end = int(rt.thread[r]), int(rt.start_ns[r] + rt.dur_ns[r])
            starts = launch_starts.get(th)
            if starts is None:
                starts = launch_starts[th] = rt.start_ns[is_launch & (rt.thread == th)]
            later = (starts >= end) & (starts <= g.cpu_end)
            key = (names[rt.name_id[r]], op, frame)
            e = groups.setdefault(key, {"call": key[0], "op": key[1], "frame": key[2], "count": 0,
                                        "total_us": 0.0, "mid_step": 0})
            e["count"] += 1
            e["total_us"] += float(rt.dur_ns[r]) / 1000.0
            e["mid_step"] += int(later.any())
    return sorted(groups.values(), key=lambda e: -e["total_us"])[:SYNCS_KEPT]


def gap_figures(model: PathModel) -> tuple[list[dict], int, float]:
    """GPU gaps (no activity of the step on any stream) of at least GAP_MIN_US inside each step's
    GPU span, the longest first, each with the host op running at its middle on the step's
    thread: (the GAPS_KEPT longest, count, total µs)."""
    table = model.table
    tree, spans, names = table.tree, table.trace.spans, table.trace.names
    found = []                                   # (dur ns, start ns, step)
    for g in model.steps:
        if len(g) < 2:
            continue
        order = np.argsort(g.start, kind="stable")
        s, e = g.start[order], g.end[order]
        reach = np.maximum.accumulate(e)
        gap = s[1:] - reach[:-1]
        big = np.flatnonzero(gap >= GAP_MIN_US * 1000.0)
        found += [(int(d), int(a), g) for d, a in zip(gap[big].tolist(), reach[:-1][big].tolist())]
    count, total = len(found), float(sum(d for d, _, _ in found)) / 1000.0
    found.sort(key=lambda x: -x[0])
    kept = []
    for d, a, g in found[:GAPS_KEPT]:           # the op beside: only for the gaps kept
        node = tree.enclosing(g.thread, a + d // 2) if g.thread >= 0 else -1
        op = int(tree.nearest_op[node]) if node >= 0 else -1
        beside = names[spans.name_id[op]] if op >= 0 else (names[spans.name_id[node]] if node >= 0 else "")
        kept.append({"step": g.name, "start_us": (a - g.t0) / 1000.0, "dur_us": d / 1000.0, "host": beside})
    return kept, count, total


def latency_figures(model: PathModel) -> dict[str, float]:
    lat = model.launch_latencies_ns
    if not len(lat):
        return {}
    return {f"p{p}": float(v) / 1000.0 for p, v in zip(LATENCY_PERCENTILES, np.percentile(lat, LATENCY_PERCENTILES))}


def memory_growth(model: PathModel) -> list[int] | None:
    """Allocated bytes at each step's end less at its start (the trace's [memory] events of the
    GPU); None without memory events or steps."""
    mem = model.table.trace.memory
    ok = (mem.device_id >= 0) & (mem.total_allocated >= 0)
    if not ok.any() or not model.steps:
        return None
    idx = np.flatnonzero(ok)
    idx = idx[np.argsort(mem.ts_ns[idx], kind="stable")]
    ts, alloc = mem.ts_ns[idx], mem.total_allocated[idx]
    out = []
    for g in model.steps:
        end = int(g.end.max()) if len(g) else g.cpu_end
        i0 = int(np.searchsorted(ts, g.t0, side="right")) - 1
        i1 = int(np.searchsorted(ts, max(end, g.cpu_end), side="right")) - 1
        if i1 < 0 or i1 <= i0:          # no allocation or free in the step
            out.append(0)
            continue
        # before the step: the running total after the last event before it, or, with none, the
        # first event's total less what that event allocated
        before = int(alloc[i0]) if i0 >= 0 else int(alloc[0] - mem.nbytes[idx[0]])
        out.append(int(alloc[i1]) - before)
    return out


def guide_checks(model: PathModel) -> dict:
    gaps, count, total = gap_figures(model)
    gpu = model.table.trace.gpu
    return {
        "syncs": sync_figures(model),
        "gaps": gaps, "gap_count": count, "gap_total_us": total, "gap_min_us": GAP_MIN_US,
        "launch_latency_us": latency_figures(model), "launches_measured": int(len(model.launch_latencies_ns)),
        "kernels_per_step": [int((gpu.kind[g.act] == KERNEL).sum()) for g in model.steps],
        "memory_growth_bytes": memory_growth(model),
    }

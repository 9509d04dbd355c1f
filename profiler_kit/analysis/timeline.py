"""GPU busy vs idle time, overall and per profiler step, with idle gaps attributed.

Busy time is the union of kernel, memcpy and memset intervals over all streams: two kernels
overlapping on two streams count once. The window runs from the first to the last GPU activity;
with profiler steps it is each step's span on the GPU timeline: first to last GPU activity
launched during the CPU-side "ProfilerStep#N" (what TraceLens reports as total time). With several
steps the totals are the sums over the steps (the gaps between steps belong to the profiler,
not the workload).

Steps never count a moment twice: work launched in one step can still run on the GPU when the
next step's work starts, so each step's window is clipped to begin where the previous one ended,
and busy is the union of activity inside that clipped window. Busy <= window per step and in
total, and the total window is at most the span from the first to the last activity.

GPU activity with no launch record (its correlation id matches no runtime call: it was queued
before the profiler started) is left out of busy time and of the step windows, and reported
apart as ``unlaunched_count`` / ``unlaunched_us``: charging it to the step it happens to
overlap would make that step look busier than its own work kept the GPU. (In traces without any
runtime events nothing can be told apart, and every activity counts.)

A trace without profiler steps that replays CUDA graphs takes each replay (one graph launch: its
first to its last activity) as a step: what runs around it (the capture's warm-up, input copies)
is no part of the replayed step.

A step that holds a CUDA/HIP-graph capture (the launches graph_join.py found recording a graph) is no
step of the workload: its launches only record a graph, and whatever it runs (the warm-up calls
a capture needs, Inductor's cudagraph-tree warm-up) is set-up. It is left out of the steps and
the totals and named in ``setup_steps``: busy and idle are those of the replayed steps.

An idle gap is attributed to
- "sync": a CPU thread sat in a synchronising call (cudaDeviceSynchronize,
  cudaStreamSynchronize, a blocking cudaMemcpy, ...) during the gap;
- "host_launch": the activity that ends the gap was launched after the gap began, so the GPU
  waited for the host to issue work (eager launch overhead; remedy: CUDA graphs /
  torch.compile);
- "other": neither (e.g. waiting on an event or another device).
"""

from __future__ import annotations

import re

import numpy as np

from profiler_kit.analysis.kernels import KernelTable

IDLE_REASONS = ("host_launch", "sync", "other")
# Host calls that block until the GPU catches up (not cudaStreamWaitEvent: that one makes a
# stream wait and returns at once). A plain cudaMemcpy / hipMemcpy blocks; the *Async ones not.
_SYNC_CALL = re.compile(r"(cuda|hip)(DeviceSynchronize|StreamSynchronize|EventSynchronize|"
                        r"Memcpy|MemcpyWithStream|Memcpy2D|MemcpyDtoH|MemcpyHtoD)$|"
                        r"cuCtxSynchronize|cuStreamSynchronize|cuEventSynchronize")
_STEP = re.compile(r"ProfilerStep#\d+$")


def _union(starts: np.ndarray, ends: np.ndarray):
    """Disjoint sorted segments covering the intervals, and the first interval of each."""
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > reach[:-1]
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, len(s) - 1]
    return s[first], reach[last], order[first]


def _sync_segments(table: KernelTable):
    rt, names = table.trace.runtime, table.trace.names
    sync_names = [i for i, nm in enumerate(names) if _SYNC_CALL.match(nm)]
    mask = np.isin(rt.name_id, sync_names)
    if not mask.any():
        return np.empty(0, np.int64), np.empty(0, np.int64)
    s, e, _ = _union(rt.start_ns[mask], rt.start_ns[mask] + rt.dur_ns[mask])
    return s, e


def _window_figures(seg_start, seg_end, seg_first, launch_ns, sync, w0: int, w1: int) -> dict:
    """Busy/idle and idle attribution inside [w0, w1] (ns), from the union segments."""
    inside = (seg_end > w0) & (seg_start < w1)
    s = np.clip(seg_start[inside], w0, w1)
    e = np.clip(seg_end[inside], w0, w1)
    first = seg_first[inside]
    busy = int((e - s).sum())
    # Gaps: window start -> first segment, then between segments, then last segment -> end.
    gap_start = np.r_[w0, e]
    gap_end = np.r_[s, w1]
    # The activity that ends each gap (none for the trailing gap).
    next_launch = np.r_[launch_ns[first], -1]
    keep = gap_end > gap_start
    gap_start, gap_end, next_launch = gap_start[keep], gap_end[keep], next_launch[keep]
    sync_start, sync_end = sync
    if len(sync_start):
        j = np.searchsorted(sync_end, gap_start, side="right")
        in_sync = (j < len(sync_start)) & (sync_start[np.minimum(j, len(sync_start) - 1)]
                                           < gap_end)
    else:
        in_sync = np.zeros(len(gap_start), dtype=bool)
    host = ~in_sync & (next_launch > gap_start)
    length = gap_end - gap_start
    window = w1 - w0
    return {
        "window_us": window / 1000.0,
        "busy_us": busy / 1000.0,
        "idle_us": (window - busy) / 1000.0,
        "idle_breakdown_us": {
            "host_launch": float(length[host].sum()) / 1000.0,
            "sync": float(length[in_sync].sum()) / 1000.0,
            "other": float(length[~in_sync & ~host].sum()) / 1000.0,
        },
    }


def _clip_overlaps(windows: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Each window starts no earlier than the previous one ended (sorted by start); a window
    left empty by the clipping keeps zero length."""
    out, reach = [], None
    for name, w0, w1 in windows:
        if reach is not None and w0 < reach:
            w0 = min(reach, w1)
        out.append((name, w0, w1))
        reach = w1 if reach is None else max(reach, w1)
    return out


def _step_windows(table: KernelTable, starts, ends, launch) -> list[tuple[str, int, int]]:
    """(name, start ns, end ns) of each profiler step on the GPU timeline: from the first to
    the last GPU activity launched during the CPU-side step, widened to Kineto's GPU-side
    "ProfilerStep#N" annotation where there is one. The annotation alone is not enough: Kineto
    builds it from the kernels launched directly under the step, so with nested
    record_function scopes (our module:: scopes) it can shrink to a microsecond."""
    trace = table.trace
    names = trace.names
    step_ids = [i for i, nm in enumerate(names) if _STEP.match(nm)]
    windows: dict[str, list[int]] = {}
    spans = trace.spans
    setup = _setup_steps(table, step_ids)
    # An activity is the step's when launched during it (one without a launch record: when
    # it started). Sorted by that time once, each step's activities are one slice (two binary
    # searches), not a mask over every activity per step (240 steps x 318k activities, 0.2 s).
    when = np.where(launch >= 0, launch, starts)
    order = np.argsort(when, kind="stable")
    when, starts_by, ends_by = when[order], starts[order], ends[order]
    for i in np.flatnonzero(np.isin(spans.name_id, step_ids)).tolist():
        if names[spans.name_id[i]] in setup:
            continue
        s0, s1 = spans.start_ns[i], spans.start_ns[i] + spans.dur_ns[i]
        lo, hi = np.searchsorted(when, s0, side="left"), np.searchsorted(when, s1, side="right")
        if hi > lo:
            windows[names[spans.name_id[i]]] = [int(starts_by[lo:hi].min()), int(ends_by[lo:hi].max())]
    ann = trace.gpu_annotations
    for i in np.flatnonzero(np.isin(ann.name_id, step_ids)).tolist():
        if names[ann.name_id[i]] in setup:
            continue
        a0, a1 = int(ann.start_ns[i]), int(ann.start_ns[i] + ann.dur_ns[i])
        w = windows.setdefault(names[ann.name_id[i]], [a0, a1])
        w[0], w[1] = min(w[0], a0), max(w[1], a1)
    return sorted(((name, w0, w1) for name, (w0, w1) in windows.items()), key=lambda s: s[1])


def _replay_windows(table: KernelTable) -> list[tuple[str, int, int]]:
    """(name, start ns, end ns) of each graph replay: its first to its last activity."""
    gpu = table.trace.gpu
    idx = np.flatnonzero(table.graph_replayed)
    groups = gpu.correlation[idx]
    windows = []
    for corr in np.unique(groups).tolist():
        acts = idx[groups == corr]
        windows.append((int(gpu.start_ns[acts].min()), int((gpu.start_ns[acts] + gpu.dur_ns[acts]).max())))
    windows.sort()
    return [(f"graph replay #{i + 1}", w0, w1) for i, (w0, w1) in enumerate(windows)]


def _setup_steps(table: KernelTable, step_ids: list[int]) -> set[str]:
    """Names of the profiler steps whose CPU side recorded a graph (graph_join.capture_starts)."""
    starts = table.graph_join.capture_starts
    if not starts or not step_ids:
        return set()
    trace = table.trace
    spans, names = trace.spans, trace.names
    out = set()
    for i in np.flatnonzero(np.isin(spans.name_id, step_ids)).tolist():
        s0, s1 = spans.start_ns[i], spans.start_ns[i] + spans.dur_ns[i]
        if any(s0 <= t <= s1 for _thread, t in starts):
            out.add(names[spans.name_id[i]])
    return out


def analyze_timeline(table: KernelTable) -> dict:
    gpu = table.trace.gpu
    empty = {"window_us": 0.0, "busy_us": 0.0, "idle_us": 0.0,
             "idle_breakdown_us": {r: 0.0 for r in IDLE_REASONS}, "steps": [],
             "unlaunched_count": 0, "unlaunched_us": 0.0}
    if len(gpu) == 0:
        return empty
    launched = _launched(table)
    unlaunched = {"unlaunched_count": int((~launched).sum()),
                  "unlaunched_us": float(gpu.dur_ns[~launched].sum()) / 1000.0}
    if not launched.any():
        return {**empty, **unlaunched}
    starts = gpu.start_ns[launched]
    ends = starts + gpu.dur_ns[launched]
    launch = table.launch_ns[launched]
    seg_start, seg_end, seg_first = _union(starts, ends)
    sync = _sync_segments(table)
    windows = _clip_overlaps(_step_windows(table, starts, ends, launch))
    steps = [{"name": name, "start_us": s0 / 1000.0,
              **_window_figures(seg_start, seg_end, seg_first, launch, sync, s0, s1)}
             for name, s0, s1 in windows]
    if not steps and table.graph_replayed.any():
        # No profiler steps, but graph replays: each replay is the step (a capture, warm-up
        # calls or input copies around it are not; see the module docstring).
        steps = [{"name": name, "start_us": s0 / 1000.0,
                  **_window_figures(seg_start, seg_end, seg_first, launch, sync, s0, s1)}
                 for name, s0, s1 in _clip_overlaps(_replay_windows(table))]
    if not steps:
        w0, w1 = int(seg_start[0]), int(seg_end[-1])
        return {**_window_figures(seg_start, seg_end, seg_first, launch, sync, w0, w1),
                "start_us": w0 / 1000.0, "steps": [], **unlaunched}
    # With steps, the window is the steps themselves: the time between two steps is the
    # profiler's own (prof.step(), the caller's synchronize) and no part of the workload.
    total = {key: sum(s[key] for s in steps) for key in ("window_us", "busy_us", "idle_us")}
    breakdown = {r: sum(s["idle_breakdown_us"][r] for s in steps) for r in IDLE_REASONS}
    step_ids = [i for i, nm in enumerate(table.trace.names) if _STEP.match(nm)]
    return {**total, "idle_breakdown_us": breakdown, "start_us": steps[0]["start_us"],
            "steps": steps, "setup_steps": sorted(_setup_steps(table, step_ids)), **unlaunched}


def _launched(table: KernelTable) -> np.ndarray:
    """True for activities with a launch record, or for all when the trace has no runtime
    calls at all (then nothing can be told apart)."""
    gpu = table.trace.gpu
    if not len(table.trace.runtime):
        return np.ones(len(gpu), dtype=bool)
    return (table.launch_ns >= 0) | (table.op_node >= 0)

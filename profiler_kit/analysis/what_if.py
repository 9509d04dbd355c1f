"""What-ifs re-timed on each step's dependency graph (critical_path.StepGraph), not Amdahl's law.

Why re-time: in a host-bound eager step a 2x faster attention kernel mostly makes the GPU wait
longer for the host; Amdahl on kernel time would promise the whole saving. Replaying the step's
dependencies with new durations says how much of the saving reaches the step.

The replay (``replay``) walks the activities in their observed start order. Each starts at the
latest of its constraints with new times: its stream predecessor's new end, its launch call's
new time, the other stream's activity it waited on. The constraint that bound it in the trace
keeps its observed slack (the gap after its predecessor, the launch latency); the others keep at
most their observed slack: so with nothing changed the replay gives back every observed start,
and the predicted step is the measured path's length exactly (tested). A host thread is shifted
after each blocking call by how much sooner or later the GPU work it waited on now ends.

Scenarios:
- ``attention_x{N}``: attention kernels N times faster (ATTENTION_SPEEDUPS);
- ``launches_free``: what CUDA graphs remove: no launch call, no host work and no host wait
  between the step's kernels: each starts when its stream (or the other stream it waited on)
  lets it, back to back, the first at the step's start. A graph replay on the H200 ran the SD 1.5
  UNet's 1,347 kernels in 17.98 ms against 17.93 ms of kernel time (tests/data/sd-graphs): 0.04 µs
  a kernel, so no gap is added. Host syncs inside a step cannot be captured: their waits drop
  out, which the step would not allow unchanged;
- ``attention_as:<mode>``: each attention call as fast as the same call (same module scope, else
  the mode's whole attention time per step) of another mode of the run, e.g. the fastest;
- ``launches_free+attention_as:<mode>``: both: what the mode's step would take under graphs with
  that mode's attention, to set against that mode's measured replayed step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from profiler_kit.analysis.categories import CATEGORIES
from profiler_kit.analysis.critical_path import CROSS, LAUNCH, STREAM, PathModel, StepGraph
from profiler_kit.records.critical_path import WhatIf

ATTENTION_SPEEDUPS = (2.0,)
_ATTENTION = CATEGORIES.index("attention")


def replay(g: StepGraph, dur: np.ndarray, latency_ns: float, launches_free: bool = False) -> float:
    """The step's predicted length in ns with the activities' durations `dur` (start order)."""
    n = len(g)
    if not n:
        return float(max(g.cpu_end - g.t0, 0))
    start, end = g.start, g.end
    prev, cross, launch, binding = g.prev.tolist(), g.cross.tolist(), g.launch.tolist(), g.binding.tolist()
    outer_end = g.outer_end.tolist()
    start_l, end_l, dur_l = start.tolist(), end.tolist(), dur.tolist()
    new_end = [0.0] * n
    # host shift per thread after each blocking call (in end order)
    sync_end, sync_start = g.sync_end.tolist(), g.sync_start.tolist()
    sync_thread, waited = g.sync_thread.tolist(), g.sync_waited.tolist()
    shift_after = [0.0] * len(sync_end)
    last_shift: dict[int, float] = {}
    # for each launch: the shift of its thread at launch time = the last sync on it ending before
    launch_sync = _last_sync_before(g) if len(sync_end) and not launches_free else None
    si = 0
    t0 = float(g.t0)
    for i in range(n):
        if not launches_free:
            while si < len(sync_end) and sync_end[si] <= start_l[i]:
                th = sync_thread[si]
                before = last_shift.get(th, 0.0)
                new = sync_end[si] + before
                w = waited[si]
                if w >= 0:
                    new = max(sync_start[si] + before, new_end[w] + (sync_end[si] - end_l[w]))
                shift_after[si] = last_shift[th] = new - sync_end[si]
                si += 1
        b = binding[i]
        ready = -np.inf
        p = prev[i]
        if p >= 0:
            gap = start_l[i] - end_l[p]
            ready = new_end[p] + (gap if (b == STREAM and not launches_free) else min(gap, 0.0))
        elif outer_end[i] >= 0 and not launches_free:
            # work launched before the step keeps its time; a graph replays the step on its own
            gap = start_l[i] - outer_end[i]
            ready = outer_end[i] + (gap if b == STREAM else min(gap, 0.0))
        x = cross[i]
        if x >= 0:
            gap = start_l[i] - end_l[x]
            ready = max(ready, new_end[x] + (gap if (b == CROSS and not launches_free) else min(gap, 0.0)))
        if launches_free:
            if ready == -np.inf:
                ready = t0
        elif launch[i] >= 0:
            slack = start_l[i] - launch[i]
            s = launch_sync[i] if launch_sync is not None else -1
            at = launch[i] + (shift_after[s] if s >= 0 else 0.0)
            ready = max(ready, at + (slack if b == LAUNCH else min(slack, latency_ns)))
        elif ready == -np.inf:
            ready = start_l[i]
        new_end[i] = ready + dur_l[i]
    return max(new_end) - t0


def _last_sync_before(g: StepGraph) -> list[int]:
    """Per activity: the last blocking call on its launch thread ending before its launch, -1."""
    out = np.full(len(g), -1, dtype=np.int64)
    for th in np.unique(g.sync_thread).tolist():
        pos = np.flatnonzero(g.sync_thread == th)
        on = np.flatnonzero(g.launch_thread == th)
        j = np.searchsorted(g.sync_end[pos], g.launch[on], side="right") - 1
        out[on] = np.where(j >= 0, pos[np.maximum(j, 0)], -1)
    return out.tolist()


def _durations(g: StepGraph) -> np.ndarray:
    return (g.end - g.start).astype(np.float64)


def _mean_us(values: list[float]) -> float:
    return sum(values) / len(values) / 1000.0 if values else 0.0


@dataclass(frozen=True)
class Retimable:
    """What re-timing a trace's steps needs, without the trace: the step graphs, the launch
    latency and, per step activity, whether it is attention and the scope of its call. Kept per
    mode until every mode of a run is analysed (the cross-mode what-ifs), so it holds no table."""
    steps: list
    launch_latency_ns: float
    attention: list           # per step: bool array over its activities
    scopes: list              # per step: the attention call's scope per activity ("" none)


def retimable(model: PathModel) -> Retimable:
    table = model.table
    is_att = table.category == _ATTENTION
    scope = np.full(len(table), "", dtype=object)
    for k in np.flatnonzero(is_att & (table.attention_call >= 0)).tolist():
        node = int(table.attention_call[k])
        scope[k] = table.scope_of_node(node) if node in table.tree.scope_names else table.scope(k)
    return Retimable(steps=model.steps, launch_latency_ns=model.launch_latency_ns,
                     attention=[is_att[g.act] for g in model.steps], scopes=[scope[g.act] for g in model.steps])


def _scenario(r: Retimable, scale, launches_free: bool) -> tuple[float, float]:
    """(predicted, baseline) mean step µs; scale(i, g) gives the duration multipliers of step i."""
    predicted, baseline = [], []
    for i, g in enumerate(r.steps):
        dur = _durations(g)
        baseline.append(float(max(int(g.end.max()) - g.t0, 0)) if len(g) else float(max(g.cpu_end - g.t0, 0)))
        predicted.append(replay(g, dur * scale(i, g), r.launch_latency_ns, launches_free))
    return _mean_us(predicted), _mean_us(baseline)


def own_what_ifs(model: PathModel) -> list[WhatIf]:
    """The scenarios one trace answers on its own: attention N x faster, every launch free."""
    out = []
    if not model.steps:
        return out
    r = retimable(model)
    if any(a.any() for a in r.attention):
        for n in ATTENTION_SPEEDUPS:
            pred, base = _scenario(r, lambda i, g: np.where(r.attention[i], 1.0 / n, 1.0), False)
            out.append(WhatIf(scenario=f"attention_x{n:g}", title=f"attention kernels {n:g}x faster",
                              predicted_step_us=pred, baseline_step_us=base))
    if any(len(g) for g in model.steps):
        pred, base = _scenario(r, lambda i, g: np.ones(len(g)), True)
        out.append(WhatIf(scenario="launches_free", title="every launch free (CUDA graphs)",
                          predicted_step_us=pred, baseline_step_us=base))
    return out


def attention_as(r: Retimable, mine: dict[str, float], other: dict[str, float],
                 mine_total_us: float, other_total_us: float, reference: str) -> list[WhatIf]:
    """Attention re-timed to another mode's: each call by the ratio of the same scope's time
    (per step) in both, calls without a match by the ratio of the whole attention time."""
    if not r.steps or mine_total_us <= 0:
        return []
    fallback = other_total_us / mine_total_us
    ratio = {s: other[s] / mine[s] for s in mine if s in other and mine[s] > 0}

    def scale(i: int, g: StepGraph) -> np.ndarray:
        f = np.array([ratio.get(s, fallback) for s in r.scopes[i].tolist()], dtype=np.float64)
        return np.where(r.attention[i], f, 1.0)

    out = []
    for free in (False, True):
        pred, base = _scenario(r, scale, free)
        out.append(WhatIf(
            scenario=("launches_free+" if free else "") + f"attention_as:{reference}",
            title=(f"every launch free and attention as fast as {reference}" if free
                   else f"attention as fast as {reference}"),
            predicted_step_us=pred, baseline_step_us=base, reference=reference))
    return out


def _call_times_per_step(record) -> dict[str, float]:
    out: dict[str, float] = {}
    for c in record.attention.calls_or_empty:
        out[c.scope] = out.get(c.scope, 0.0) + c.time_us / record.steps
    return out


def with_mode_what_ifs(analyses: dict) -> dict:
    """label -> Analysis record, each with ``attention_as:<mode>`` what-ifs added for every other
    mode whose attention took less time per step. ``analyses``: label -> (Analysis record,
    Retimable or None), or label -> TraceAnalysis."""
    import msgspec

    pairs = {label: (a if isinstance(a, tuple) else
                     (a.record, retimable(a.path_model) if a.path_model is not None else None))
             for label, a in analyses.items()}
    per_step = {label: rec.attention.total_us / rec.steps for label, (rec, r) in pairs.items()
                if rec.attention.total_us > 0 and r is not None}
    out = {}
    for label, (rec, r) in pairs.items():
        if label not in per_step or rec.critical_path is None:
            out[label] = rec
            continue
        added = []
        for other in sorted((m for m in per_step if per_step[m] < per_step[label]), key=per_step.get):
            added += attention_as(r, _call_times_per_step(rec), _call_times_per_step(pairs[other][0]),
                                  per_step[label], per_step[other], other)
        if added:
            cp = msgspec.structs.replace(rec.critical_path, what_if=list(rec.critical_path.what_if) + added)
            rec = msgspec.structs.replace(rec, critical_path=cp)
        out[label] = rec
    return out

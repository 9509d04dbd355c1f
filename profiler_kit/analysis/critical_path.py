"""The critical path of each profiled step: what the step's time waited on, from its CPU start to
the end of its last GPU work.

Why: busy/idle says *that* an eager step is host-bound; the path says *which* host work, launch
overhead, syncs and kernels the step's length is made of, so a what-if can be re-timed on it
(analysis/what_if.py) instead of guessed with Amdahl's law.

The dependencies a GPU really has, per GPU activity (kernel, memcpy, memset) of the step:
- *stream order*: it cannot start before the previous activity on its stream ends;
- *launch*: it cannot start before the host call that launched it (``cudaLaunchKernel``,
  ``cuLaunchKernel(Ex)``, ``cudaLaunchKernelExC``, ``cudaGraphLaunch``, ``cudaMemcpyAsync``, HIP's;
  whatever call the activity's correlation id names), plus the launch latency;
- *another stream*: where neither explains its start, the last activity of another stream
  ending before it (what ``cudaStreamWaitEvent`` orders);
and per host call that blocks (``cuda/hip{Device,Stream,Event}Synchronize``, blocking
``cudaMemcpy`` as ``.item()`` does): it returns once the GPU work it waited on ends.

The constraint that binds an activity is the one that came last. The path is walked backwards
from the step's last-ending activity: through the GPU activity, to whatever bound its start (the
stream predecessor, with the gap between them; the launch call, with the launch latency, and
then the host thread; the other stream's activity), and on the host backwards to the last
blocking call, which leads back to the GPU work it waited on, or to the step's start. Every
moment from the start to the end is on the path exactly once, so the path's length is the
step's span and its parts sum to it. Linear in the step's activities; host time is split by
op with numpy (self time of the innermost op or Python frame, clipped to the path).

A launch's *latency* (call start to activity start) is known only when the stream was idle at
the launch: its median over such activities (``launch_latency_us``) stands for the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from profiler_kit.analysis.categories import CATEGORIES
from profiler_kit.analysis.kernels import KernelTable
from profiler_kit.analysis.timeline import _STEP, _SYNC_CALL, _setup_steps

# Host calls that put GPU work in a queue: their time on the host is launch overhead.
LAUNCH_CALL = re.compile(r"(cuda|hip)(LaunchKernel\w*|LaunchCooperativeKernel\w*|ExtLaunchKernel\w*|"
                         r"ModuleLaunchKernel|ExtModuleLaunchKernel|GraphLaunch|Memcpy\w*Async|"
                         r"Memset\w*Async)$|cu(LaunchKernel\w*|GraphLaunch|Memcpy\w*Async|"
                         r"Memset\w*Async)$")
GRAPH_LAUNCH = re.compile(r"(cuda|hip|cu)GraphLaunch")
# How many entries back the cross-stream search looks for an activity of another stream: a
# stream's own predecessor sits in between at most a few times in real traces (two streams of
# one kernel each, interleaved); further back the other stream's work ended long before.
CROSS_STREAM_LOOKBACK = 8
# Names kept in a step's host split; the rest summed under "(other)".
CPU_NAMES_KEPT = 12
# Segments kept for the figure (first step): more merge into their neighbours' runs.
SEGMENTS_KEPT = 1500
OUTSIDE_OPS = "(host code outside ops)"

STREAM, LAUNCH, CROSS, NONE = 0, 1, 2, 3
EARLIER = -1                  # a path piece of GPU work launched before the step
EARLIER_WORK = "(launched before the step)"


@dataclass
class StepGraph:
    """One step's GPU activities in start order, each with its predecessors and which bound it,
    and the host's blocking calls. Times in ns from the trace's base; what what_if.py re-times."""
    name: str
    t0: int                    # CPU start of the step
    cpu_end: int               # CPU end of the step
    thread: int                # the step's host thread (-1 unknown)
    act: np.ndarray            # activity indices (trace.gpu rows), in start order
    start: np.ndarray
    end: np.ndarray
    prev: np.ndarray           # position of the previous activity on the same stream, -1 none
    outer_end: np.ndarray      # first of its stream in the step: end ns of the stream's previous
                               # activity, launched before the step (-1 none)
    cross: np.ndarray          # position of the last activity of another stream ending before, -1
    launch: np.ndarray         # launch call start ns, -1 none
    launch_thread: np.ndarray  # host thread of the launch call, -1 none
    binding: np.ndarray        # STREAM / LAUNCH / CROSS / NONE
    sync_thread: np.ndarray    # blocking calls of the step, in end order
    sync_start: np.ndarray
    sync_end: np.ndarray
    sync_waited: np.ndarray    # position of the activity each waited on, -1 none

    def __len__(self) -> int:
        return len(self.act)


@dataclass(frozen=True)
class PathModel:
    """What the path and the what-ifs need of a trace, built once."""
    table: KernelTable
    steps: list
    step_source: str
    launch_latency_ns: float
    launch_latencies_ns: np.ndarray   # every launch onto an idle stream: call start -> activity start
    rt_class: np.ndarray       # per runtime call: 0 other, 1 launch, 2 sync
    rt_enclosing: np.ndarray   # per runtime call: innermost enclosing span, -1 none
    # per thread, what host_split searches instead of scanning every call and span per step
    # (quadratic in the steps: a second on a 240-step trace); built on first use
    _thread_index: dict = field(default_factory=dict, repr=False, compare=False)

    def thread_index(self, thread: int) -> tuple:
        """(runtime calls of ``thread`` by start, their starts, their longest duration; the
        running maximum end of the thread's spans in SpanTree.by_thread order)."""
        found = self._thread_index.get(thread)
        if found is None:
            rt, tree = self.table.trace.runtime, self.table.tree
            calls = np.flatnonzero(rt.thread == thread)
            calls = calls[np.argsort(rt.start_ns[calls], kind="stable")]
            longest = int(rt.dur_ns[calls].max()) if len(calls) else 0
            entry = tree.by_thread.get(thread)
            reach = (np.maximum.accumulate(tree.end_ns[entry[0]]) if entry is not None and len(entry[0])
                     else np.empty(0, np.int64))
            found = self._thread_index[thread] = (calls, rt.start_ns[calls], longest, reach)
        return found


def _runtime_index(table: KernelTable) -> np.ndarray:
    """Per GPU activity, the runtime call its correlation id names (-1 none)."""
    gpu, rt = table.trace.gpu, table.trace.runtime
    if not len(rt):
        return np.full(len(gpu), -1, dtype=np.int64)
    order = np.argsort(rt.correlation, kind="stable")
    srt = rt.correlation[order]
    pos = np.clip(np.searchsorted(srt, gpu.correlation), 0, len(order) - 1)
    hit = (srt[pos] == gpu.correlation) & (gpu.correlation >= 0)
    return np.where(hit, order[pos], -1)


def _enclosing_spans(table: KernelTable) -> np.ndarray:
    """Innermost span enclosing each runtime call's start, vectorised per thread: the last span
    that starts before it, walked up its parents while it ended too early."""
    rt, tree = table.trace.runtime, table.tree
    out = np.full(len(rt), -1, dtype=np.int64)
    for thread, (order, starts) in tree.by_thread.items():
        calls = np.flatnonzero(rt.thread == thread)
        if not len(calls):
            continue
        t = rt.start_ns[calls]
        pos = np.searchsorted(starts, t, side="right") - 1
        node = np.where(pos >= 0, order[np.maximum(pos, 0)], -1)
        for _ in range(256):                      # nesting depth: Python stacks stay well below
            bad = (node >= 0) & (tree.end_ns[np.maximum(node, 0)] < t)
            if not bad.any():
                break
            node = np.where(bad, tree.parent[np.maximum(node, 0)], node)
        out[calls] = node
    return out


def _step_spans(table: KernelTable, step_name: str | None):
    """[(name, thread, t0, t1)] of the steps, and where they came from."""
    trace = table.trace
    spans, names = trace.spans, trace.names
    if step_name:
        ids = [i for i, nm in enumerate(names) if nm == step_name or nm.startswith(step_name + "#")]
        idx = np.flatnonzero(np.isin(spans.name_id, ids))
        idx = idx[np.argsort(spans.start_ns[idx], kind="stable")]
        many = len(idx) > 1 and len({names[spans.name_id[i]] for i in idx.tolist()}) < len(idx)
        out = [(f"{names[spans.name_id[i]]} [{n}]" if many else names[spans.name_id[i]],
                int(spans.thread[i]), int(spans.start_ns[i]), int(spans.start_ns[i] + spans.dur_ns[i]))
               for n, i in enumerate(idx.tolist())]
        return out, f"--step {step_name}"
    step_ids = [i for i, nm in enumerate(names) if _STEP.match(nm)]
    setup = _setup_steps(table, step_ids)
    idx = np.flatnonzero(np.isin(spans.name_id, step_ids))
    idx = idx[np.argsort(spans.start_ns[idx], kind="stable")]
    out = [(names[spans.name_id[i]], int(spans.thread[i]), int(spans.start_ns[i]),
            int(spans.start_ns[i] + spans.dur_ns[i]))
           for i in idx.tolist() if names[spans.name_id[i]] not in setup]
    if out:
        return out, "ProfilerStep"
    rt = trace.runtime
    graph_ids = [i for i, nm in enumerate(names) if GRAPH_LAUNCH.match(nm)]
    launches = np.flatnonzero(np.isin(rt.name_id, graph_ids))
    replayed = table.graph_replayed
    used = set(trace.gpu.correlation[replayed].tolist())
    launches = [r for r in launches.tolist() if int(rt.correlation[r]) in used]
    if launches:
        return [(f"graph replay #{n + 1}", int(rt.thread[r]), int(rt.start_ns[r]),
                 int(rt.start_ns[r] + rt.dur_ns[r])) for n, r in enumerate(launches)], "graph replay"
    starts = [int(spans.start_ns.min())] if len(spans) else []
    if len(trace.gpu):
        starts.append(int(trace.gpu.start_ns.min()))
    if not starts:
        return [], "whole trace"
    # no CPU spans (a GPU-only trace): every kernel's start is in the window
    t1 = int((spans.start_ns + spans.dur_ns).max()) if len(spans) else int(trace.gpu.start_ns.max())
    return [("whole trace", -1, min(starts), t1)], "whole trace"


def _stream_predecessors(table: KernelTable) -> np.ndarray:
    """Per GPU activity, the previous activity of its stream and device in the whole trace."""
    gpu = table.trace.gpu
    key = gpu.stream * 1024 + gpu.device
    order = np.lexsort((gpu.start_ns + gpu.dur_ns, gpu.start_ns, key))
    out = np.full(len(gpu), -1, dtype=np.int64)
    same = key[order[1:]] == key[order[:-1]]
    out[order[1:][same]] = order[:-1][same]
    return out


def _step_graph(table: KernelTable, name, thread, t0, t1, rt_index, rt_class, act: np.ndarray,
                stream_prev: np.ndarray) -> StepGraph:
    """The step's graph over its activities ``act`` (GpuActivities indices, ascending)."""
    gpu, rt = table.trace.gpu, table.trace.runtime
    act = act[np.lexsort((gpu.start_ns[act] + gpu.dur_ns[act], gpu.start_ns[act]))]
    start = gpu.start_ns[act]
    end = start + gpu.dur_ns[act]
    n = len(act)
    stream = gpu.stream[act] * 1024 + gpu.device[act]
    by_stream = np.lexsort((np.arange(n), stream))
    prev = np.full(n, -1, dtype=np.int64)
    same = stream[by_stream[1:]] == stream[by_stream[:-1]]
    prev[by_stream[1:][same]] = by_stream[:-1][same]
    # the stream may still run work launched before the step (the previous step's, pipelined)
    outer = np.where(prev < 0, stream_prev[act], -1)
    outer_end = np.where(outer >= 0, gpu.start_ns[np.maximum(outer, 0)] + gpu.dur_ns[np.maximum(outer, 0)], -1)
    r = rt_index[act]
    launch = np.where(r >= 0, table.launch_ns[act], -1)
    # (a trace without runtime calls has no thread to index: np.where evaluates both sides)
    launch_thread = np.where(r >= 0, rt.thread[np.maximum(r, 0)], -1) if len(rt) else np.full(n, -1, np.int64)
    cross = np.full(n, -1, dtype=np.int64)
    if n and len(np.unique(stream)) > 1:
        by_end = np.argsort(end, kind="stable")
        ends = end[by_end]
        last = np.searchsorted(ends, start, side="right") - 1
        for i in range(n):
            j = int(last[i])
            for _ in range(CROSS_STREAM_LOOKBACK):
                if j < 0:
                    break
                cand = int(by_end[j])
                if stream[cand] != stream[i]:
                    cross[i] = cand
                    break
                j -= 1
    return StepGraph(name=name, t0=t0, cpu_end=t1, thread=thread, act=act, start=start, end=end,
                     prev=prev, outer_end=outer_end, cross=cross, launch=launch, launch_thread=launch_thread,
                     binding=np.full(n, NONE, dtype=np.int8), sync_thread=np.empty(0, np.int64),
                     sync_start=np.empty(0, np.int64), sync_end=np.empty(0, np.int64),
                     sync_waited=np.empty(0, np.int64))


def _bind(g: StepGraph, latency_ns: float) -> None:
    """Which constraint came last for each activity (in place)."""
    n = len(g)
    if not n:
        return
    neg = np.iinfo(np.int64).min // 4
    ready_stream = np.where(g.prev >= 0, g.end[np.maximum(g.prev, 0)],
                            np.where(g.outer_end >= 0, g.outer_end, neg))
    slack = g.start - g.launch
    ready_launch = np.where(g.launch >= 0, g.launch + np.minimum(slack, latency_ns), neg)
    ready_cross = np.where(g.cross >= 0, g.end[np.maximum(g.cross, 0)], neg)
    ready = np.stack([ready_stream, ready_launch, ready_cross])
    binding = np.argmax(ready, axis=0).astype(np.int8)
    binding[ready.max(axis=0) == neg] = NONE
    g.binding[:] = binding


def _syncs(g: StepGraph, table: KernelTable, blocking: np.ndarray) -> None:
    """The step's blocking calls and the activity each waited on: the last one to end before
    the call returned, launched before the call began (in place). ``blocking``: every blocking
    call (rt_class 2), ascending; the step's are picked among those, not among all calls."""
    rt = table.trace.runtime
    end_rt = rt.start_ns[blocking] + rt.dur_ns[blocking]
    inside = (rt.start_ns[blocking] >= g.t0) & (end_rt <= max(g.cpu_end, g.t0))
    calls, calls_end = blocking[inside], end_rt[inside]
    by_return = np.argsort(calls_end, kind="stable")
    calls = calls[by_return]
    g.sync_thread = rt.thread[calls].astype(np.int64)
    g.sync_start = rt.start_ns[calls]
    g.sync_end = calls_end[by_return]
    waited = np.full(len(calls), -1, dtype=np.int64)
    if len(g) and len(calls):
        by_end = np.argsort(g.end, kind="stable")
        ends = g.end[by_end]
        pos = np.searchsorted(ends, g.sync_end, side="right") - 1
        for i in range(len(calls)):
            j = int(pos[i])
            while j >= 0:
                cand = int(by_end[j])
                if g.launch[cand] <= g.sync_start[i]:
                    if g.end[cand] > g.sync_start[i]:
                        waited[i] = cand
                    break
                j -= 1
    g.sync_waited = waited


def build_path_model(table: KernelTable, step_name: str | None = None) -> PathModel:
    """The steps' dependency graphs (what the path walk and the what-ifs read)."""
    trace = table.trace
    rt, names, gpu = trace.runtime, trace.names, trace.gpu
    launch_ids = [i for i, nm in enumerate(names) if LAUNCH_CALL.match(nm)]
    sync_ids = [i for i, nm in enumerate(names) if _SYNC_CALL.match(nm)]
    rt_class = np.where(np.isin(rt.name_id, sync_ids), 2,
                        np.where(np.isin(rt.name_id, launch_ids), 1, 0)).astype(np.int8)
    rt_index = _runtime_index(table)
    spans, source = _step_spans(table, step_name)
    graphs = []
    stream_prev = _stream_predecessors(table)
    no_runtime = not len(rt)
    # A step's activities: those launched during it (without runtime calls: started during
    # it). Sorted by that time once, each step's are one slice (two binary searches), not a
    # mask over every activity per step (240 steps x 318k activities on a 1 GB trace).
    pool = np.arange(len(gpu)) if no_runtime else np.flatnonzero(rt_index >= 0)
    when = gpu.start_ns[pool] if no_runtime else table.launch_ns[pool]
    by_time = np.argsort(when, kind="stable")
    when, pool = when[by_time], pool[by_time]
    for name, thread, t0, t1 in spans:
        last = max(t1, t0) if no_runtime else t1
        act = np.sort(pool[np.searchsorted(when, t0, side="left"):np.searchsorted(when, last, side="right")])
        graphs.append(_step_graph(table, name, thread, t0, t1, rt_index, rt_class, act, stream_prev))
    latencies = _launch_latencies(graphs, table)
    latency = float(np.median(latencies)) if len(latencies) else 0.0
    blocking = np.flatnonzero(rt_class == 2)
    for g in graphs:
        _bind(g, latency)
        _syncs(g, table, blocking)
    return PathModel(table=table, steps=graphs, step_source=source, launch_latency_ns=latency,
                     launch_latencies_ns=latencies, rt_class=rt_class, rt_enclosing=_enclosing_spans(table))


def _launch_latencies(graphs: list, table: KernelTable) -> np.ndarray:
    """Launch-call start to activity start, over activities launched onto an idle stream
    (their predecessor had ended) by a call that is not a graph launch (whose later kernels wait
    on the graph, not on the host)."""
    names = table.trace.names
    graph_ids = [i for i, nm in enumerate(names) if GRAPH_LAUNCH.match(nm)]
    parts = []
    for g in graphs:
        if not len(g):
            continue
        prev_end = np.where(g.prev >= 0, g.end[np.maximum(g.prev, 0)], g.outer_end)
        graph = np.isin(table.launch_name[g.act], graph_ids)
        idle = (g.launch >= 0) & (prev_end < g.launch) & ~graph & (g.start >= g.launch)
        parts.append(g.start[idle] - g.launch[idle])
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# The walk
# --------------------------------------------------------------------------------------------

def walk(g: StepGraph) -> tuple[list, list]:
    """The path of one step, backwards: (segments, host intervals). A segment is
    (part, label, t0 ns, t1 ns), label for "gpu" the activity's position in the step (EARLIER:
    work launched before it); a host interval
    (thread, t0, t1) is host time on the path, split by op later (host_split)."""
    segs: list = []
    host: list = []
    t0 = g.t0
    if not len(g):
        if g.cpu_end > t0:
            host.append((g.thread, t0, g.cpu_end))
            segs.append(("cpu", None, t0, g.cpu_end))
        return segs, host
    sync_by_thread: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for th in np.unique(g.sync_thread).tolist():
        pos = np.flatnonzero(g.sync_thread == th)
        sync_by_thread[th] = (pos, g.sync_end[pos])
    k = int(np.argmax(g.end))
    cursor = int(g.end[k])
    on_gpu = True
    thread = -1
    for _ in range(4 * len(g) + 2 * len(g.sync_end) + 4):
        if on_gpu:
            s = int(g.start[k])
            segs.append(("gpu", int(k), max(s, t0), cursor))
            if s <= t0:
                return segs, host
            b = int(g.binding[k])
            if b == STREAM and g.prev[k] < 0:
                # waiting on work launched before the step: GPU time, of no kernel of the step
                oe = min(int(g.outer_end[k]), s)
                segs.append(("gpu_gap", None, max(oe, t0), s))
                if oe > t0:
                    segs.append(("gpu", EARLIER, t0, oe))
                return segs, host
            if b == STREAM or b == CROSS:
                p = int(g.prev[k] if b == STREAM else g.cross[k])
                pe = min(int(g.end[p]), s)
                segs.append(("gpu_gap", None, max(pe, t0), s))
                if pe <= t0:
                    return segs, host
                k, cursor = p, pe
                continue
            if b == LAUNCH:
                r = int(g.launch[k])
                segs.append(("launch", None, max(min(r, s), t0), s))
                if r <= t0:
                    return segs, host
                on_gpu, thread, cursor = False, int(g.launch_thread[k]), min(r, s)
                continue
            segs.append(("gpu_gap", None, t0, s))
            return segs, host
        # on the host thread, backwards from the cursor to the last blocking call
        found = sync_by_thread.get(thread)
        i = -1
        if found is not None:
            pos, ends = found
            j = int(np.searchsorted(ends, cursor, side="right")) - 1
            if j >= 0 and ends[j] > t0:
                i = int(pos[j])
        if i < 0:
            host.append((thread, t0, cursor))
            segs.append(("cpu", None, t0, cursor))
            return segs, host
        e = int(g.sync_end[i])
        if cursor > e:
            host.append((thread, e, cursor))
            segs.append(("cpu", None, e, cursor))
        w = int(g.sync_waited[i])
        ss = int(g.sync_start[i])
        if w >= 0 and g.end[w] > max(ss, t0):
            we = min(int(g.end[w]), e)
            segs.append(("sync", None, we, e))
            k, cursor, on_gpu = w, we, True
            continue
        segs.append(("sync", None, max(ss, t0), e))
        cursor = ss
        if cursor <= t0:
            return segs, host
    raise RuntimeError("critical path walk did not end: the step graph has a cycle")


def _local_index(cand: np.ndarray):
    """A function mapping span indices to their position in ``cand`` (-1: not in it, or -1).
    By binary search in the sorted candidates: an array over all spans, filled per interval,
    cost 10 MB of writes per step on a trace of 1.3M spans."""
    srt = np.argsort(cand, kind="stable")
    ordered = cand[srt]

    def local(nodes: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(ordered, np.maximum(nodes, 0)), len(ordered) - 1)
        return np.where((nodes >= 0) & (ordered[pos] == nodes), srt[pos], -1)
    return local


def host_split(model: PathModel, intervals: list) -> tuple[dict, float, float]:
    """Host time of the path's intervals: ({name: ns of CPU work}, launch ns, sync ns). Each
    span's self time (its clipped length less its clipped children and runtime calls) goes to
    the innermost op enclosing it, else to its own name (a Python frame, an annotation); time
    under no span to OUTSIDE_OPS."""
    table = model.table
    trace, tree = table.trace, table.tree
    spans, rt, names = trace.spans, trace.runtime, trace.names
    rt_end = rt.start_ns + rt.dur_ns
    by_name: dict[str, float] = {}
    launch = sync = 0.0
    for thread, a, b in intervals:
        if b <= a:
            continue
        total = float(b - a)
        by_start, starts_ns, longest, reach = model.thread_index(thread)
        if thread >= 0:
            # a call ending after a started after a - longest: only those are looked at, then
            # put back in index order (the order of the sums below)
            near = by_start[np.searchsorted(starts_ns, a - longest, side="right"):
                            np.searchsorted(starts_ns, b, side="left")]
            calls = np.sort(near[rt_end[near] > a])
        else:
            calls = np.empty(0, np.int64)
        rc = (np.minimum(rt_end[calls], b) - np.maximum(rt.start_ns[calls], a)).astype(np.float64)
        cls = model.rt_class[calls]
        launch_i, sync_i = float(rc[cls == 1].sum()), float(rc[cls == 2].sum())
        launch += launch_i
        sync += sync_i
        other_calls = calls[cls == 0]
        for nm, us in zip(rt.name_id[other_calls].tolist(), rc[cls == 0].tolist()):
            key = names[nm]
            by_name[key] = by_name.get(key, 0.0) + us
        entry = tree.by_thread.get(thread)
        named: dict[str, float] = {}
        covered = float(rc.sum())
        if entry is not None:
            order, starts = entry
            upto = int(np.searchsorted(starts, b, side="left"))
            # spans before the first whose running maximum end passes a all ended by a
            cand = order[int(np.searchsorted(reach, a, side="right")):upto]
            cand = cand[tree.end_ns[cand] > a]
            if len(cand):
                clip = (np.minimum(tree.end_ns[cand], b) - np.maximum(spans.start_ns[cand], a)).astype(np.float64)
                local = _local_index(cand)
                par_local = local(tree.parent[cand])
                child = np.bincount(par_local[par_local >= 0], weights=clip[par_local >= 0],
                                    minlength=len(cand))
                enc = model.rt_enclosing[calls]
                enc_local = local(enc)
                child += np.bincount(enc_local[enc_local >= 0], weights=rc[enc_local >= 0],
                                     minlength=len(cand))
                own = np.maximum(clip - child, 0.0)
                near = tree.nearest_op[cand]
                label = np.where(near >= 0, spans.name_id[np.maximum(near, 0)], spans.name_id[cand])
                uniq, inv = np.unique(label, return_inverse=True)
                sums = np.bincount(inv, weights=own)
                for nm, us in zip(uniq.tolist(), sums.tolist()):
                    if us > 0:
                        named[names[nm]] = named.get(names[nm], 0.0) + us
                roots = par_local < 0
                covered += float(clip[roots].sum()) - float(rc[enc_local >= 0].sum())
        outside = max(total - covered, 0.0)
        if outside > 0:
            named[OUTSIDE_OPS] = named.get(OUTSIDE_OPS, 0.0) + outside
        # nesting that does not nest (a child ending after its parent by a few ns) can make the
        # parts miss the interval by a little: the host work is the interval less its calls
        work = total - launch_i - sync_i - float(rc[cls == 0].sum())
        named_sum = sum(named.values())
        scale = max(work, 0.0) / named_sum if named_sum > 0 else 1.0
        for key, us in named.items():
            by_name[key] = by_name.get(key, 0.0) + us * scale
    return by_name, launch, sync


# --------------------------------------------------------------------------------------------
# The record
# --------------------------------------------------------------------------------------------

def _merged_segments(g: StepGraph, segs: list, category: np.ndarray, base_us: float) -> list[dict]:
    """Forward-ordered, consecutive pieces of one part and label merged (the figure's bars)."""
    out: list[dict] = []
    for part, label, a, b in reversed(segs):
        if b <= a:
            continue
        name = (EARLIER_WORK if label == EARLIER else CATEGORIES[int(category[g.act[label]])]) if part == "gpu" else part
        if out and out[-1]["part"] == part and out[-1]["label"] == name:
            out[-1]["dur_us"] = (b / 1000.0) - out[-1]["start_us"]
            continue
        out.append({"part": part, "label": name, "start_us": a / 1000.0, "dur_us": (b - a) / 1000.0})
    if len(out) > SEGMENTS_KEPT:
        # thinner than 1/SEGMENTS_KEPT of the path (under a pixel of the figure): absorbed by the
        # stretch before it, so the bars still cover the path end to end
        thin = (out[-1]["start_us"] + out[-1]["dur_us"] - out[0]["start_us"]) / SEGMENTS_KEPT
        kept: list[dict] = []
        for s in out:
            if kept and (s["dur_us"] < thin or (kept[-1]["part"], kept[-1]["label"]) == (s["part"], s["label"])):
                kept[-1]["dur_us"] = s["start_us"] + s["dur_us"] - kept[-1]["start_us"]
            else:
                kept.append(s)
        out = kept
    for s in out:
        s["start_us"] -= g.t0 / 1000.0
    return out


def step_record(model: PathModel, g: StepGraph, with_segments: bool) -> dict:
    table = model.table
    segs, host = walk(g)
    category = table.category
    parts = {p: 0.0 for p in ("cpu", "launch", "sync", "gpu", "gpu_gap")}
    by_cat: dict[str, float] = {}
    for part, label, a, b in segs:
        d = float(max(b - a, 0))
        if part == "gpu":
            c = EARLIER_WORK if label == EARLIER else CATEGORIES[int(category[g.act[label]])]
            by_cat[c] = by_cat.get(c, 0.0) + d
        parts[part] += d
    by_name, launch, sync = host_split(model, host)
    parts["cpu"] -= launch + sync
    parts["launch"] += launch
    parts["sync"] += sync
    kept = sorted(by_name.items(), key=lambda kv: -kv[1])
    cpu_names = {k: v / 1000.0 for k, v in kept[:CPU_NAMES_KEPT]}
    rest = sum(v for _, v in kept[CPU_NAMES_KEPT:])
    if rest > 0:
        cpu_names["(other)"] = rest / 1000.0
    end = int(g.end.max()) if len(g) else max(g.cpu_end, g.t0)
    return {
        "name": g.name, "start_us": g.t0 / 1000.0, "length_us": (end - g.t0) / 1000.0,
        "breakdown_us": {k: v / 1000.0 for k, v in parts.items()},
        "gpu_by_category_us": {k: v / 1000.0 for k, v in sorted(by_cat.items(), key=lambda kv: -kv[1])},
        "cpu_by_name_us": cpu_names,
        "gpu_work_us": float((g.end - g.start).sum()) / 1000.0,
        "activities": len(g), "launch_bound": int((g.binding == LAUNCH).sum()),
        "segments": _merged_segments(g, segs, category, 0.0) if with_segments else None,
    }


def critical_path(model: PathModel) -> dict:
    """analysis.json's ``critical_path`` (without the what-ifs: what_if.py adds them)."""
    steps = [step_record(model, g, i == 0) for i, g in enumerate(model.steps)]
    notes = []
    if model.step_source == "whole trace" and steps:
        notes.append("no profiler step, --step annotation or graph replay: the whole trace is one step")
    return {"step_source": model.step_source, "steps": steps,
            "launch_latency_us": model.launch_latency_ns / 1000.0 if model.launch_latency_ns else None,
            "notes": notes}

"""CUDA/HIP-graph replays joined to the capture that recorded them.

Why: under CUDA graphs (and torch.compile's ``reduce-overhead`` mode, which replays CUDA-graph
trees) every kernel of a step is launched by one ``cudaGraphLaunch``. The replay's trace holds
each kernel's name and time but no aten op, shape or module scope, so nothing can be costed,
judged against the roofline or recognised as attention by its op pattern. The capture holds
exactly what is missing: ops, their shapes, module scopes and one launch call per graph node
(``cudaLaunchKernel``, ``cuLaunchKernel``, ``cudaMemsetAsync``, ...), but no kernels, since
captured work does not run. A graph replays its nodes in the order they were captured (on one
stream exactly; see below for several), so the i-th GPU activity of a replay is the i-th launch
call of its capture.

The join, per replay (the activities sharing one graph launch's correlation id), in start order:
- captures are the launch calls between ``(cuda|hip)StreamBeginCapture`` and
  ``...EndCapture`` on one thread; a trace without those markers (CUDA traces: Kineto records
  the capture calls under no name, "INVALID") uses each thread's runs of launch calls that
  launched nothing the trace saw;
- exact: a capture with as many launch calls as the replay has activities, the same kind
  (kernel / memcpy / memset) at every position, and, where the capture recorded kernel names
  (HIP does, with grid and block; CUDA does not), the same name at every position that has one.
  Of several such captures the one with most names agreeing wins, then the last captured before
  the replay (a re-captured graph replaces the old one);
- aligned: where the lengths differ but both sides have names, the longest runs of equal
  (kind, name) pairs join (difflib) and the rest stays unjoined;
- otherwise nothing is joined, and the reason is recorded (no capture in the trace, no capture
  of that length, names disagree).

A replay over several streams can run independent nodes in another order than captured; the
kind and name checks catch a reordering where names are known, and the record says how many
joined activities had their name checked, so a join on CUDA (kinds and length only) reads as
what it is.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import numpy as np

from profiler_kit.trace import KERNEL, MEMCPY, MEMSET, Trace

GRAPH_LAUNCH = re.compile(r"^(cuda|hip|cu)GraphLaunch")
_KERNEL_LAUNCH = re.compile(r"^(cuda|cu|hip)\w*Launch\w*Kernel")
_MEMCPY_CALL = re.compile(r"^(cuda|cu|hip)Memcpy\w*Async")
_MEMSET_CALL = re.compile(r"^(cuda|cu|hip)Memset\w*Async")
_BEGIN_CAPTURE = re.compile(r"^(cuda|hip|cu)StreamBeginCapture")
_END_CAPTURE = re.compile(r"^(cuda|hip|cu)StreamEndCapture")

# Why a replayed activity did not join (GraphJoin.unjoined_us keys)
NO_CAPTURE = "no capture in the trace"
NO_MATCHING_CAPTURE = "no capture with the replay's launch sequence"
NOT_ALIGNED = "not in a run of launches whose kernel names match"


@dataclass(frozen=True)
class GraphJoin:
    """Columns aligned with ``trace.gpu``, and the join's figures."""
    runtime_index: np.ndarray          # capture launch call (RuntimeCalls index) per activity, -1
    name_checked: np.ndarray           # bool: joined, and the capture's kernel name agreed
    replayed: np.ndarray               # bool: launched by a graph launch
    replays: int = 0                   # graph launches with activity in the trace
    captures: int = 0                  # capture regions found
    name_mismatches: int = 0           # exact-length joins where a recorded name disagreed
    unjoined_us: dict = field(default_factory=dict)     # reason -> replayed time not joined
    unjoined_count: dict = field(default_factory=dict)  # reason -> activities
    # (thread, first launch ns) of each capture a replay joined to, or that capture markers
    # delimit: the moments a profiler step spent recording a graph (timeline.py)
    capture_starts: tuple = ()

    @property
    def joined(self) -> np.ndarray:
        return self.runtime_index >= 0


def _ids(names: tuple[str, ...], pattern: re.Pattern) -> np.ndarray:
    return np.asarray([i for i, nm in enumerate(names) if pattern.search(nm)], dtype=np.int64)


def _slot_kinds(trace: Trace) -> np.ndarray:
    """Kind of graph node each runtime call creates when captured: KERNEL / MEMCPY / MEMSET, -1."""
    rt, names = trace.runtime, trace.names
    kind = np.full(len(rt), -1, dtype=np.int8)
    for pattern, k in ((_KERNEL_LAUNCH, KERNEL), (_MEMCPY_CALL, MEMCPY), (_MEMSET_CALL, MEMSET)):
        ids = _ids(names, pattern)
        if len(ids):
            kind[np.isin(rt.name_id, ids)] = k
    return kind


def _marked(trace: Trace) -> bool:
    """Does the trace name its captures (StreamBeginCapture / EndCapture calls)? HIP traces do;
    on CUDA, Kineto records those calls without a name."""
    names = trace.names
    return bool(len(_ids(names, _BEGIN_CAPTURE)) and len(_ids(names, _END_CAPTURE)))


def _captures(trace: Trace, slot_kind: np.ndarray) -> list[np.ndarray]:
    """Runtime-call indices of each capture's launch calls, in call order."""
    rt, names = trace.runtime, trace.names
    begin_ids, end_ids = _ids(names, _BEGIN_CAPTURE), _ids(names, _END_CAPTURE)
    is_slot = slot_kind >= 0
    out: list[np.ndarray] = []
    if _marked(trace):
        begins = np.flatnonzero(np.isin(rt.name_id, begin_ids))
        ends = np.flatnonzero(np.isin(rt.name_id, end_ids))
        for b in begins[np.argsort(rt.start_ns[begins], kind="stable")].tolist():
            th, t0 = rt.thread[b], rt.start_ns[b]
            later = ends[(rt.thread[ends] == th) & (rt.start_ns[ends] > t0)]
            if not len(later):
                continue
            t1 = rt.start_ns[later].min()
            inside = np.flatnonzero(is_slot & (rt.thread == th) & (rt.start_ns > t0)
                                    & (rt.start_ns < t1))
            if len(inside):
                out.append(inside[np.argsort(rt.start_ns[inside], kind="stable")])
        return out
    # No markers: runs of launch calls that launched nothing the trace saw, per thread.
    seen = np.isin(rt.correlation, trace.gpu.correlation[trace.gpu.correlation >= 0])
    orphan = is_slot & ~(seen & (rt.correlation >= 0))
    for th in np.unique(rt.thread[is_slot]).tolist():
        mine = np.flatnonzero(is_slot & (rt.thread == th))
        mine = mine[np.argsort(rt.start_ns[mine], kind="stable")]
        flags = orphan[mine]
        # split into maximal runs of orphans
        edges = np.flatnonzero(np.diff(np.r_[0, flags.astype(np.int8), 0]))
        for a, b in zip(edges[0::2].tolist(), edges[1::2].tolist()):
            out.append(mine[a:b])
    return out


def _name_key(name: str) -> str:
    """A kernel name as both sides spell it: HIP's launch record and the activity can differ
    in a leading 'void ' and in the parameter list."""
    name = name.removeprefix("void ")
    cut = name.find("(")
    return name[:cut] if cut > 0 else name


def join_graph_replays(trace: Trace, launch_name: np.ndarray) -> GraphJoin:
    """Join every graph-replayed activity to its capture's launch call (module docstring)."""
    gpu, rt, names = trace.gpu, trace.runtime, trace.names
    n = len(gpu)
    runtime_index = np.full(n, -1, dtype=np.int64)
    name_checked = np.zeros(n, dtype=bool)
    graph_ids = _ids(names, GRAPH_LAUNCH)
    replayed = (np.isin(launch_name, graph_ids) if len(graph_ids) and n
                else np.zeros(n, dtype=bool))
    slot_kind = _slot_kinds(trace)
    marked = _marked(trace)
    if not replayed.any():
        starts = tuple((int(rt.thread[c[0]]), int(rt.start_ns[c[0]]))
                       for c in _captures(trace, slot_kind)) if marked else ()
        return GraphJoin(runtime_index, name_checked, replayed, captures=len(starts),
                         capture_starts=starts)
    captures = _captures(trace, slot_kind)
    used = set(range(len(captures))) if marked else set()
    dur_us = gpu.dur_ns / 1000.0
    unjoined_us: dict[str, float] = {}
    unjoined_count: dict[str, int] = {}
    mismatches = 0
    key_cache: dict[int, str] = {}

    def key(name_id: int) -> str:
        k = key_cache.get(name_id)
        if k is None:
            k = key_cache[name_id] = _name_key(names[name_id])
        return k

    def miss(reason: str, acts: np.ndarray) -> None:
        unjoined_us[reason] = unjoined_us.get(reason, 0.0) + float(dur_us[acts].sum())
        unjoined_count[reason] = unjoined_count.get(reason, 0) + len(acts)

    cap_kinds = [slot_kind[c] for c in captures]
    cap_names = [rt.kernel_name_id[c] for c in captures]
    cap_start = [int(rt.start_ns[c[0]]) for c in captures]
    idx = np.flatnonzero(replayed)
    groups = gpu.correlation[idx]
    replays = 0
    for corr in np.unique(groups).tolist():
        acts = idx[groups == corr]
        acts = acts[np.lexsort((acts, gpu.start_ns[acts]))]
        replays += 1
        if not captures:
            miss(NO_CAPTURE, acts)
            continue
        kinds = gpu.kind[acts]
        act_keys = [key(i) for i in gpu.name_id[acts].tolist()]
        launch_at = int(gpu.start_ns[acts[0]])
        best, best_score = -1, None
        for c, ck in enumerate(cap_kinds):
            if len(ck) != len(acts) or not np.array_equal(ck, kinds):
                continue
            cn = cap_names[c].tolist()
            known = [(a, key(b)) for a, b in zip(act_keys, cn) if b >= 0]
            agree = sum(a == b for a, b in known)
            score = (agree == len(known), agree, cap_start[c] <= launch_at, cap_start[c])
            if best_score is None or score > best_score:
                best, best_score = c, score
        if best >= 0:
            if not best_score[0]:
                mismatches += 1
            cn = cap_names[best]
            ok = np.asarray([b >= 0 and key(b) == a for a, b in zip(act_keys, cn.tolist())],
                            dtype=bool)
            runtime_index[acts] = captures[best]
            name_checked[acts] = ok
            used.add(best)
            continue
        # Lengths differ: align by (kind, name) where the capture has names.
        aligned = _align(acts, act_keys, kinds, captures, cap_kinds, cap_names, key)
        if aligned is None:
            miss(NO_MATCHING_CAPTURE, acts)
            continue
        pos_a, slots, c = aligned
        used.add(c)
        runtime_index[acts[pos_a]] = slots
        name_checked[acts[pos_a]] = True
        rest = np.ones(len(acts), dtype=bool)
        rest[pos_a] = False
        if rest.any():
            miss(NOT_ALIGNED, acts[rest])
    return GraphJoin(runtime_index, name_checked, replayed, replays=replays,
                     captures=len(captures), name_mismatches=mismatches,
                     unjoined_us=unjoined_us, unjoined_count=unjoined_count,
                     capture_starts=tuple((int(rt.thread[captures[c][0]]),
                                           int(rt.start_ns[captures[c][0]])) for c in sorted(used)))


# Fewer than this share of a replay in matching runs is no join: a few common kernels
# (fills, copies) would align anywhere.
MIN_ALIGNED_SHARE = 0.5


def _align(acts, act_keys, kinds, captures, cap_kinds, cap_names, key):
    """(positions in acts, runtime indices) of the best (kind, name) alignment, or None."""
    a_tokens = [(int(k), n) for k, n in zip(kinds.tolist(), act_keys)]
    best = None
    for c, cn in enumerate(cap_names):
        if not (cn >= 0).any():
            continue
        b_tokens = [(int(k), key(int(n)) if n >= 0 else None)
                    for k, n in zip(cap_kinds[c].tolist(), cn.tolist())]
        sm = difflib.SequenceMatcher(None, a_tokens, b_tokens, autojunk=False)
        pos_a, pos_b = [], []
        for blk in sm.get_matching_blocks():
            pos_a.extend(range(blk.a, blk.a + blk.size))
            pos_b.extend(range(blk.b, blk.b + blk.size))
        if best is None or len(pos_a) > len(best[0]):
            best = (pos_a, captures[c][pos_b] if pos_b else np.empty(0, np.int64), c)
    if best is None or len(best[0]) < MIN_ALIGNED_SHARE * len(acts):
        return None
    return np.asarray(best[0], dtype=np.int64), best[1], best[2]

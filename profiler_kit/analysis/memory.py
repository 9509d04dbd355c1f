"""Peak GPU memory and what was live at the peak, from the trace's ``[memory]`` events.

torch.profiler(profile_memory=True) records one instant event per caching-allocator allocation
(Bytes > 0) and free (Bytes < 0), each with the running ``Total Allocated`` / ``Total Reserved``
of its device (Device Id -1 is the CPU). Replaying them by ``Addr`` up to the peak gives the
blocks live at the peak; each is attributed to the aten op (and module scope) enclosing its
allocation on the same thread. Memory allocated before the trace began (weights, for one) has no
event: it appears as ``allocated_before_trace_bytes``.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from profiler_kit.analysis.kernels import KernelTable

MAX_TIMELINE_POINTS = 2000
TOP_LIVE = 20


def _downsample(values: np.ndarray) -> np.ndarray:
    """Indices of at most MAX_TIMELINE_POINTS events: the largest of each bucket, so the
    peak always survives."""
    n = len(values)
    if n <= MAX_TIMELINE_POINTS:
        return np.arange(n)
    edges = np.linspace(0, n, MAX_TIMELINE_POINTS + 1).astype(np.int64)
    return np.asarray([lo + int(np.argmax(values[lo:hi]))
                       for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo])


def analyze_memory(table: KernelTable) -> dict:
    trace, tree = table.trace, table.tree
    mem = trace.memory
    result = {"peak_allocated_bytes": None, "peak_reserved_bytes": None, "device_id": None,
              "events": 0, "timeline": {"ts_us": [], "allocated_bytes": []},
              "live_at_peak": [], "allocated_before_trace_bytes": None}
    gpu_events = (mem.device_id >= 0) & (mem.total_allocated >= 0)
    if not gpu_events.any():
        return result
    devices, counts = np.unique(mem.device_id[gpu_events], return_counts=True)
    device = int(devices[np.argmax(counts)])     # the device the trace is about
    idx = np.flatnonzero(gpu_events & (mem.device_id == device))
    idx = idx[np.argsort(mem.ts_ns[idx], kind="stable")]
    allocated = mem.total_allocated[idx]
    peak_pos = int(np.argmax(allocated))
    keep = _downsample(allocated)

    live: dict[int, tuple[int, int]] = {}          # addr -> (bytes, event index)
    nbytes = mem.nbytes[idx[:peak_pos + 1]].tolist()
    addrs = mem.addr[idx[:peak_pos + 1]].tolist()
    for j, (b, a) in enumerate(zip(nbytes, addrs)):
        if b > 0:
            live[a] = (b, int(idx[j]))
        elif b < 0:
            live.pop(a, None)
    by_owner: dict[tuple[str, str], int] = defaultdict(int)
    for b, ev in live.values():
        node = tree.enclosing(int(mem.thread[ev]), int(mem.ts_ns[ev]))
        op = int(tree.nearest_op[node]) if node >= 0 else -1
        scope = table.scope_of_node(int(tree.scope_node[node])) if node >= 0 else ""
        by_owner[(table.span_name(op) or "(no op)", scope)] += b
    top = sorted(by_owner.items(), key=lambda kv: -kv[1])[:TOP_LIVE]
    peak = int(allocated[peak_pos])
    result.update(
        peak_allocated_bytes=peak,
        peak_reserved_bytes=int(mem.total_reserved[idx].max()),
        device_id=device,
        events=int(len(idx)),
        timeline={"ts_us": (mem.ts_ns[idx[keep]] / 1000.0).tolist(),
                  "allocated_bytes": allocated[keep].tolist()},
        live_at_peak=[{"op": op, "scope": scope, "bytes": b} for (op, scope), b in top],
        allocated_before_trace_bytes=max(peak - sum(b for b, _ in live.values()), 0),
    )
    return result

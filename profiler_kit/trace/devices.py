"""Several GPUs in one trace: which devices ran work, and one device's view of the trace.

A Kineto trace of one process that drives two GPUs (tensor parallelism in one process, a
pipeline with its text encoder on another card) holds kernels of both. Their kernel times,
busy/idle timelines and rooflines must not be merged: busy time over two devices double-counts
the window, and a sum of two GPUs' kernel time is no GPU's. The analysis is therefore made per
device; this module gives it the device's GPU activity and memory events, with the CPU side
(ops, launch calls, modules) kept whole, since the ops that launched one device's kernels are
found through it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from profiler_kit.trace.kineto import GpuActivities, MemoryEvents, Trace


def devices_of(trace: Trace) -> list[int]:
    """Devices with GPU activity, most activity time first (-1, unknown, left out)."""
    gpu = trace.gpu
    known = gpu.device >= 0
    if not known.any():
        return []
    ids, inverse = np.unique(gpu.device[known], return_inverse=True)
    time_ns = np.bincount(inverse, weights=gpu.dur_ns[known], minlength=len(ids))
    return [int(ids[i]) for i in np.argsort(-time_ns, kind="stable")]


def one_device(trace: Trace, device: int) -> Trace:
    """The trace as seen by ``device``: its GPU activity (and the activity of unknown device),
    its memory events and the host's; the CPU side unchanged."""
    keep = (trace.gpu.device == device) | (trace.gpu.device < 0)
    gpu = GpuActivities(**{f.name: getattr(trace.gpu, f.name)[keep]
                           for f in dataclasses.fields(GpuActivities)})
    mem_keep = (trace.memory.device_id == device) | (trace.memory.device_id < 0)
    memory = MemoryEvents(**{f.name: getattr(trace.memory, f.name)[mem_keep]
                             for f in dataclasses.fields(MemoryEvents)})
    return dataclasses.replace(trace, gpu=gpu, memory=memory)

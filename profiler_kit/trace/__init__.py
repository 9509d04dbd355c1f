"""Reading a Kineto trace, anyone's: the file (gzip, size and event limits: ``file``), the events
decoded into typed arrays (``kineto``: the structs in ``events``, the column tables in
``columns``), the event array's text cut at event boundaries (``slices``), a big trace's ranges
decoded in worker processes (``workers``) and the checks of their values (``values``). No
torch import: traces from other machines and tools are read here exactly as our own.

The reader's names are importable from here (``from profiler_kit.trace import read_trace, KERNEL``).
"""

from __future__ import annotations

from profiler_kit.trace.devices import devices_of, one_device
from profiler_kit.trace.file import DEFAULT_LIMITS, ReadLimits, TraceError
from profiler_kit.trace.kineto import (ANNOTATION, KERNEL, MEMCPY, MEMSET, MODULE, NN_MODULE_PREFIX, OP, CpuSpans,
                                       GpuActivities, GpuAnnotations, MemoryEvents, RuntimeCalls, Trace,
                                       compact_raw, decode_raw, read_trace)

__all__ = ["DEFAULT_LIMITS", "ReadLimits", "TraceError", "ANNOTATION", "KERNEL", "MEMCPY", "MEMSET", "MODULE",
           "NN_MODULE_PREFIX", "OP", "CpuSpans", "GpuActivities", "GpuAnnotations", "MemoryEvents",
           "RuntimeCalls", "Trace", "compact_raw", "decode_raw", "read_trace", "devices_of",
           "one_device"]

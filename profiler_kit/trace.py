"""Fast Kineto trace reader: one typed JSON decode, then compact numpy column tables.

Why this shape: a torch.profiler trace of an SD UNet step holds hundreds of thousands of events.
Loading it with ``json.load`` builds a dict per event (and a dict per ``args``), which is where
existing tools spend their time and memory. Here ``msgspec`` decodes straight into small typed
structs that declare only the fields the analysis reads (everything else is skipped while
parsing), the op shape fields stay raw JSON bytes until an op's shapes are actually needed, and
the events are then turned into int64 nanosecond columns.

Handles ``.json`` and ``.json.gz``; the current schema (``cat`` "kernel", "cpu_op", ...) and the
older one ("Kernel", "Operator", "Runtime", ...); float-microsecond timestamps with nanosecond
digits (kept exactly by subtracting an integer base before scaling to int ns); NVIDIA and AMD
traces; traces without GPU events. Imports neither torch nor diffusers.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from dataclasses import dataclass

import msgspec
import numpy as np

__all__ = [
    "TraceError", "Trace", "GpuActivities", "CpuSpans", "RuntimeCalls", "MemoryEvents",
    "GpuAnnotations", "read_trace", "decode_raw", "compact_raw",
    "KERNEL", "MEMCPY", "MEMSET", "OP", "ANNOTATION", "MODULE",
]


class TraceError(ValueError):
    """The file is not a readable Kineto trace; the message says what to do."""


_NO_RAW = msgspec.Raw()


class _Args(msgspec.Struct, gc=False):
    # Only the keys the analysis reads; msgspec skips every other key while parsing. Types are
    # lenient (a str where an int is usual) because other tools reuse the keys: Inductor's
    # Triton ops carry "grid": "grid(100,)". Values of an unexpected type read as unknown.
    correlation: int | None = None
    external_id: int | None = msgspec.field(default=None, name="External id")
    legacy_external_id: int | None = msgspec.field(default=None, name="external id")
    stream: int | str | None = None
    device: int | str | None = None
    grid: list[int] | str | None = None
    block: list[int] | str | None = None
    nbytes: int | str | None = msgspec.field(default=None, name="bytes")
    # Op shapes stay raw JSON until an op is costed: most ops never are.
    input_dims: msgspec.Raw = msgspec.field(default=_NO_RAW, name="Input Dims")
    input_types: msgspec.Raw = msgspec.field(default=_NO_RAW, name="Input type")
    concrete_inputs: msgspec.Raw = msgspec.field(default=_NO_RAW, name="Concrete Inputs")
    # [memory] instant events (profile_memory=True)
    total_allocated: int | None = msgspec.field(default=None, name="Total Allocated")
    total_reserved: int | None = msgspec.field(default=None, name="Total Reserved")
    mem_bytes: int | None = msgspec.field(default=None, name="Bytes")
    addr: int | None = msgspec.field(default=None, name="Addr")
    device_id: int | None = msgspec.field(default=None, name="Device Id")


class _Event(msgspec.Struct, gc=False):
    ph: str = ""
    cat: str = ""
    name: str = ""
    pid: int | str = 0
    tid: int | str = 0
    ts: float = 0.0
    dur: float = 0.0
    args: _Args | None = None


class _TraceFile(msgspec.Struct, gc=False):
    traceEvents: list[_Event] = []
    deviceProperties: list[dict] = []
    schemaVersion: int | str | None = None


# Kinds of GPU activity (GpuActivities.kind)
KERNEL, MEMCPY, MEMSET = 0, 1, 2
# Kinds of CPU span (CpuSpans.kind): aten op, record_function annotation, nn.Module python frame
OP, ANNOTATION, MODULE = 0, 1, 2

# cat -> table. Current Kineto names first, then the pre-2022 ones ("legacy" schema).
_GPU_CATS = {"kernel": KERNEL, "gpu_memcpy": MEMCPY, "gpu_memset": MEMSET,
             "Kernel": KERNEL, "Memcpy": MEMCPY, "Memset": MEMSET}
_SPAN_CATS = {"cpu_op": OP, "user_annotation": ANNOTATION, "python_function": MODULE,
              "Operator": OP, "Python": MODULE}
# cuLaunchKernel (Triton, cuDNN frontend) is logged under cuda_driver, not cuda_runtime.
_RUNTIME_CATS = {"cuda_runtime", "cuda_driver", "Runtime"}
_GPU_ANNOTATION_CATS = {"gpu_user_annotation"}
_LEGACY_CATS = {"Kernel", "Memcpy", "Memset", "Operator", "Runtime", "Python"}
_MODULE_PREFIX = "nn.Module: "


@dataclass(frozen=True)
class GpuActivities:
    """Kernels, memcpys and memsets, one row each. Times in ns from Trace.base_us."""
    kind: np.ndarray          # int8: KERNEL / MEMCPY / MEMSET
    name_id: np.ndarray       # int32 into Trace.names
    start_ns: np.ndarray      # int64
    dur_ns: np.ndarray        # int64
    device: np.ndarray        # int64, -1 unknown
    stream: np.ndarray        # int64, -1 unknown
    correlation: np.ndarray   # int64, -1 unknown
    external_id: np.ndarray   # int64, -1 unknown
    grid: np.ndarray          # int32 (n, 3), 0 unknown
    block: np.ndarray         # int32 (n, 3), 0 unknown
    nbytes: np.ndarray        # int64: memcpy/memset size, -1 unknown

    def __len__(self) -> int:
        return len(self.kind)


@dataclass(frozen=True)
class CpuSpans:
    """aten ops, record_function annotations and ``nn.Module:`` python frames."""
    kind: np.ndarray          # int8: OP / ANNOTATION / MODULE
    name_id: np.ndarray
    start_ns: np.ndarray
    dur_ns: np.ndarray
    thread: np.ndarray        # int32 into Trace.threads
    external_id: np.ndarray
    input_dims: list          # msgspec.Raw per span (empty Raw when absent): decode_raw()
    input_types: list
    concrete_inputs: list

    def __len__(self) -> int:
        return len(self.kind)


@dataclass(frozen=True)
class RuntimeCalls:
    """CUDA/HIP runtime and driver API calls (launches, syncs, memcpys) on CPU threads."""
    name_id: np.ndarray
    start_ns: np.ndarray
    dur_ns: np.ndarray
    thread: np.ndarray
    correlation: np.ndarray

    def __len__(self) -> int:
        return len(self.name_id)


@dataclass(frozen=True)
class MemoryEvents:
    """``[memory]`` instant events: one allocation (Bytes > 0) or free (Bytes < 0) each."""
    ts_ns: np.ndarray
    thread: np.ndarray
    device_id: np.ndarray     # -1 is the CPU
    nbytes: np.ndarray
    total_allocated: np.ndarray
    total_reserved: np.ndarray
    addr: np.ndarray          # uint64

    def __len__(self) -> int:
        return len(self.ts_ns)


@dataclass(frozen=True)
class GpuAnnotations:
    """record_function ranges as the GPU saw them (e.g. ProfilerStep#N on the GPU timeline)."""
    name_id: np.ndarray
    start_ns: np.ndarray
    dur_ns: np.ndarray

    def __len__(self) -> int:
        return len(self.name_id)


@dataclass(frozen=True)
class Trace:
    path: str
    size_bytes: int
    schema: str                       # "kineto" or "legacy"
    base_us: int                      # every *_ns column counts from this timestamp
    names: tuple[str, ...]            # interned event names
    threads: tuple[tuple, ...]        # (pid, tid) per thread index
    device_properties: tuple[dict, ...]
    gpu: GpuActivities
    spans: CpuSpans
    runtime: RuntimeCalls
    memory: MemoryEvents
    gpu_annotations: GpuAnnotations

    @property
    def has_gpu(self) -> bool:
        return len(self.gpu) > 0


def decode_raw(raw: msgspec.Raw):
    """Decode one of CpuSpans' raw shape fields; None when the trace did not record it."""
    return msgspec.json.decode(raw) if len(raw) else None


def compact_raw(raw: msgspec.Raw) -> str:
    """One of CpuSpans' raw shape fields as compact one-line JSON ("" when absent)."""
    return msgspec.json.encode(msgspec.json.decode(raw)).decode() if len(raw) else ""


def _load_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise TraceError(f"{path}: no such file; pass the path of a Kineto trace "
                         "(.json or .json.gz written by torch.profiler)") from None
    except IsADirectoryError:
        raise TraceError(f"{path}: is a directory; pass the trace file inside it") from None
    except OSError as exc:
        raise TraceError(f"{path}: cannot read ({exc.strerror})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise TraceError(f"{path}: corrupt or truncated gzip ({exc}); copy the trace "
                             "again or decompress it to check") from None
    return data


def _decode(path: str, data: bytes) -> _TraceFile:
    head = data[:4096].lstrip()
    if not head:
        raise TraceError(f"{path}: file is empty; re-export the trace with "
                         "prof.export_chrome_trace(...) or tensorboard_trace_handler")
    try:
        if head[:1] == b"[":       # bare Chrome-trace array of events
            return _TraceFile(traceEvents=msgspec.json.decode(data, type=list[_Event]))
        return msgspec.json.decode(data, type=_TraceFile)
    except msgspec.ValidationError as exc:
        raise TraceError(f"{path}: not a Kineto trace ({exc}); pass a trace written by "
                         "torch.profiler") from None
    except msgspec.DecodeError as exc:
        raise TraceError(f"{path}: not valid JSON ({exc}); the trace may be truncated, "
                         "re-export it") from None


def _ns(values: list, base_us: int) -> np.ndarray:
    # Subtract the integer base before scaling: keeps the nanosecond digits of float-µs stamps.
    arr = np.asarray(values, dtype=np.float64)
    return np.rint((arr - base_us) * 1000.0).astype(np.int64)


def _int_or(values, default: int = -1) -> np.ndarray:
    return np.asarray([v if type(v) is int else default for v in values], dtype=np.int64)


def _dim3(values) -> np.ndarray:
    out = np.zeros((len(values), 3), dtype=np.int32)
    for i, v in enumerate(values):
        if type(v) is list and v:
            out[i, :len(v[:3])] = v[:3]
    return out


def read_trace(path: str | os.PathLike) -> Trace:
    """Read a Kineto trace into column tables. Raises TraceError with a one-line reason."""
    path = os.fspath(path)
    data = _load_bytes(path)
    size_bytes = os.path.getsize(path)
    decoded = _decode(path, data)
    del data
    events = decoded.traceEvents
    if not events:
        raise TraceError(f"{path}: the trace holds no events; was the profiler schedule "
                         "active (did prof.step() run)?")

    gpu_ev, span_ev, rt_ev, mem_ev, gann_ev = [], [], [], [], []
    legacy = False
    gpu_cats, span_cats = _GPU_CATS, _SPAN_CATS
    for e in events:
        cat = e.cat
        if e.ph == "X":
            if cat in gpu_cats:
                gpu_ev.append(e)
            elif cat in span_cats:
                if cat == "python_function" or cat == "Python":
                    if e.name.startswith(_MODULE_PREFIX):
                        span_ev.append(e)
                else:
                    span_ev.append(e)
            elif cat in _RUNTIME_CATS:
                rt_ev.append(e)
            elif cat in _GPU_ANNOTATION_CATS:
                gann_ev.append(e)
            else:
                continue
            if cat in _LEGACY_CATS:
                legacy = True
        elif e.ph == "i" and e.name == "[memory]" and e.args is not None:
            mem_ev.append(e)
    del events, decoded.traceEvents

    firsts = [min(e.ts for e in g) for g in (gpu_ev, span_ev, rt_ev, mem_ev, gann_ev) if g]
    base_us = int(math.floor(min(firsts))) if firsts else 0

    names: dict[str, int] = {}
    threads: dict[tuple, int] = {}

    def name_ids(evs):
        return np.asarray([names.setdefault(e.name, len(names)) for e in evs], dtype=np.int32)

    def thread_ids(evs):
        return np.asarray([threads.setdefault((e.pid, e.tid), len(threads)) for e in evs],
                          dtype=np.int32)

    empty = _Args()
    g_args = [e.args or empty for e in gpu_ev]
    gpu = GpuActivities(
        kind=np.asarray([gpu_cats[e.cat] for e in gpu_ev], dtype=np.int8),
        name_id=name_ids(gpu_ev),
        start_ns=_ns([e.ts for e in gpu_ev], base_us),
        dur_ns=_ns([e.dur for e in gpu_ev], 0),
        device=_int_or([a.device for a in g_args]),
        stream=_int_or([a.stream if a.stream is not None else _stream_from_tid(e.tid)
                        for a, e in zip(g_args, gpu_ev)]),
        correlation=_int_or([a.correlation for a in g_args]),
        external_id=_int_or([a.external_id if a.external_id is not None
                             else a.legacy_external_id for a in g_args]),
        grid=_dim3([a.grid for a in g_args]),
        block=_dim3([a.block for a in g_args]),
        nbytes=_int_or([a.nbytes for a in g_args]),
    )
    s_args = [e.args or empty for e in span_ev]
    spans = CpuSpans(
        kind=np.asarray([span_cats[e.cat] for e in span_ev], dtype=np.int8),
        name_id=name_ids(span_ev),
        start_ns=_ns([e.ts for e in span_ev], base_us),
        dur_ns=_ns([e.dur for e in span_ev], 0),
        thread=thread_ids(span_ev),
        external_id=_int_or([a.external_id if a.external_id is not None
                             else a.legacy_external_id for a in s_args]),
        input_dims=[a.input_dims for a in s_args],
        input_types=[a.input_types for a in s_args],
        concrete_inputs=[a.concrete_inputs for a in s_args],
    )
    runtime = RuntimeCalls(
        name_id=name_ids(rt_ev),
        start_ns=_ns([e.ts for e in rt_ev], base_us),
        dur_ns=_ns([e.dur for e in rt_ev], 0),
        thread=thread_ids(rt_ev),
        correlation=_int_or([(e.args or empty).correlation for e in rt_ev]),
    )
    m_args = [e.args for e in mem_ev]
    memory = MemoryEvents(
        ts_ns=_ns([e.ts for e in mem_ev], base_us),
        thread=thread_ids(mem_ev),
        device_id=_int_or([a.device_id for a in m_args]),
        nbytes=_int_or([a.mem_bytes for a in m_args], 0),
        total_allocated=_int_or([a.total_allocated for a in m_args]),
        total_reserved=_int_or([a.total_reserved for a in m_args]),
        addr=np.asarray([a.addr if a.addr is not None else 0 for a in m_args],
                        dtype=np.uint64),
    )
    gpu_annotations = GpuAnnotations(
        name_id=name_ids(gann_ev),
        start_ns=_ns([e.ts for e in gann_ev], base_us),
        dur_ns=_ns([e.dur for e in gann_ev], 0),
    )
    return Trace(
        path=path, size_bytes=size_bytes, schema="legacy" if legacy else "kineto",
        base_us=base_us, names=tuple(names), threads=tuple(threads),
        device_properties=tuple(decoded.deviceProperties), gpu=gpu, spans=spans,
        runtime=runtime, memory=memory, gpu_annotations=gpu_annotations,
    )


def _stream_from_tid(tid):
    # Legacy traces put the stream only in the GPU lane name: tid "stream 7".
    if isinstance(tid, str) and tid.startswith("stream "):
        tail = tid[7:].split()[0]
        return int(tail) if tail.isdigit() else None
    return tid if isinstance(tid, int) else None

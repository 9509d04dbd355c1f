"""Fast Kineto trace reader: typed JSON decoding in batches, then compact numpy column tables.

Why this shape: a torch.profiler trace of an SD UNet step holds hundreds of thousands of events.
Loading it with ``json.load`` builds a dict per event (and a dict per ``args``), which is where
existing tools spend their time and memory. Here the event array's text is cut at event
boundaries into batches of about a megabyte (trace/slices.py), and ``msgspec`` decodes each
batch once into small typed structs that declare only the fields the analysis reads (everything
else is skipped while parsing); each batch becomes int64 nanosecond columns before the next is
decoded. A big trace's array is cut into one range per core, each decoded by its own process
(trace/workers.py) and merged in file order. Op shape fields stay raw JSON text, interned,
until an op's shapes are actually needed.

Handles ``.json`` and ``.json.gz``; the current schema (``cat`` "kernel", "cpu_op", ...) and the
older one ("Kernel", "Operator", "Runtime", ...); float-microsecond timestamps with nanosecond
digits (kept exactly by subtracting an integer base before scaling to int ns); NVIDIA and AMD
traces; traces without GPU events. Imports neither torch nor diffusers.
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass

import msgspec
import numpy as np

from profiler_kit.trace import values as tv
from profiler_kit.trace import slices, workers
from profiler_kit.trace.columns import _Columns, _Reader
from profiler_kit.trace.events import (ANNOTATION, KERNEL, MEMCPY, MEMSET, MODULE,  # noqa: F401
                                       NN_MODULE_PREFIX, OP, _Event, _TraceFile)   # (re-exported)
from profiler_kit.trace.file import DEFAULT_LIMITS, ReadLimits, TraceError, load_trace_bytes

__all__ = [
    "TraceError", "ReadLimits", "Trace", "GpuActivities", "CpuSpans", "RuntimeCalls", "MemoryEvents",
    "GpuAnnotations", "read_trace", "decode_raw", "compact_raw",
    "KERNEL", "MEMCPY", "MEMSET", "OP", "ANNOTATION", "MODULE",
]


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
    # op args ("Input Dims", "Input type", "Concrete Inputs") as ids into Trace.arg_texts,
    # their raw JSON text, interned (ops repeat shapes); 0 = not recorded
    input_dims: np.ndarray
    input_types: np.ndarray
    concrete_inputs: np.ndarray

    def __len__(self) -> int:
        return len(self.kind)


@dataclass(frozen=True)
class RuntimeCalls:
    """CUDA/HIP runtime and driver API calls (launches, syncs, memcpys) on CPU threads."""
    name_id: np.ndarray
    start_ns: np.ndarray
    dur_ns: np.ndarray
    thread: np.ndarray
    correlation: np.ndarray   # -1 unknown, and for every call read from a capture file
    kernel_name_id: np.ndarray  # int32 into Trace.names: the launched kernel (HIP records it), -1 unknown
    grid: np.ndarray          # int32 (n, 3), 0 unknown
    block: np.ndarray         # int32 (n, 3), 0 unknown

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
    skipped_events: int               # events whose fields had types no Kineto event has
    names: tuple[str, ...]            # interned event names
    threads: tuple[tuple, ...]        # (pid, tid) per thread index
    arg_texts: tuple[bytes, ...]      # interned raw JSON of op args; arg_texts[0] == b""
    device_properties: tuple[dict, ...]
    gpu: GpuActivities
    spans: CpuSpans
    runtime: RuntimeCalls
    memory: MemoryEvents
    gpu_annotations: GpuAnnotations
    # why events were dropped or values read as unknown (trace_values.py): reason -> count
    value_warnings: tuple[tuple[str, int], ...] = ()
    # the second file whose CPU side (ops, scopes, launch calls) was read in: the CUDA-graph
    # capture of a replay trace (vLLM, SGLang and xDiT write capture and replay apart)
    capture_path: str | None = None

    @property
    def has_gpu(self) -> bool:
        return len(self.gpu) > 0


def decode_raw(raw: bytes):
    """Decode an op arg text (Trace.arg_texts); None when the trace did not record it."""
    return msgspec.json.decode(raw) if raw else None


@functools.lru_cache(maxsize=1 << 16)   # arg texts are interned and repeat across kernels
def compact_raw(raw: bytes) -> str:
    """An op arg text as compact one-line JSON ("" when not recorded)."""
    return msgspec.json.encode(msgspec.json.decode(raw)).decode() if raw else ""


_FIRST_TEXT = re.compile(rb"\S")


def _decode(path: str, data) -> tuple[_TraceFile, memoryview]:
    """The trace's top level and the text of its event array (validated as JSON, not yet
    decoded: no object per event exists yet)."""
    first = _FIRST_TEXT.search(data)
    if first is None:
        raise TraceError(f"{path}: file is empty; re-export the trace with "
                         "prof.export_chrome_trace(...) or tensorboard_trace_handler")
    try:
        if data[first.start()] == ord("["):       # bare Chrome-trace array of events
            top, events = _TraceFile(), msgspec.json.decode(data, type=msgspec.Raw)
        else:
            top = msgspec.json.decode(data, type=_TraceFile)
            events = top.traceEvents
    except msgspec.ValidationError as exc:
        raise TraceError(f"{path}: not a Kineto trace ({exc}); pass a trace written by "
                         "torch.profiler") from None
    except msgspec.DecodeError as exc:
        raise TraceError(f"{path}: not valid JSON ({exc}); the trace may be truncated, "
                         "re-export it") from None
    except RecursionError:
        raise TraceError(f"{path}: JSON nested too deeply to be a trace; pass a trace written "
                         "by torch.profiler") from None
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); pass a "
                         "trace written by torch.profiler") from None
    view = memoryview(events).cast("B") if len(events) else memoryview(b"[]")
    if view[:1] != b"[":
        raise TraceError(f"{path}: not a Kineto trace (traceEvents is not an array); pass a "
                         "trace written by torch.profiler")
    return top, view


def _ns(values: np.ndarray, base_us: int) -> np.ndarray:
    # Subtract the integer base before scaling: keeps the nanosecond digits of float-µs stamps.
    return np.rint((values - base_us) * 1000.0).astype(np.int64)


class _BatchDecoder:
    """One typed decode per batch of events; a batch that fails it (another tool's event with an
    odd field type, text that is not UTF-8) is decoded again event by event, and only the bad
    events are left out, counted. The text is parsed once on the usual path: the raw split that
    the fallback needs is made only for a batch that failed."""

    def __init__(self, reader: "_Reader"):
        self.reader = reader
        self.batch = msgspec.json.Decoder(list[_Event])
        self.one = msgspec.json.Decoder(_Event)
        self.raw = msgspec.json.Decoder(list[msgspec.Raw])

    def __call__(self, text: bytes) -> tuple[list[_Event], int]:
        """(decoded events, events in the text). Raises msgspec.DecodeError when the text is
        not JSON (slices.batches then extends the batch)."""
        try:
            batch = self.batch.decode(text)
            return batch, len(batch)
        except (msgspec.ValidationError, UnicodeDecodeError, msgspec.DecodeError):
            raws = self.raw.decode(text)   # not JSON: DecodeError, for the caller
        batch = []
        reader = self.reader
        for r in raws:
            try:
                batch.append(self.one.decode(r))
            except msgspec.ValidationError:
                reader.skipped += 1
            except (UnicodeDecodeError, msgspec.DecodeError):
                # (msgspec reports text that is not UTF-8 as a DecodeError)
                reader.counts[tv.NOT_UTF8] += 1
        return batch, len(raws)


def _too_many_events(path: str, limits: ReadLimits) -> TraceError:
    return TraceError(f"{path}: holds more than {limits.max_events:,} events; if the trace "
                      "is real, raise the limit with --max-events")


def read_range(path: str, events: memoryview, start: int, end: int, limits: ReadLimits,
               reader: "_Reader", n_events: int, cpu_only: bool = False,
               strict: bool = False) -> int:
    """Decode events[start:end] (whole elements of the event array) into ``reader``, batch by
    batch, each batch turned into columns and dropped, so the per-event objects of the whole
    trace never exist at once (peak memory ~ file size). Returns the events read so far.
    strict: a range followed by another (slices.batches)."""
    decode = _BatchDecoder(reader)
    for batch, count in slices.batches(path, events, start, end, decode, strict):
        n_events += count
        if n_events > limits.max_events:
            raise _too_many_events(path, limits)
        reader.add_batch(batch, cpu_only)
    return n_events


_EVENTS_KEY = re.compile(rb'"traceEvents"\s*:\s*\[')


# How far from the end of the text the event array's closing "]" is looked for: the keys after
# it (traceName, deviceProperties in TraceLens' traces, baseTimeNanoseconds) hold a few KB.
_TAIL_BYTES = 1 << 20
_TAIL_CANDIDATES = 64


def _split_top(data) -> tuple[_TraceFile, memoryview] | None:
    """The top level and the event array's text found without parsing the array (a second of
    a gigabyte, on one core, before any worker could start). The array runs from the first
    ``"traceEvents": [`` to the "]" that closes it: of the last "]"s of the text, the earliest
    after which the rest, with the array left empty, decodes as a trace's top level. A "]"
    inside the array never does (the rest closes an event that was never opened), one after
    it may ("deviceProperties": [...] after the events): the earliest is the array's. Were it
    not (the array's "]" further back than the candidates looked at), the array's text would
    end inside an event, which no batch decodes: the ranges fail and the caller parses the
    file whole. None where no candidate decodes."""
    m = _EVENTS_KEY.search(data)
    if m is None:
        return None
    head = bytes(data[:m.end()])
    floor = max(m.end(), len(data) - _TAIL_BYTES)
    found, end = None, len(data)
    for _ in range(_TAIL_CANDIDATES):
        end = data.rfind(b"]", floor, end)
        if end < 0:
            break
        try:
            top = msgspec.json.decode(head + bytes(data[end:]), type=_TraceFile)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
            continue
        if bytes(top.traceEvents).strip() == b"[]":
            found = top, end
    if found is None:
        return None
    top, end = found
    return top, memoryview(data)[m.end() - 1:end + 1].cast("B")


def _read_ranges(path: str, events: memoryview, limits: ReadLimits, count: int,
                 cpu_only: bool) -> list[tuple["_Reader", int]] | None:
    """The event array read as ``count`` ranges, each into its own reader, all but the first
    in worker processes (trace/workers.py); [(reader, events)] in file order, or None where
    that did not work out (a cut inside a string, bad input, a worker that failed): the caller
    then reads the file in one range, which says what is wrong, if anything is."""
    parts = slices.ranges(events, count)
    if len(parts) < 2:
        return None
    end = parts[-1][1]

    def work(lo: int, hi: int) -> tuple[_Reader, int]:
        part = _Reader()
        n = read_range(path, events, lo, hi, limits, part, 0, cpu_only, strict=hi != end)
        part.pack()
        return part, n

    try:
        return workers.map_ranges(work, parts)
    except (workers.WorkerFailed, slices.CutMoved, TraceError):
        return None


def _read_file(path: str, limits: ReadLimits, reader: "_Reader", n_events: int,
               cpu_only: bool = False, processes: int | None = None) -> tuple[int, tuple[dict, ...]]:
    """Decode one file's events into ``reader``; (events read so far, its deviceProperties).
    processes: how many (workers.process_count; None: by the cores and the text's size)."""
    data = load_trace_bytes(path, limits)
    first = n_events
    count = workers.process_count(len(data), processes)
    found = _split_top(data) if count > 1 else None
    parts = _read_ranges(path, found[1], limits, count, cpu_only) if found else None
    if parts is None:
        decoded, events = _decode(path, data)
        start, end = slices.elements(events)
        n_events = read_range(path, events, start, end, limits, reader, n_events, cpu_only)
        del events
    else:
        decoded = found[0]
        for part, n in parts:
            reader.merge(part)
            n_events += n
        if n_events > limits.max_events:
            raise _too_many_events(path, limits)
    del data, parts, found
    if n_events == first:
        raise TraceError(f"{path}: the trace holds no events; was the profiler schedule "
                         "active (did prof.step() run)?")
    return n_events, tuple(decoded.deviceProperties)


def read_trace(path: str | os.PathLike, limits: ReadLimits = DEFAULT_LIMITS,
               capture: str | os.PathLike | None = None, processes: int | None = None) -> Trace:
    """Read a Kineto trace into column tables. Raises TraceError with a one-line reason: for
    unreadable input, for input past ``limits`` and for a file with no event the analysis can
    use. Values no real capture holds are dropped or read as unknown and counted
    (Trace.value_warnings).

    capture: a second trace holding the CUDA/HIP-graph capture of the replays in ``path``: its
    CPU side (ops, shapes, scopes, launch calls) is read in beside the replay's, so the replayed
    kernels can be joined to the launches that recorded them (analysis/graph_join.py); its own
    GPU activity and memory events are not (they are not the replay's). ``limits`` bound the
    two files together. processes: how many processes decode a file (None: one per core for a
    big trace, see trace/workers.py; the result is the same, id for id, whatever the count)."""
    path = os.fspath(path)
    reader = _Reader()
    n_events, device_properties = _read_file(path, limits, reader, 0, processes=processes)
    size_bytes = os.path.getsize(path)
    capture_path = None
    if capture is not None:
        capture_path = os.fspath(capture)
        n_events, capture_props = _read_file(capture_path, limits, reader, n_events, cpu_only=True,
                                             processes=processes)
        device_properties = device_properties or capture_props
    tables = (reader.gpu, reader.spans, reader.runtime, reader.memory, reader.gpu_annotations)
    _drop_outside_window(tables, reader)
    if not any(t.parts for t in tables):
        causes = "; ".join(tv.warning_lines(reader.counts)) or (
            f"{reader.skipped} events of wrong types" if reader.skipped else
            "no kernel, op, runtime, annotation or memory event")
        raise TraceError(f"{path}: no usable event among {n_events:,} ({causes}); pass a trace "
                         "written by torch.profiler")

    base_us = int(math.floor(reader.min_ts)) if math.isfinite(reader.min_ts) else 0
    g, sp, rt, mem, ga = (reader.gpu, reader.spans, reader.runtime, reader.memory,
                          reader.gpu_annotations)
    i8, i32, i64, f64 = np.int8, np.int32, np.int64, np.float64
    gpu = GpuActivities(
        kind=g.get("kind", i8), name_id=g.get("name_id", i32),
        start_ns=_ns(g.get("ts", f64), base_us), dur_ns=_ns(g.get("dur", f64), 0),
        device=g.get("device", i64), stream=g.get("stream", i64),
        correlation=g.get("correlation", i64), external_id=g.get("external_id", i64),
        grid=g.get("grid", i32, 3), block=g.get("block", i32, 3), nbytes=g.get("nbytes", i64))
    spans = CpuSpans(
        kind=sp.get("kind", i8), name_id=sp.get("name_id", i32),
        start_ns=_ns(sp.get("ts", f64), base_us), dur_ns=_ns(sp.get("dur", f64), 0),
        thread=sp.get("thread", i32), external_id=sp.get("external_id", i64),
        input_dims=sp.get("input_dims", i32), input_types=sp.get("input_types", i32),
        concrete_inputs=sp.get("concrete_inputs", i32))
    runtime = RuntimeCalls(
        name_id=rt.get("name_id", i32), start_ns=_ns(rt.get("ts", f64), base_us),
        dur_ns=_ns(rt.get("dur", f64), 0), thread=rt.get("thread", i32),
        correlation=rt.get("correlation", i64), kernel_name_id=rt.get("kernel_name_id", i32),
        grid=rt.get("grid", i32, 3), block=rt.get("block", i32, 3))
    memory = MemoryEvents(
        ts_ns=_ns(mem.get("ts", f64), base_us), thread=mem.get("thread", i32),
        device_id=mem.get("device_id", i64), nbytes=mem.get("nbytes", i64),
        total_allocated=mem.get("total_allocated", i64),
        total_reserved=mem.get("total_reserved", i64), addr=mem.get("addr", np.uint64))
    gpu_annotations = GpuAnnotations(
        name_id=ga.get("name_id", i32), start_ns=_ns(ga.get("ts", f64), base_us),
        dur_ns=_ns(ga.get("dur", f64), 0))
    return Trace(
        path=path, size_bytes=size_bytes, schema="legacy" if reader.legacy else "kineto",
        base_us=base_us, skipped_events=reader.skipped, names=tuple(reader.names), threads=tuple(reader.threads),
        arg_texts=tuple(reader.arg_texts), device_properties=device_properties,
        gpu=gpu, spans=spans, runtime=runtime, memory=memory, gpu_annotations=gpu_annotations,
        value_warnings=tuple(reader.counts.most_common()), capture_path=capture_path)


def _drop_outside_window(tables: tuple[_Columns, ...], reader: _Reader) -> None:
    """Drop the events more than half a day from the median stamp, when the trace spans more
    than MAX_WINDOW_US (one event stamped 0 among 2026 stamps); sets reader.min_ts anew."""
    for t in tables:
        t.join()
    ts = [t.parts["ts"][0] if t.parts else np.empty(0) for t in tables]
    masks = tv.window_keep(ts, reader.counts)
    if masks is None:
        return
    for t, keep in zip(tables, masks):
        if t.parts:
            t.parts = {k: [v[0][keep]] for k, v in t.parts.items()}
            if not keep.any():
                t.parts = {}
    kept = [t.parts["ts"][0] for t in tables if t.parts]
    reader.min_ts = min((float(c.min()) for c in kept), default=math.inf)



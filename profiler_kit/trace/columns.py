"""Decoded events turned into column tables, batch by batch (``_Reader``), and two readers of
consecutive ranges of a trace merged into one (what the worker processes of trace/workers.py
send back), interning names, threads and op arg texts as one reader would have.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from profiler_kit.trace import values as tv
from profiler_kit.trace.events import (_GPU_ANNOTATION_CATS, _GPU_CATS, _KNOWN_CATS, _LEGACY_CATS,
                                       _RUNTIME_CATS, _SPAN_CATS, MODULE, NN_MODULE_PREFIX, _Args,
                                       _Event)


class _Columns:
    """Column arrays of one table, appended batch by batch and joined at the end."""

    def __init__(self):
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, **columns: np.ndarray) -> None:
        for key, values in columns.items():
            self.parts.setdefault(key, []).append(values)

    def join(self) -> None:
        """One array per column (what window masks apply to)."""
        self.parts = {k: [np.concatenate(v)] for k, v in self.parts.items()}

    def get(self, key: str, dtype, width: int = 0) -> np.ndarray:
        parts = self.parts.get(key)
        if not parts:
            return np.empty((0, width) if width else 0, dtype=dtype)
        # one part (after join): that array itself, not a copy of it (a copy of every column
        # was 0.1 s on a 1 GB trace); the reader is dropped once the trace is made
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


class _Reader:
    """Turns batches of decoded events into columns; interns names, threads and op args."""

    def __init__(self):
        self.names: dict[str, int] = {}
        self.threads: dict[tuple, int] = {}
        self.arg_texts: dict[bytes, int] = {b"": 0}
        self.arg_triples: dict[bytes, tuple[int, int, int]] = {}
        self.gpu, self.spans, self.runtime = _Columns(), _Columns(), _Columns()
        self.memory, self.gpu_annotations = _Columns(), _Columns()
        self.legacy = False
        self.skipped = 0
        self.counts: Counter = Counter()    # trace_values reasons
        self.min_ts = math.inf

    @property
    def tables(self) -> tuple["_Columns", ...]:
        return self.gpu, self.spans, self.runtime, self.memory, self.gpu_annotations

    def pack(self) -> None:
        """Ready to be sent to another process: one array per column, no lookup cache."""
        for t in self.tables:
            t.join()
        self.arg_triples = {}

    def merge(self, other: "_Reader") -> None:
        """Append the events of ``other``, a reader of the text after this one's: its ids into
        names, threads and op arg texts become this reader's (interning them in its order, as
        reading the two ranges in one reader would have)."""
        names, threads, texts = self.names, self.threads, self.arg_texts
        name_map = np.asarray([names.setdefault(n, len(names)) for n in other.names], dtype=np.int32)
        thread_map = np.asarray([threads.setdefault(t, len(threads)) for t in other.threads],
                                dtype=np.int32)
        text_map = np.asarray([texts.setdefault(t, len(texts)) for t in other.arg_texts],
                              dtype=np.int32)
        maps = {"name_id": name_map, "thread": thread_map, "input_dims": text_map,
                "input_types": text_map, "concrete_inputs": text_map}
        for mine, theirs in zip(self.tables, other.tables):
            for key, parts in theirs.parts.items():
                for part in parts:
                    if key in maps:
                        part = maps[key][part]
                    elif key == "kernel_name_id":       # -1: not recorded
                        part = np.where(part >= 0, name_map[np.maximum(part, 0)], part)
                    mine.parts.setdefault(key, []).append(part)
        self.counts.update(other.counts)
        self.skipped += other.skipped
        self.legacy = self.legacy or other.legacy
        self.min_ts = min(self.min_ts, other.min_ts)

    def _int_or(self, values, default: int = -1) -> np.ndarray:
        return tv.int64_or(values, self.counts, default)

    def _external_ids(self, args: list[_Args]) -> np.ndarray:
        # "External id" in current traces, "external id" in legacy ones.
        return self._int_or([a.external_id if a.external_id is not None else a.legacy_external_id
                             for a in args])

    def _name_ids(self, evs) -> np.ndarray:
        names = self.names
        return np.asarray([names.setdefault(e.name, len(names)) for e in evs], dtype=np.int32)

    def _thread_ids(self, evs) -> np.ndarray:
        threads = self.threads
        return np.asarray([threads.setdefault((e.pid, e.tid), len(threads)) for e in evs],
                          dtype=np.int32)

    def _op_arg_ids(self, args) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ids of (Input Dims, Input type, Concrete Inputs) per op. The three raw texts of an
        op are joined into one key by a single C call and looked up once: ops repeat their
        argument triples (every UNet step, every layer of a size), so most ops cost one join
        and one dict hit instead of three copies and three hits."""
        triples, intern = self.arg_triples, self._intern
        out = []
        for a in args:
            dims = a.input_dims if len(a.input_dims) else a.legacy_input_dims
            key = b"\x00".join((dims, a.input_types, a.concrete_inputs))
            ids = triples.get(key)
            if ids is None:
                ids = triples[key] = (intern(dims), intern(a.input_types),
                                      intern(a.concrete_inputs))
            out.append(ids)
        if not out:
            empty = np.empty(0, dtype=np.int32)
            return empty, empty, empty
        table = np.asarray(out, dtype=np.int32)
        return table[:, 0], table[:, 1], table[:, 2]

    def _intern(self, raw) -> int:
        if not len(raw):
            return 0
        texts = self.arg_texts
        return texts.setdefault(bytes(raw), len(texts))

    def _times(self, evs) -> tuple[np.ndarray, np.ndarray]:
        ts = np.asarray([e.ts for e in evs], dtype=np.float64)
        if len(ts):
            self.min_ts = min(self.min_ts, float(ts.min()))
        return ts, np.asarray([e.dur for e in evs], dtype=np.float64)

    def add_batch(self, events: list[_Event], cpu_only: bool = False) -> None:
        """cpu_only: a capture file's batch: its ops, scopes and launch calls are kept, its GPU
        activity (warm-up work, not the replay being analysed), memory and GPU annotations not;
        its launch calls keep no correlation id, so no activity of the replay links to them."""
        gpu_ev, span_ev, rt_ev, mem_ev, gann_ev = [], [], [], [], []
        counts = self.counts
        known, time_ok = _KNOWN_CATS, tv.event_time_ok
        max_ts, max_dur = tv.MAX_TS_US, tv.MAX_DUR_US
        for e in events:
            cat = e.cat
            if e.ph == "X":
                if cat not in known:
                    if cat == "cuda_profiler_range":
                        counts[tv.PROFILER_RANGE] += 1
                    continue
                # the usual event inline; time_ok counts the reason of one that fails
                if not (0.0 <= e.ts <= max_ts and 0.0 <= e.dur <= max_dur) and not time_ok(
                        e.ts, e.dur, counts):
                    continue
                if cat in _GPU_CATS:
                    gpu_ev.append(e)
                elif cat in _SPAN_CATS:
                    if _SPAN_CATS[cat] != MODULE or e.name.startswith(NN_MODULE_PREFIX):
                        span_ev.append(e)
                elif cat in _RUNTIME_CATS:
                    rt_ev.append(e)
                elif cat in _GPU_ANNOTATION_CATS:
                    gann_ev.append(e)
                else:
                    continue
                if cat in _LEGACY_CATS:
                    self.legacy = True
            elif e.ph == "i" and e.name == "[memory]" and e.args is not None:
                a = e.args
                if (tv.event_time_ok(e.ts, 0.0, counts)
                        and tv.memory_ok(a.mem_bytes, a.total_allocated, a.total_reserved, counts)):
                    mem_ev.append(e)
        empty = _Args()
        if cpu_only:
            gpu_ev, mem_ev, gann_ev = [], [], []
        if gpu_ev:
            args = [e.args or empty for e in gpu_ev]
            ts, dur = self._times(gpu_ev)
            self.gpu.add(
                kind=np.asarray([_GPU_CATS[e.cat] for e in gpu_ev], dtype=np.int8),
                name_id=self._name_ids(gpu_ev), ts=ts, dur=dur,
                device=self._int_or([a.device for a in args]),
                stream=self._int_or([a.stream if a.stream is not None else _stream_from_tid(e.tid)
                                for a, e in zip(args, gpu_ev)]),
                correlation=self._int_or([a.correlation for a in args]),
                external_id=self._external_ids(args),
                grid=tv.dim3([a.grid for a in args], counts),
                block=tv.dim3([a.block for a in args], counts),
                nbytes=self._int_or([a.nbytes for a in args]))
        if span_ev:
            args = [e.args or empty for e in span_ev]
            ts, dur = self._times(span_ev)
            dims, types, concrete = self._op_arg_ids(args)
            self.spans.add(
                kind=np.asarray([_SPAN_CATS[e.cat] for e in span_ev], dtype=np.int8),
                name_id=self._name_ids(span_ev), ts=ts, dur=dur,
                thread=self._thread_ids(span_ev),
                # a capture file's External ids are another session's: they must not match
                # the replay's activities
                external_id=(np.full(len(span_ev), -1, dtype=np.int64) if cpu_only
                             else self._external_ids(args)),
                input_dims=dims, input_types=types, concrete_inputs=concrete)
        if rt_ev:
            ts, dur = self._times(rt_ev)
            args = [e.args or empty for e in rt_ev]
            names = self.names
            self.runtime.add(
                name_id=self._name_ids(rt_ev), ts=ts, dur=dur, thread=self._thread_ids(rt_ev),
                correlation=(np.full(len(rt_ev), -1, dtype=np.int64) if cpu_only else
                             self._int_or([a.correlation for a in args])),
                kernel_name_id=np.asarray(
                    [names.setdefault(a.kernel, len(names)) if type(a.kernel) is str and a.kernel
                     else -1 for a in args], dtype=np.int32),
                grid=tv.dim3([a.grid for a in args], self.counts),
                block=tv.dim3([a.block for a in args], self.counts))
        if mem_ev:
            args = [e.args for e in mem_ev]
            ts, _ = self._times(mem_ev)
            self.memory.add(
                ts=ts, thread=self._thread_ids(mem_ev),
                device_id=self._int_or([a.device_id for a in args]),
                nbytes=self._int_or([a.mem_bytes for a in args], 0),
                total_allocated=self._int_or([a.total_allocated for a in args]),
                total_reserved=self._int_or([a.total_reserved for a in args]),
                addr=np.asarray([a.addr if type(a.addr) is int and 0 <= a.addr < 2**64 else 0
                                 for a in args], dtype=np.uint64))
        if gann_ev:
            ts, dur = self._times(gann_ev)
            self.gpu_annotations.add(name_id=self._name_ids(gann_ev), ts=ts, dur=dur)


def _stream_from_tid(tid):
    # Legacy traces put the stream only in the GPU lane name: tid "stream 7".
    if isinstance(tid, str) and tid.startswith("stream "):
        tail = tid[7:].split()[0]
        return int(tail) if tail.isascii() and tail.isdigit() else None
    return tid if isinstance(tid, int) else None

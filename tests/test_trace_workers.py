"""Reading a trace in several processes (trace/workers.py) gives the trace one process reads, id
for id: on real traces of every kind, with the event array cut into many ranges (batches made
small so that small committed traces still cut), and on traces where a cut falls inside a
string or the array is not where the text first suggests."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from profiler_kit.trace import TraceError, kineto, read_trace, slices, workers

DATA = Path(__file__).parent / "data"
TRACES = [
    DATA / "third_party" / "tracelens" / "Falconsai_nsfw_image_detection__1016002.json.gz",
    DATA / "third_party" / "hta" / "mi250_minitoy_train_ROCm6_2_kineto.json.gz",
    DATA / "third_party" / "hta" / "benchmark_result_924719_1679055439_trace.json.gz",
    DATA / "sd" / "trace_vanilla.json.gz",
]


def _same(a, b, where="trace"):
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if dataclasses.is_dataclass(x):
            _same(x, y, f"{where}.{f.name}")
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), f"{where}.{f.name}"
        else:
            assert x == y, f"{where}.{f.name}"


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(slices, "_BATCH_BYTES", 20_000)


def _spy_whole_parses(monkeypatch) -> list:
    calls = []
    whole = kineto._decode
    monkeypatch.setattr(kineto, "_decode", lambda path, data: (calls.append(path), whole(path, data))[1])
    return calls


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.name[:28])
def test_ranges_in_processes_read_the_same_trace(path, small_batches, monkeypatch):
    one = read_trace(path, processes=1)
    whole_parses = _spy_whole_parses(monkeypatch)
    for count in (2, 3, 7):
        _same(one, read_trace(path, processes=count))
    assert whole_parses == []        # the ranges were used, not the one-process fallback


def test_device_properties_after_the_events_are_found(small_batches, monkeypatch):
    # TraceLens' traces put deviceProperties (a list) after traceEvents: the last "]" of the
    # text is not the event array's
    path = TRACES[0]
    text = gzip.decompress(path.read_bytes())
    assert text.rindex(b'"deviceProperties"') > text.index(b'"traceEvents"')
    whole_parses = _spy_whole_parses(monkeypatch)
    t = read_trace(path, processes=2)
    assert whole_parses == []
    assert t.device_properties and t.device_properties[0]["name"] == "NVIDIA H100 80GB HBM3"


def test_a_cut_inside_a_string_falls_back_to_one_range(tmp_path, small_batches, monkeypatch):
    doc = json.load(gzip.open(TRACES[0]))
    for e in doc["traceEvents"]:         # every name holds what looks like an event boundary
        if "name" in e:
            e["name"] = e["name"] + ' }, {"x": 1} , {'
    path = tmp_path / "names_with_boundaries.json"
    path.write_text(json.dumps(doc))
    one = read_trace(path, processes=1)
    whole_parses = _spy_whole_parses(monkeypatch)
    _same(one, read_trace(path, processes=3))
    assert whole_parses == [str(path)]   # the ranges failed at a cut in a name; read whole
    assert one.names[one.gpu.name_id[0]].endswith(' }, {"x": 1} , {')


def test_bad_input_says_the_same_in_processes(tmp_path, small_batches):
    text = gzip.decompress(TRACES[0].read_bytes())
    cut = text[:len(text) * 2 // 3]       # truncated mid-array
    path = tmp_path / "truncated.json"
    path.write_bytes(cut)
    with pytest.raises(TraceError) as one:
        read_trace(path, processes=1)
    with pytest.raises(TraceError) as three:
        read_trace(path, processes=3)
    assert str(one.value) == str(three.value)


def test_a_failing_worker_falls_back_to_one_range(small_batches, monkeypatch):
    def failing(work, ranges):
        raise workers.WorkerFailed("worker 1 ended without a result (exit code -9)")
    one = read_trace(TRACES[1], processes=1)
    monkeypatch.setattr(workers, "map_ranges", failing)
    _same(one, read_trace(TRACES[1], processes=3))


def test_process_count_by_size_and_cores(monkeypatch):
    monkeypatch.setattr(workers, "cores", lambda: 2)
    monkeypatch.setattr(workers, "fork_is_safe", lambda: True)
    assert workers.process_count(10 << 20) == 1              # small: one process
    assert workers.process_count(workers.MIN_RANGE_BYTES * 2) == 2
    assert workers.process_count(1 << 30) == 2                # never more than the cores
    monkeypatch.setattr(workers, "cores", lambda: 1)
    assert workers.process_count(1 << 30) == 1                # one core: no workers
    assert workers.process_count(1 << 20, requested=3) == 3


def test_a_process_with_torch_reads_in_one_process(monkeypatch):
    """The capture process analyses its own traces with CUDA and OpenMP threads running: no fork."""
    import sys
    monkeypatch.setattr(workers, "cores", lambda: 4)
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch") or object())
    assert workers.process_count(1 << 30) == 1
    assert workers.process_count(1 << 30, requested=2) == 2      # an explicit count is obeyed

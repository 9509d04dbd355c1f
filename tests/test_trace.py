"""The Kineto reader on real third-party traces (tests/data/third_party/, MIT licensed):

- tracelens/: AMD-AGI/TraceLens tests/traces/h100/ (H100, shapes, stacks, modules, [memory])
- hta/: facebookresearch/HolisticTraceAnalysis tests/data/ (A100 alexnet with syncs,
  cupti_profiler counters, a Triton kernel, AMD MI250 ROCm 6.2, a CPU-only trace)

Expected figures are counted here straight from the JSON with the standard library, independently
of the reader.
"""

import gzip
import json
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from profiler_kit.trace import (ANNOTATION, KERNEL, MEMCPY, MEMSET, MODULE, OP, TraceError,
                                read_trace)

DATA = Path(__file__).parent / "data" / "third_party"
FALCON = DATA / "tracelens" / "Falconsai_nsfw_image_detection__1016002.json.gz"
BERT = DATA / "tracelens" / "gaunernst_bert-small-uncased__1016001.json.gz"
ALEXNET = DATA / "hta" / "benchmark_result_2869224_1695835535_trace.json.gz"
CUPTI = DATA / "hta" / "benchmark_result_924719_1679055439_trace.json.gz"
TRITON = DATA / "hta" / "triton_example.json.gz"
MI250 = DATA / "hta" / "mi250_minitoy_train_ROCm6_2_kineto.json.gz"
CPU_ONLY = DATA / "hta" / "rank-34.Jul_15_10_52_41.1074.pt.trace.json.gz"
ALL = [FALCON, BERT, ALEXNET, CUPTI, TRITON, MI250, CPU_ONLY]


def _events(path):
    return json.load(gzip.open(path))["traceEvents"]


def test_reader_and_analysis_import_neither_torch_nor_diffusers():
    code = ("import sys, profiler_kit.analysis, profiler_kit.analyze\n"
            "from profiler_kit.analysis import analyze_trace\n"
            f"analyze_trace({str(FALCON)!r})\n"
            "print(sorted(m for m in ('torch', 'diffusers', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent.parent)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name[:24])
def test_table_sizes_match_the_json(path):
    cats = Counter(e.get("cat") for e in _events(path) if e.get("ph") == "X")
    modules = sum(1 for e in _events(path) if e.get("cat") == "python_function"
                  and e["name"].startswith("nn.Module: "))
    memory = sum(1 for e in _events(path) if e.get("ph") == "i" and e["name"] == "[memory]")
    t = read_trace(path)
    assert (t.gpu.kind == KERNEL).sum() == cats["kernel"]
    assert (t.gpu.kind == MEMCPY).sum() == cats["gpu_memcpy"]
    assert (t.gpu.kind == MEMSET).sum() == cats["gpu_memset"]
    assert len(t.runtime) == cats["cuda_runtime"] + cats["cuda_driver"]
    assert (t.spans.kind == OP).sum() == cats["cpu_op"]
    assert (t.spans.kind == ANNOTATION).sum() == cats["user_annotation"]
    assert (t.spans.kind == MODULE).sum() == modules
    assert len(t.memory) == memory
    assert t.schema == "kineto"
    assert t.skipped_events == 0


def test_timestamps_keep_their_nanosecond_digits():
    gpu = [e for e in _events(FALCON) if e.get("cat") in ("kernel", "gpu_memset")]
    t = read_trace(FALCON)
    assert len(gpu) == len(t.gpu)
    for e, start_ns, dur_ns in zip(gpu, t.gpu.start_ns.tolist(), t.gpu.dur_ns.tolist()):
        # Decimal of the JSON number's repr: what the file says, to the nanosecond
        assert t.base_us * 1000 + start_ns == int(Decimal(repr(e["ts"])) * 1000)
        assert dur_ns == int(Decimal(repr(e["dur"])) * 1000)
    assert (t.gpu.start_ns % 1000 != 0).any()        # sub-µs digits really are present


def test_plain_json_and_bare_event_array_read_like_gzip(tmp_path):
    doc = json.load(gzip.open(BERT))
    plain = tmp_path / "bert.json"
    plain.write_text(json.dumps(doc))
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(doc["traceEvents"]))
    ref = read_trace(BERT)
    for other in (read_trace(plain), read_trace(bare)):
        assert other.names == ref.names
        np.testing.assert_array_equal(other.gpu.start_ns, ref.gpu.start_ns)
        np.testing.assert_array_equal(other.spans.dur_ns, ref.spans.dur_ns)
        np.testing.assert_array_equal(other.memory.total_allocated, ref.memory.total_allocated)


def test_amd_trace_links_hip_launches_to_ops():
    t = read_trace(MI250)
    hip = {t.names[i] for i in t.runtime.name_id}
    assert "hipLaunchKernel" in hip and "hipExtModuleLaunchKernel" in hip
    assert t.device_properties[0]["name"] == "AMD Radeon Graphics"
    from profiler_kit.analysis.kernels import build_kernel_table
    table = build_kernel_table(t)
    assert (table.op_node >= 0).all()            # every kernel and memcpy found its aten op
    cijk = [k for k in range(len(table)) if table.name(k).startswith("Cijk_")]
    assert cijk and {table.span_name(int(table.op_node[k])) for k in cijk} <= {
        "aten::addmm", "aten::mm"}


def test_triton_kernel_launched_by_cu_launch_kernel_finds_its_op():
    from profiler_kit.analysis.kernels import build_kernel_table
    table = build_kernel_table(read_trace(TRITON))
    assert len(table) == 1
    assert table.span_name(int(table.op_node[0])) == "triton_poi_fused_add_cos_sin_0"


def test_cpu_only_trace_reads_with_empty_gpu_tables():
    t = read_trace(CPU_ONLY)
    assert not t.has_gpu
    assert len(t.spans) > 0


def _write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("name,data,says", [
    ("empty.json", b"", "empty"),
    ("cut.json", b'{"traceEvents": [{"ph": "X", "cat": "kernel"', "not valid JSON"),
    ("cut.json.gz", gzip.compress(b'{"traceEvents": []}' * 100)[:40], "truncated gzip"),
    ("noevents.json", b'{"schemaVersion": 1}', "no events"),
    ("wrong.json", b'{"traceEvents": 5}', "not a Kineto trace"),
])
def test_unreadable_input_says_what_is_wrong(tmp_path, name, data, says):
    with pytest.raises(TraceError, match=says):
        read_trace(_write(tmp_path, name, data))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(TraceError, match="no such file"):
        read_trace(tmp_path / "nope.json")
    with pytest.raises(TraceError, match="directory"):
        read_trace(tmp_path)


def test_event_with_odd_field_types_is_skipped_and_counted(tmp_path):
    doc = json.load(gzip.open(BERT))
    doc["traceEvents"][0]["ts"] = "not a number"
    p = tmp_path / "odd.json"
    p.write_text(json.dumps(doc))
    t = read_trace(p)
    assert t.skipped_events == 1
    assert len(t.gpu) == len(read_trace(BERT).gpu)

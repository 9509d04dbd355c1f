"""``python -m profiler_kit.analyze`` end to end, in a subprocess as a user runs it.

Traces: AMD-AGI/TraceLens tests/traces/h100/ (MIT, tests/data/third_party/tracelens/LICENSE).
"""

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from profiler_kit.analysis import KERNEL_CSV_COLUMNS

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data" / "third_party" / "tracelens"
FALCON = DATA / "Falconsai_nsfw_image_detection__1016002.json.gz"
BERT = DATA / "gaunernst_bert-small-uncased__1016001.json.gz"

# docs/data-contracts.md: the keys analysis.json must carry
CONTRACT_KEYS = [
    "schema_version", "source.path", "source.size_bytes", "source.device_names",
    "source.device_properties", "source.schema", "source.has_gpu", "gpu_spec.key",
    "gpu_spec.matched_from", "kernels.count", "kernels.total_us", "kernels.memcpy_count",
    "kernels.memset_count", "timeline.window_us", "timeline.busy_us", "timeline.idle_us",
    "timeline.idle_breakdown_us.host_launch", "timeline.idle_breakdown_us.sync",
    "timeline.idle_breakdown_us.other", "timeline.steps", "bound_us.compute", "bound_us.memory",
    "bound_us.latency", "bound_us.unknown", "categories_us.attention", "categories_us.gemm",
    "categories_us.conv", "categories_us.layout", "categories_us.norm", "categories_us.softmax",
    "categories_us.elementwise", "categories_us.copy", "categories_us.other", "blocks_us",
    "attention.total_us", "attention.backends.vanilla", "attention.backends.flash",
    "attention.backends.cutlass_fmha", "attention.backends.cudnn", "attention.backends.xformers",
    "attention.backends.triton", "attention.backends.math", "attention.fallback",
    "attention.mixed", "attention.calls", "flops_estimate", "hbm_bytes_estimate",
    "roofline_floor_us", "memory.peak_allocated_bytes", "memory.peak_reserved_bytes",
    "memory.timeline.ts_us", "memory.timeline.allocated_bytes", "memory.live_at_peak",
    "top_kernels", "roofline_points", "warnings",
]
CALL_KEYS = {"scope", "kind", "level", "q_tokens", "kv_tokens", "heads", "head_dim", "backend",
             "kernels", "time_us", "flops_estimate", "hbm_bytes_estimate"}
CSV_CONTRACT = ["name", "category", "stream", "start_us", "duration_us", "grid", "block", "op",
                "op_shapes", "op_dtypes", "scope", "flops_estimate", "hbm_bytes_estimate",
                "bound"]


def _run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "profiler_kit.analyze", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def _get(d, dotted):
    for part in dotted.split("."):
        d = d[part]
    return d


def test_one_trace_writes_analysis_json_and_kernels_csv(tmp_path):
    out = _run(FALCON, "--out", tmp_path)
    assert out.returncode == 0, out.stderr
    d = json.loads((tmp_path / "analysis.json").read_text())
    for key in CONTRACT_KEYS:
        _get(d, key)
    assert set(d["attention"]["calls"][0]) >= CALL_KEYS
    with open(tmp_path / "kernels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(KERNEL_CSV_COLUMNS)
    assert list(KERNEL_CSV_COLUMNS[:len(CSV_CONTRACT)]) == CSV_CONTRACT
    gpu_events = sum(1 for e in json.load(gzip.open(FALCON))["traceEvents"]
                     if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset"))
    assert len(rows) == gpu_events
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "analysis.json", "kernels.csv", "report.html"]
    assert d["label"] == "Falconsai_nsfw_image_detection__1016002"
    assert "Falconsai_nsfw_image_detection__1016002" in (tmp_path / "report.html").read_text()


def test_two_traces_write_a_comparison(tmp_path):
    out = _run(FALCON, BERT, "--out", tmp_path, "--label", "vit", "--label", "bert",
               "--gpu", "h100")
    assert out.returncode == 0, out.stderr
    cmp_ = json.loads((tmp_path / "comparison.json").read_text())
    assert (cmp_["a"], cmp_["b"]) == ("vit", "bert")
    for sub in ("a", "b"):
        d = json.loads((tmp_path / sub / "analysis.json").read_text())
        assert d["gpu_spec"]["key"] == "h100-sxm" and d["gpu_spec"]["matched_from"] == "--gpu"
    assert json.loads((tmp_path / "b" / "analysis.json").read_text())["label"] == "bert"
    assert (tmp_path / "report.html").stat().st_size > 0


def _bad(tmp_path, *args):
    out = _run(*args, "--out", tmp_path / "out")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr            # one line, never a traceback
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    return lines[0]


def test_bad_inputs_exit_2_with_one_line(tmp_path):
    truncated = tmp_path / "cut.json.gz"
    truncated.write_bytes(FALCON.read_bytes()[:5000])
    assert "truncated gzip" in _bad(tmp_path, truncated)
    not_json = tmp_path / "notes.json"
    not_json.write_text("hello")
    assert "not valid JSON" in _bad(tmp_path, not_json)
    assert "no such file" in _bad(tmp_path, tmp_path / "missing.json")
    assert "known:" in _bad(tmp_path, FALCON, "--gpu", "no-such-gpu")
    assert "--label" in _bad(tmp_path, FALCON, "--label", "a", "--label", "b")
    assert "one trace, or two" in _bad(tmp_path, FALCON, FALCON, FALCON)
    assert "--help" in _bad(tmp_path, FALCON, "--frobnicate")


def test_unwritable_out_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = _run(FALCON, "--out", blocker / "sub")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("existing", ["analysis.json", "kernels.csv"])
def test_outputs_are_replaced_whole(tmp_path, existing):
    """A rerun replaces the old file by rename: no temp files stay behind."""
    (tmp_path / existing).write_text("old")
    assert _run(FALCON, "--out", tmp_path, "--no-report").returncode == 0
    assert (tmp_path / existing).read_text() != "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis.json", "kernels.csv"]

"""No trace shape breaks the analyzer (issue 21, must-have 4): GPU events only, counters only,
several GPUs in one trace (one analysis per device, never merged), a pipeline trace with text
encoders, denoiser and VAE (time per model).

The GPU-only and two-GPU traces are made here from HTA's real MI250 trace (MIT,
tests/data/third_party/hta): the first with every CPU event removed (what a GPU-only capture such
as the MI210 trace of the issue holds), the second with its kernels repeated on a second device.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from profiler_kit.analysis import TraceError, analyze_devices, analyze_trace
from profiler_kit.analyze import main

DATA = Path(__file__).parent / "data" / "third_party"
MI250 = DATA / "hta" / "mi250_minitoy_train_ROCm6_2_kineto.json.gz"
CUPTI = DATA / "hta" / "benchmark_result_924719_1679055439_trace.json.gz"
SAGE = DATA / "tracelens" / "2026" / "xdit_flux1_aiter_sage_mi300x_capture_trace.json.gz"
_GPU_CATS = {"kernel", "gpu_memcpy", "gpu_memset"}


def _mi250() -> dict:
    return json.loads(gzip.decompress(MI250.read_bytes()))


@pytest.fixture
def gpu_only(tmp_path) -> Path:
    trace = _mi250()
    trace["traceEvents"] = [e for e in trace["traceEvents"] if e.get("cat") in _GPU_CATS]
    path = tmp_path / "gpu_only.json"
    path.write_text(json.dumps(trace))
    return path


@pytest.fixture
def two_gpus(tmp_path) -> Path:
    trace = _mi250()
    gpu = [e for e in trace["traceEvents"] if e.get("cat") in _GPU_CATS]
    device = {e["args"]["device"] for e in gpu}
    assert len(device) == 1
    other = next(iter(device)) + 1
    trace["traceEvents"] += [dict(e, pid=other, args=dict(e["args"], device=other)) for e in gpu]
    path = tmp_path / "two_gpus.json"
    path.write_text(json.dumps(trace))
    return path


def test_gpu_events_only_are_analysed_by_kernel_name(gpu_only, tmp_path, capsys):
    full = analyze_trace(MI250).record
    rec = analyze_trace(gpu_only).record
    assert rec.kernels.count == full.kernels.count == 14
    assert rec.kernels.total_us == pytest.approx(full.kernels.total_us)
    assert rec.timeline.busy_us == pytest.approx(full.timeline.busy_us)
    # without ops the multi_tensor_apply kernel is still the optimizer, by its name
    assert rec.categories_us["optimizer"] == pytest.approx(full.categories_us["optimizer"])
    assert any("no launching aten op" in w for w in rec.warnings)
    assert main([str(gpu_only), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "report.html").is_file()


def test_counters_only_trace_says_its_counters_are_not_read():
    rec = analyze_trace(CUPTI).record
    [line] = [w for w in rec.warnings if "cuda_profiler_range" in w]
    assert line.startswith("skipped 77 events") and "not read" in line


def test_two_gpus_get_one_analysis_each_never_merged(two_gpus, tmp_path, capsys):
    single = analyze_trace(MI250).record
    per_device = analyze_devices(two_gpus)
    assert len(per_device) == 2
    for a in per_device:
        assert a.record.kernels.count == single.kernels.count
        assert a.record.kernels.total_us == pytest.approx(single.kernels.total_us)
        assert a.record.timeline.busy_us == pytest.approx(single.timeline.busy_us)
    assert {a.label.rsplit(":", 1)[-1] for a in per_device} == {"device2", "device3"}
    # the Python call without a device: the busiest one, and it says there are others
    default = analyze_trace(two_gpus).record
    assert default.kernels.count == single.kernels.count
    assert any("devices 2, 3" in w for w in default.warnings)
    with pytest.raises(TraceError, match="no GPU activity on device 7"):
        analyze_trace(two_gpus, device=7)
    # the command writes device2/ and device3/ (the MI250 trace ran on device 2), each a complete analysis with its report
    out = tmp_path / "out"
    assert main([str(two_gpus), "--out", str(out)]) == 0
    for d in ("device2", "device3"):
        assert {p.name for p in (out / d).iterdir()} == {"analysis.json", "kernels.csv", "report.html"}
    printed = capsys.readouterr().out
    assert "(device2): 14 kernels" in printed and "(device3): 14 kernels" in printed
    # a later one-GPU analysis into the same folder leaves no stale device folder behind
    assert main([str(MI250), "--out", str(out), "--no-report"]) == 0
    assert not (out / "device2").exists() and (out / "analysis.json").is_file()


def test_pipeline_trace_time_per_model():
    """xDiT Flux.1: CLIP and T5 text encoders, the compiled transformer, the VAE decoder."""
    rec = analyze_trace(SAGE).record
    models = rec.models_us
    assert list(models)[:4] == ["OptimizedModule_0", "T5EncoderModel_0", "Decoder_0",
                                "CLIPTextModel_0"]
    assert sum(models.values()) == pytest.approx(rec.kernels.total_us + rec.kernels.memcpy_us
                                                 + rec.kernels.memset_us)
    # measured: transformer 59.4 %, T5 32.0 %, VAE decoder 6.8 %, CLIP 1.8 % of kernel time
    assert models["T5EncoderModel_0"] / rec.kernels.total_us == pytest.approx(0.320, abs=0.002)
    # blocks under their model: the VAE's up blocks are the decoder's, not the text encoder's
    blocks = rec.blocks_us
    assert {"Decoder_0/UpDecoderBlock2D_0", "Decoder_0/UNetMidBlock2D_0", "T5EncoderModel_0/T5Stack_0",
            "CLIPTextModel_0/CLIPTextTransformer_0"} <= set(blocks)
    assert sum(sum(v.values()) for k, v in blocks.items() if k.startswith("Decoder_0/")) == \
        pytest.approx(models["Decoder_0"])

"""Calibrated roofs on this CPU: the benchmarks' arithmetic under a fake timer (no GPU here),
shrinking on out-of-memory, the per-card cache, the record and its reader, and the analysis and
report of a real committed H200 trace judged against hand-written measured roofs
(tests/data/roofs/README.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest
import torch

from profiler_kit import cache_folder, records
from profiler_kit.capture import calibrate, roof_cache
from profiler_kit.records import RecordError, read_roof_calibration, write_record
from profiler_kit.hardware.specs import load_spec

DATA = Path(__file__).parent / "data"
MEASURED = DATA / "roofs" / "h200_measured.json"     # measured on the lent H200 (its README)
CAL = read_roof_calibration(MEASURED)
COPY_BPS = CAL.memory_roof.measured_per_s                      # 4.26e12 of the datasheet 4.8e12
FP16_TENSOR = CAL.roof("tensor", "fp16").measured_per_s        # 7.67e14 of 9.894e14
VANILLA = DATA / "sd" / "trace_vanilla.json.gz"
CPU = torch.device("cpu")
ENV = {"gpu_name": "NVIDIA H200", "driver": "580.159.04", "torch": "2.11.0+cu130", "cuda": "13.0"}
TIMES_MS = [4.0, 1.0, 2.0, 3.0, 5.0]          # median 3, quartiles 2 and 4


@pytest.fixture
def fake_timer(monkeypatch):
    """Every benchmark's calls 'take' TIMES_MS; each call still runs once (real kernels, CPU)."""
    def timer(call, device, warmup, repeats):
        call()
        return list(TIMES_MS)
    monkeypatch.setattr(calibrate, "time_calls_ms", timer)


def test_rates_come_from_the_work_and_the_median_time(fake_timer):
    spec = load_spec("h200")
    cal = calibrate.measure_roofs(CPU, ENV, spec=spec, stream_bytes=1 << 20, gemm_n=64)
    by_key = {(r.engine, r.dtype): r for r in cal.roofs}
    assert set(by_key) == set(calibrate.MEMORY_KEYS) | set(calibrate.COMPUTE_KEYS) and not cal.skipped
    assert by_key["memory", "copy"].work_per_call == 2 * 2**20              # read + write
    assert by_key["memory", "elementwise"].work_per_call == 3 * 2**20       # two reads, one write
    for key in calibrate.COMPUTE_KEYS:
        assert by_key[key].work_per_call == 2 * 64**3                       # 2 M N K
    for r in cal.roofs:
        assert r.time_ms.median_ms == 3.0 and r.time_ms.iqr_ms == 2.0 and r.time_ms.n == 5
        assert r.measured_per_s == pytest.approx(r.work_per_call / 3e-3)
    assert by_key["memory", "copy"].datasheet_per_s == 4.8e12
    assert by_key["tensor", "fp16"].datasheet_per_s == pytest.approx(989.4e12)
    assert by_key["cuda", "fp32"].datasheet_per_s == pytest.approx(66.9e12)
    assert by_key["tensor", "tf32"].datasheet_per_s == pytest.approx(494.7e12)
    assert "copy_" in by_key["memory", "copy"].method and "1.00 MiB" in by_key["memory", "copy"].method
    assert (cal.device_name, cal.driver, cal.torch, cal.cuda) == tuple(ENV.values())
    assert cal.gpu_key == "h200"


def test_the_tf32_flag_is_set_per_gemm_and_restored(fake_timer, monkeypatch):
    seen = []
    real_mm = torch.mm

    def spy(a, b, **kw):
        seen.append((a.dtype, torch.backends.cuda.matmul.allow_tf32))
        return real_mm(a, b, **kw)
    monkeypatch.setattr(torch, "mm", spy)
    before = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = True          # as a run with tf32=true sets it
        calibrate.measure_roofs(CPU, ENV, stream_bytes=1 << 16, gemm_n=16)
        assert torch.backends.cuda.matmul.allow_tf32 is True
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
    fp32 = [flag for dtype, flag in seen if dtype == torch.float32]
    assert fp32 == [True, False]                              # TF32 roof, then the CUDA-core one


def test_a_card_without_the_tensor_cores_skips_that_dtype_with_the_reason():
    benches = {(b.engine, b.dtype): b for b in calibrate.benchmarks()}
    turing = (7, 5)
    assert calibrate._unsupported(benches["tensor", "fp16"], turing) is None
    assert "BF16 tensor cores" in calibrate._unsupported(benches["tensor", "bf16"], turing)
    assert "TF32" in calibrate._unsupported(benches["tensor", "tf32"], turing)
    assert calibrate._unsupported(benches["cuda", "fp32"], turing) is None
    assert calibrate._unsupported(benches["tensor", "bf16"], (9, 0)) is None


def test_default_sizes_are_far_above_l2_and_fit_a_16_gb_card():
    from profiler_kit.hardware.specs import list_specs
    assert calibrate.STREAM_BYTES >= 2**30
    for spec in list_specs():
        stream = calibrate.stream_bytes_for(spec)
        assert stream >= 10 * spec.l2_bytes
        elementwise = 3 * stream                               # the largest benchmark's operands
        fp32_gemm = 3 * 4 * calibrate.GEMM_N**2
        # a quarter of the card at most; 16 GB cards (T4, V100) get 1 GiB operands
        assert max(elementwise, fp32_gemm) < spec.memory_bytes / 4, spec.key
    assert calibrate.stream_bytes_for(None) == calibrate.STREAM_BYTES


def test_out_of_memory_halves_the_size_then_skips():
    sizes = []

    def build(device, size):
        sizes.append(size)
        if size > 1024:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return (lambda: None), float(size), f"size {size}"
    bench = calibrate._Bench("memory", "copy", 4096, 512, build)
    ok = calibrate._measure(bench, CPU, None, warmup=0, repeats=3)
    assert sizes == [4096, 2048, 1024] and ok.method == "size 1024" and ok.work_per_call == 1024
    never = calibrate._Bench("memory", "copy", 4096, 2048, lambda d, s: build(d, 10**9))
    skipped = calibrate._measure(never, CPU, None, warmup=0, repeats=3)
    assert isinstance(skipped, records.SkippedRoof)
    assert "out of memory" in skipped.reason and "Tried to allocate" in skipped.reason


def test_the_cpu_timer_really_times(monkeypatch):
    calls = []
    times = calibrate.time_calls_ms(lambda: calls.append(1), CPU, warmup=2, repeats=4)
    assert len(calls) == 6 and len(times) == 4 and all(t >= 0 for t in times)


# ---------------------------------------------------------------------------------------------
# the cache and the run folder
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache_folder.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fake_measure(counter: list):
    def measure(device, env):
        counter.append(env["driver"])
        return msgspec.structs.replace(CAL, driver=env["driver"],
                                       measured_at=f"measure #{len(counter)}")
    return measure


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(cache_folder.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert roof_cache.cache_path("NVIDIA H200") == tmp_path / "xdg" / "profiler_kit" / "roofs" / "nvidia-h200.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_folder.cache_dir() == Path.home() / ".cache" / "profiler_kit"
    monkeypatch.setenv(cache_folder.CACHE_ENV, str(tmp_path / "mine"))
    assert roof_cache.cache_path("NVIDIA H100 80GB HBM3").name == "nvidia-h100-80gb-hbm3.json"


def test_cache_hit_miss_and_invalidation(cache, tmp_path):
    gpu = SimpleNamespace(type="cuda")
    measured, warnings = [], []
    run1, run2, run3 = (tmp_path / f"run{i}" for i in (1, 2, 3))
    for d in (run1, run2, run3):
        d.mkdir()
    first = calibrate.calibration_for_run("auto", gpu, ENV, str(run1), warnings, measure=_fake_measure(measured))
    assert measured == [ENV["driver"]] and (cache / "roofs" / "nvidia-h200.json").is_file()
    assert read_roof_calibration(run1 / "roofs_measured.json") == first
    again = calibrate.calibration_for_run("auto", gpu, ENV, str(run2), warnings, measure=_fake_measure(measured))
    assert len(measured) == 1 and again == first                       # hit: nothing measured
    assert read_roof_calibration(run2 / "roofs_measured.json") == first
    upgraded = {**ENV, "driver": "590.1"}
    fresh = calibrate.calibration_for_run("auto", gpu, upgraded, str(run3), warnings, measure=_fake_measure(measured))
    assert measured == [ENV["driver"], "590.1"] and fresh.driver == "590.1"
    assert read_roof_calibration(cache / "roofs" / "nvidia-h200.json").driver == "590.1"   # overwritten
    cached, why = roof_cache.load(ENV)
    assert cached is None and "driver 590.1 -> 580.159.04" in why
    calibrate.calibration_for_run("always", gpu, upgraded, str(run3), warnings, measure=_fake_measure(measured))
    assert len(measured) == 3                                           # always: measured again
    assert calibrate.calibration_for_run("never", gpu, ENV, str(run3), warnings, measure=_fake_measure(measured)) is None
    assert calibrate.calibration_for_run("auto", CPU, ENV, str(run3), warnings, measure=_fake_measure(measured)) is None
    assert len(measured) == 3 and not warnings


def test_a_failed_measurement_is_a_warning_and_an_unreadable_cache_is_measured_again(cache, tmp_path):
    path = roof_cache.cache_path(ENV["gpu_name"])
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert roof_cache.load(ENV)[0] is None and "unreadable" in roof_cache.load(ENV)[1]

    def broken(device, env):
        raise RuntimeError("cuBLAS said no\nsecond line")
    warnings = []
    assert calibrate.calibration_for_run("auto", SimpleNamespace(type="cuda"), ENV, str(tmp_path), warnings,
                                         measure=broken) is None
    assert len(warnings) == 1 and "cuBLAS said no" in warnings[0] and "datasheet" in warnings[0]
    assert not (tmp_path / "roofs_measured.json").exists()


def test_the_cache_write_is_atomic(cache, monkeypatch):
    old = CAL
    path = roof_cache.store(old)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(records.base, "to_json", lambda record: fail())
    with pytest.raises(OSError):
        roof_cache.store(msgspec.structs.replace(old, driver="999"))
    assert path.read_bytes() == before                                 # the old file, whole
    assert [p.name for p in path.parent.iterdir()] == [path.name]       # no partial file left


# ---------------------------------------------------------------------------------------------
# the record
# ---------------------------------------------------------------------------------------------

def test_the_record_round_trips(tmp_path):
    cal = CAL
    assert cal.memory_roof.measured_per_s == pytest.approx(4.255e12, rel=1e-3)
    assert cal.memory_roof.measured_fraction == pytest.approx(cal.memory_roof.measured_per_s / 4.8e12)
    assert cal.roof("tensor", "bf16").time_ms.n == 20 and cal.roof("tensor", "fp8") is None
    write_record(tmp_path / "c.json", cal)
    assert read_roof_calibration(tmp_path / "c.json") == cal


@pytest.mark.parametrize("text, expect", [
    ("{", "not valid JSON"), ("[]", "JSON list"),
    ('{"device_name": "x"}', "not a valid RoofCalibration record"),
    ('{"schema_version": 99, "device_name": "x"}', "newer than this profiler_kit reads"),
])
def test_a_bad_file_fails_with_one_line(tmp_path, text, expect):
    path = tmp_path / "roofs_measured.json"
    path.write_text(text)
    with pytest.raises(RecordError) as err:
        read_roof_calibration(path)
    assert expect in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------
# analysis and report of a real trace, judged against the measured roofs
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def judged():
    from profiler_kit.analysis import analyze_trace
    cal = CAL
    return {basis: analyze_trace(VANILLA, label="vanilla", calibration=cal if basis != "none" else None,
                                 roof_basis="measured" if basis == "measured" else "datasheet")
            for basis in ("none", "datasheet", "measured")}


def test_recorded_beside_the_datasheet_the_measured_roofs_change_nothing(judged):
    plain, beside = judged["none"].record, judged["datasheet"].record
    assert beside.bound_us == plain.bound_us and beside.roofline_floor_us == plain.roofline_floor_us
    assert beside.roofs.basis == "datasheet" and beside.roofs.memory_bandwidth_bytes_per_s == 4.8e12
    assert beside.roofs.memory_bandwidth_measured_bytes_per_s == COPY_BPS
    fp16 = beside.roofs.roof("tensor", "fp16")
    assert (fp16.peak_flops_per_s, fp16.datasheet_flops_per_s, fp16.measured_flops_per_s) == \
        (pytest.approx(989.4e12), pytest.approx(989.4e12), FP16_TENSOR)
    assert fp16.basis == "datasheet" and beside.roofs.memory_basis == "datasheet"
    assert plain.roofs.calibration is None and plain.roofs.roof("tensor", "fp16").measured_flops_per_s is None


def test_judged_against_measured_peaks_bounds_and_attainment_move(judged):
    ds, ms = judged["datasheet"].record, judged["measured"].record
    roofs = ms.roofs
    assert roofs.basis == "measured" and roofs.memory_basis == "measured"
    assert roofs.memory_bandwidth_bytes_per_s == pytest.approx(COPY_BPS)
    assert roofs.roof("tensor", "fp16").peak_flops_per_s == pytest.approx(FP16_TENSOR) and roofs.roof("tensor", "fp16").basis == "measured"
    assert roofs.roof("cuda", "fp32").peak_flops_per_s == pytest.approx(CAL.roof("cuda", "fp32").measured_per_s)
    # fp16 on CUDA cores was not measured: it keeps the datasheet's figure, and says so
    cuda16 = roofs.roof("cuda", "fp16")
    assert cuda16.peak_flops_per_s == pytest.approx(133.8e12) and cuda16.basis == "datasheet"
    assert cuda16.measured_flops_per_s is None
    # lower roofs: the floor rises, the same kernel time is a larger share of the roof
    assert ms.roofline_floor_us > ds.roofline_floor_us * 1.15
    points_ds = {(p.op, p.shapes): p for p in ds.roofline_points}
    memory_bound = [p for p in ms.roofline_points
                    if p.bound == "memory" and points_ds[p.op, p.shapes].bound == "memory" and p.engine == "cuda"]
    assert memory_bound
    for p in memory_bound:                                # B / bandwidth: 4.8 / 4.26 = 1.13x
        assert p.attainment == pytest.approx(points_ds[p.op, p.shapes].attainment * 4.8e12 / COPY_BPS)
    assert ms.bound_us != ds.bound_us
    assert sum(ms.bound_us.values()) == pytest.approx(sum(ds.bound_us.values()))


def test_a_calibration_of_another_card_is_warned_about():
    from profiler_kit.analysis import analyze_trace
    other = msgspec.structs.replace(CAL, device_name="NVIDIA A100-SXM4-80GB")
    a = analyze_trace(VANILLA, calibration=other).record
    assert any("measured roofs are of NVIDIA A100" in w for w in a.warnings)


def test_the_report_shows_both_roofs_and_which_is_used(judged, tmp_path):
    from profiler_kit.report import render_trace_report
    for basis in ("datasheet", "measured"):
        out = render_trace_report({"vanilla": judged[basis].record}, None, tmp_path / f"{basis}.html")
        page = out.read_text(encoding="utf-8")
        table = page[page.index("Roofs: datasheet and measured"):]
        table = table[:table.index("</table>")]
        assert f"judged against the <b>{basis}</b> roofs" in table
        assert "4,800 GB/s" in table and "4,255 GB/s" in table             # HBM: both figures
        assert "989 TFLOP/s" in table and "767 TFLOP/s" in table           # FP16 tensor: both
        assert "89 %" in table                                              # 4.26 / 4.8
        assert "dst.copy_(src), device-to-device" in table and "IQR" in table
        assert f"<b>{basis}</b></td>" in table                              # the memory roof's basis
        assert "shown only" in table                                        # the element-wise stream
    plain = render_trace_report({"vanilla": judged["none"].record}, None, tmp_path / "plain.html")
    assert "Roofs: datasheet and measured" not in plain.read_text(encoding="utf-8")


def test_the_chart_draws_the_other_roofs_labelled(judged):
    from profiler_kit.report import figures
    basis, bandwidth, roofs = figures.other_roofs_drawn({"v": judged["datasheet"].record})
    assert (basis, bandwidth) == ("measured", COPY_BPS) and ("FP16 tensor", FP16_TENSOR) in roofs
    basis, bandwidth, roofs = figures.other_roofs_drawn({"v": judged["measured"].record})
    assert (basis, bandwidth) == ("datasheet", 4.8e12) and ("FP16 tensor", pytest.approx(989.4e12)) in roofs
    texts = [a["text"] for a in figures.roofline({"v": judged["measured"].record})["layout"]["annotations"]]
    assert any("(measured)" in t for t in texts) and any("(datasheet)" in t for t in texts)
    assert figures.other_roofs_drawn({"v": judged["none"].record})[1:] == (None, [])


def test_old_analysis_files_still_read():
    """An analysis.json from before the calibration has none of the new fields."""
    old = {"gpu_key": "h200", "memory_bandwidth_bytes_per_s": 4.8e12, "allow_tf32": None,
           "compute": [{"label": "FP16 tensor", "engine": "tensor", "dtype": "fp16",
                        "peak_flops_per_s": 9.894e14, "ridge_flops_per_byte": 206.1, "judged_us": 1.0}]}
    roofs = msgspec.convert(old, records.Roofs)
    assert roofs.basis == "datasheet" and roofs.calibration is None and roofs.compute[0].measured_flops_per_s is None


# ---------------------------------------------------------------------------------------------
# the command line and the run folder
# ---------------------------------------------------------------------------------------------

def _analyze(*args):
    return subprocess.run([sys.executable, "-m", "profiler_kit.analyze", *map(str, args)],
                          capture_output=True, text=True, cwd=Path(__file__).parents[1])


def test_analyze_cli_judges_against_the_roofs_file(tmp_path):
    proc = _analyze(VANILLA, "--roofs", MEASURED, "--roof-basis", "measured", "--no-report", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    roofs = json.loads((tmp_path / "analysis.json").read_text())["roofs"]
    assert roofs["basis"] == "measured" and roofs["memory_bandwidth_bytes_per_s"] == pytest.approx(COPY_BPS)
    assert roofs["calibration"]["device_name"] == "NVIDIA H200"
    bad = _analyze(VANILLA, "--roof-basis", "measured", "--out", tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "needs --roofs" in bad.stderr
    missing = _analyze(VANILLA, "--roofs", tmp_path / "nope.json", "--out", tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "--roofs: cannot read" in missing.stderr


def test_analyze_run_reads_the_run_folders_roofs(tmp_path):
    from profiler_kit.analysis.run import analyze_run
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(VANILLA, run / VANILLA.name)
    shutil.copy(MEASURED, run / "roofs_measured.json")
    summary = records.read_summary(DATA / "sd" / "summary.json")
    summary = msgspec.structs.replace(summary, modes={"vanilla": summary.modes["vanilla"]},
                                      roof_calibration="roofs_measured.json", roof_basis="measured")
    write_record(run / "summary.json", summary)
    roofs = analyze_run(str(run)).modes["vanilla"].analysis.roofs
    assert roofs.basis == "measured" and roofs.memory_bandwidth_bytes_per_s == pytest.approx(COPY_BPS)
    (run / "roofs_measured.json").write_text("{broken")
    again = analyze_run(str(run))
    assert again.modes["vanilla"].analysis.roofs.basis == "datasheet"
    assert sum("measured roofs unreadable" in w for w in again.warnings) == 1
    assert sum("measured roofs unreadable" in w for w in analyze_run(str(run)).warnings) == 1   # not piled up


def test_roofs_measured_without_a_calibration_is_refused_before_the_run(tmp_path):
    for override in ("calibrate=never", "device=cpu"):
        proc = subprocess.run([sys.executable, "-m", "profiler_kit", "roofs=measured", override], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert "roofs=measured needs measured roofs" in proc.stderr and "roofs=datasheet" in proc.stderr
        assert not (tmp_path / "outputs").exists()


def test_a_measured_roof_is_marked_measured_whatever_its_digits():
    """Measured figures pass through GpuSpec's TFLOP/s and GB/s: the basis must survive the rounding."""
    from profiler_kit.analysis.cost_model import estimate_op
    from profiler_kit.analysis.roofline import judging_spec, roofline, roofs_used
    cal = CAL
    odd = {("memory", "copy"): 3.9876543e12, ("tensor", "fp16"): 7.123456789e14}
    cal = msgspec.structs.replace(cal, roofs=[msgspec.structs.replace(r, measured_per_s=odd.get((r.engine, r.dtype),
                                                                                             r.measured_per_s))
                                              for r in cal.roofs])
    spec = load_spec("h200")
    cost = estimate_op("aten::mm", [[8192, 8192], [8192, 8192]], ["c10::Half"] * 2, ["", ""])
    point = roofline(cost, 2000.0, judging_spec(spec, cal, "measured"))
    assert point.compute_us == pytest.approx(2 * 8192**3 / 7.123456789e14 * 1e6)
    roofs = roofs_used([point], spec, None, cal, "measured")
    assert roofs.roof("tensor", "fp16").basis == "measured" and roofs.memory_basis == "measured"
    assert judging_spec(spec, cal, "datasheet") is spec and judging_spec(spec, None, "measured") is spec
    with pytest.raises(ValueError, match="unknown roof basis"):
        judging_spec(spec, cal, "guessed")


def _tiny_cfg(*overrides):
    from hydra import compose, initialize_config_dir

    from profiler_kit import config
    config.register()
    with initialize_config_dir(config_dir=str(Path(__file__).parents[1] / "conf"), version_base="1.3"):
        return compose("config", overrides=["model=tiny", "resolution=256", "warmup=0", "iterations=1",
                                            "modes=[vanilla]", "profiler.enabled=false", "report.enabled=false",
                                            *overrides])


def test_the_run_records_the_calibration_it_used(tmp_path, monkeypatch):
    """run_experiment asks calibrate.calibration_for_run before the modes (faked here: no GPU),
    and the summary names the run folder's file and the basis; without one, roofs=measured warns
    and falls back to the datasheet."""
    from profiler_kit.capture import experiment
    from profiler_kit.__main__ import run_pipeline

    asked = []

    def fake(mode, device, env, run_dir, warnings):
        asked.append(mode)
        shutil.copy(MEASURED, Path(run_dir) / "roofs_measured.json")
        return CAL
    monkeypatch.setattr(experiment.calibrate, "calibration_for_run", fake)
    monkeypatch.chdir(tmp_path)
    summary = run_pipeline(_tiny_cfg("roofs=measured", "calibrate=always"))
    assert asked == ["always"]
    assert (summary.roof_calibration, summary.roof_basis) == ("roofs_measured.json", "measured")
    assert summary.config["roofs"] == "measured" and summary.config["calibrate"] == "always"

    monkeypatch.setattr(experiment.calibrate, "calibration_for_run", lambda *a: None)
    (tmp_path / "roofs_measured.json").unlink()
    summary = run_pipeline(_tiny_cfg("roofs=measured"))
    assert (summary.roof_calibration, summary.roof_basis) == (None, "datasheet")
    assert any("roofs=measured but no roofs were measured" in w for w in summary.warnings)

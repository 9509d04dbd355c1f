"""Issue 11: HBM traffic measured by Nsight Compute, parsed, captured and joined to traces.

Real data only (tests/data/sd-ncu/README.md): ncu's raw CSV of three micro kernels on an H200
(tests/data/ncu/h200_micro_raw.csv) and two SD 1.5 runs on the H200 at 512 and 768 px, each mode's
trace beside its ``ncu_<mode>.json.gz``. The capture side runs against a fake ``ncu`` (a Python
script in tmp_path) that answers as the real one does; no GPU is needed.

The cost model's estimates are being changed, so the join is held to invariants and to what the
hardware counted, never to an estimate's exact value.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest

from profiler_kit.capture import ncu_measure
from profiler_kit.hardware import nsight
from profiler_kit.records import (MIN_JOIN_COVERAGE, NcuKernel, read_analysis, read_ncu_measurement,
                                  read_summary)

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"
MICRO = DATA / "ncu" / "h200_micro_raw.csv"
SD_NCU = DATA / "sd-ncu"
MODES = {"512": ["vanilla", "xformers", "sdpa_efficient", "sdpa_cudnn"],
         "768": ["vanilla", "xformers", "sdpa_cudnn"]}
ALL = [(res, mode) for res, modes in MODES.items() for mode in modes]
GEMM_OUT = 4096 * 4096 * 2          # the micro GEMM's fp16 output
ADD_64M, ADD_4M = 64 * 2**20, 4 * 2**20
TENSOR_PIPE = "sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_elapsed"
LOCAL_STORES = "l1tex__t_sectors_pipe_lsu_mem_local_op_st.sum"   # not in this older export


# --------------------------------------------------------------------------------------------
# parse_csv on ncu's own CSV
# --------------------------------------------------------------------------------------------

def test_parse_csv_reads_the_micro_kernels_exactly():
    kernels, missing = nsight.parse_csv(MICRO.read_text(), "full")
    assert [k.index for k in kernels] == [0, 1, 2]          # the units row is not a kernel
    gemm, add64, add4 = kernels
    assert gemm.name == "nvjet_sm90_hsh_256x128_64x4_1x2_h_bz_coopA_NNT"
    assert add64.name.startswith("void at::vectorized_elementwise_kernel<8, at::CUDAFunctor_add<c10::Half>")
    assert (gemm.grid, gemm.block) == ([2, 66, 1], [384, 1, 1])
    assert (add64.grid, add64.block) == ([32768, 1, 1], [128, 1, 1])
    assert (add4.grid, add4.block) == ([2048, 1, 1], [128, 1, 1])
    # what the SMs wrote into L2 is exactly each output; DRAM writes in the window are not
    assert [k.l2_write_bytes for k in kernels] == [GEMM_OUT, ADD_64M, ADD_4M]
    assert [k.dram_write_bytes for k in kernels] == [24_254_464, 45_085_952, 0]
    assert [k.dram_read_bytes for k in kernels] == [85_127_424, 67_118_848, 4_200_960]
    assert [k.duration_ns for k in kernels] == [221_280, 34_048, 4_576]
    assert [k.written_bytes for k in kernels] == [GEMM_OUT, ADD_64M, ADD_4M]
    assert [k.hbm_bytes_measured for k in kernels] == [85_127_424 + GEMM_OUT, 67_118_848 + ADD_64M,
                                                       4_200_960 + ADD_4M]
    assert add64.dram_read_bytes == pytest.approx(ADD_64M, rel=1e-3)      # reads come from a cold L2
    assert gemm.dram_throughput_pct == 10.27 and add64.dram_throughput_pct == 68.59
    assert (gemm.sm_throughput_pct, gemm.memory_throughput_pct) == (91.0, 70.37)
    # this export lacks the tensor-pipe counter, and says so
    assert missing == [LOCAL_STORES, TENSOR_PIPE] and gemm.tensor_pipe_pct is None and gemm.local_store_bytes is None


def test_parse_csv_lean_leaves_the_full_only_fields_empty():
    kernels, missing = nsight.parse_csv(MICRO.read_text(), "lean")
    assert missing == [LOCAL_STORES, TENSOR_PIPE]
    assert all(k.sm_throughput_pct is None and k.memory_throughput_pct is None for k in kernels)
    assert [k.l2_write_bytes for k in kernels] == [GEMM_OUT, ADD_64M, ADD_4M]


def test_parse_csv_ignores_prof_noise_and_blank_lines():
    text = MICRO.read_text()
    assert text.startswith("==PROF==")
    noisy = ("==PROF== Connected to process 1\n==WARNING== something\n\n" + text
             + "\n==PROF== Report: /tmp/x.ncu-rep\n")
    assert nsight.parse_csv(noisy, "full") == nsight.parse_csv(text, "full")


def _csv_without(columns: set[str]) -> str:
    import csv
    import io
    rows = list(csv.reader(io.StringIO("\n".join(ln for ln in MICRO.read_text().splitlines()
                                                 if ln.startswith('"')))))
    keep = [i for i, name in enumerate(rows[0]) if name not in columns]
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows([[r[i] for i in keep] for r in rows])
    return out.getvalue()


@pytest.mark.parametrize("dropped,words", [
    ({"ID"}, "'ID' / 'Kernel Name'"),
    ({"Kernel Name"}, "'ID' / 'Kernel Name'"),
    ({"dram__bytes_read.sum"}, "dram__bytes_read.sum"),
    ({"gpu__time_duration.sum"}, "gpu__time_duration.sum"),
])
def test_parse_csv_refuses_an_export_it_cannot_read_in_one_line(dropped, words):
    with pytest.raises(nsight.NcuError) as exc:
        nsight.parse_csv(_csv_without(dropped), "lean")
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_parse_csv_refuses_an_empty_export():
    with pytest.raises(nsight.NcuError, match="no kernel rows"):
        nsight.parse_csv("==PROF== Disconnected from process 590\n", "lean")


def test_a_missing_l2_counter_falls_back_to_dram_writes():
    kernels, missing = nsight.parse_csv(_csv_without({"lts__t_sectors_srcunit_tex_op_write.sum"}), "lean")
    assert "lts__t_sectors_srcunit_tex_op_write.sum" in missing
    assert [k.written_bytes for k in kernels] == [24_254_464, 45_085_952, 0]
    assert kernels[2].hbm_bytes_measured == 4_200_960


# --------------------------------------------------------------------------------------------
# base_name: ncu and Kineto name the same kernel differently
# --------------------------------------------------------------------------------------------

# (trace name, ncu name, base), copied from tests/data/sd-ncu/512 (the test checks they are there)
NAME_PAIRS = [
    ("void at::native::vectorized_elementwise_kernel<4, at::native::AUnaryFunctor<float, float, float, "
     "at::native::binary_internal::MulFunctor<float> >, std::array<char*, 2ul> >(int, at::native::AUnaryFunctor"
     "<float, float, float, at::native::binary_internal::MulFunctor<float> >, std::array<char*, 2ul>)",
     "void at::vectorized_elementwise_kernel<4, at::AUnaryFunctor<float, float, float, binary_internal::"
     "MulFunctor<float>>, std::array<char *, 2>>(int, T2, T3)", "vectorized_elementwise_kernel", "vanilla"),
    ("void (anonymous namespace)::elementwise_kernel_with_index<int, at::native::arange_cuda_out(c10::Scalar "
     "const&, c10::Scalar const&, c10::Scalar const&, at::Tensor&)::{lambda()#1}::operator()() const::{lambda()#7}"
     "::operator()() const::{lambda(long)#1}>(int, at::native::arange_cuda_out(c10::Scalar const&, c10::Scalar "
     "const&, c10::Scalar const&, at::Tensor&)::{lambda()#1}::operator()() const::{lambda()#7}::operator()() "
     "const::{lambda(long)#1}, function_traits<at::native::arange_cuda_out(c10::Scalar const&, c10::Scalar "
     "const&, c10::Scalar const&, at::Tensor&)::{lambda()#1}::operator()() const::{lambda()#7}::operator()() "
     "const::{lambda(long)#1}>::result_type*)",
     "void <unnamed>::elementwise_kernel_with_index<int, at::arange_cuda_out(const c10::Scalar &, const "
     "c10::Scalar &, const c10::Scalar &, at::Tensor &)::[lambda() (instance 1)]::operator ()() const::[lambda() "
     "(instance 7)]::operator ()() const::[lambda(long) (instance 1)]>(T1, T2, function_traits<T2>::result_type *)",
     "elementwise_kernel_with_index", "vanilla"),
    ("void at::native::(anonymous namespace)::cunn_SoftMaxForwardReg<c10::Half, float, c10::Half, "
     "at::native::(anonymous namespace)::SoftMaxForwardEpilogue, long, 4>(c10::Half*, c10::Half const*, long)",
     "void at::<unnamed>::cunn_SoftMaxForwardReg<c10::Half, float, c10::Half, at::<unnamed>::"
     "SoftMaxForwardEpilogue, long, 4>(T3 *, const T1 *, T5)", "cunn_SoftMaxForwardReg", "vanilla"),
    ("void cudnn::engines_precompiled::nchwToNhwcKernel<__half, __half, float, false, true, "
     "(cudnnKernelDataType_t)0>(cudnn::engines_precompiled::nchw2nhwc_params_t<float>, __half const*, __half*)",
     "void cudnn::nchwToNhwcKernel<__half, __half, float, 0, 1, 0>(cudnn::nchw2nhwc_params_t<T3>, const T1 *, "
     "T2 *)", "nchwToNhwcKernel", "vanilla"),
    ("fmha_cutlassF_f16_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel<cutlass::half_t, "
     "cutlass::arch::Sm80, true, 64, 64, 64, true, true>::Params)",
     "fmha_cutlassF_f16_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel<cutlass::half_t, "
     "cutlass::Sm80, 1, 64, 64, 64, 1, 1>::Params)", "fmha_cutlassF_f16_aligned_64x64_rf_sm80", "sdpa_efficient"),
    ("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128, 128, 4, false, false, "
     "cutlass::half_t, Flash_kernel_traits<64, 128, 128, 4, cutlass::half_t> >, false, false, false, false, "
     "false, false, false, false>(pytorch_flash::Flash_fwd_params)",
     "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128, 128, 4, 0, 0, cutlass::half_t, "
     "Flash_kernel_traits<64, 128, 128, 4, cutlass::half_t>>, 0, 0, 0, 0, 0, 0, 0, 0>(pytorch_flash::"
     "Flash_fwd_params)", "flash_fwd_kernel", "xformers"),
]


@functools.lru_cache(maxsize=None)
def _trace_kernel_names(res: str, mode: str) -> frozenset[str]:
    events = json.load(gzip.open(SD_NCU / res / f"trace_{mode}.json.gz"))["traceEvents"]
    return frozenset(e["name"] for e in events if e.get("cat") == "kernel")


@functools.lru_cache(maxsize=None)
def _measurement(res: str, mode: str):
    return read_ncu_measurement(SD_NCU / res / f"ncu_{mode}.json.gz")


@pytest.mark.parametrize("trace_name,ncu_name,base,mode", NAME_PAIRS, ids=[p[2] for p in NAME_PAIRS])
def test_base_name_agrees_across_kineto_and_ncu(trace_name, ncu_name, base, mode):
    assert trace_name in _trace_kernel_names("512", mode)
    assert ncu_name in {k.name for k in _measurement("512", mode).kernels}
    assert trace_name != ncu_name
    assert nsight.base_name(trace_name) == nsight.base_name(ncu_name) == base


def test_base_name_of_plain_and_nested_names():
    assert nsight.base_name("nvjet_sm90_hsh_256x128_64x4_1x2_h_bz_coopA_NNT") == \
        "nvjet_sm90_hsh_256x128_64x4_1x2_h_bz_coopA_NNT"
    assert nsight.base_name("  void foo<int>(int)  ") == "foo"
    # an anonymous namespace right before the function, either spelling
    assert nsight.base_name("(anonymous namespace)::softmax_warp_forward<c10::Half>(c10::Half*)") == \
        "softmax_warp_forward"
    assert nsight.base_name("<unnamed>::softmax_warp_forward<c10::Half>(T1 *)") == "softmax_warp_forward"
    # lambdas nested in templates nested in parameters
    assert nsight.base_name("void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl<"
                            "at::native::f(at::TensorIteratorBase&)::{lambda()#3}::operator()() const::"
                            "{lambda(float)#1}>(at::TensorIteratorBase&, g<h<i>> const&)::{lambda(int)#1}>"
                            "(int, k<l<m<n>>>)") == "elementwise_kernel"
    # a different kernel stays different
    assert nsight.base_name("void at::elementwise_kernel<1>(int)") != nsight.base_name(
        "void at::vectorized_elementwise_kernel<1>(int)")


# --------------------------------------------------------------------------------------------
# failure_line, tool_version, the command lines
# --------------------------------------------------------------------------------------------

PERMISSION_OUTPUT = (
    "==PROF== Connected to process 4242 (/usr/bin/python3.12)\n"
    "==ERROR== ERR_NVGPUCTRPERM - The user does not have permission to access NVIDIA GPU Performance "
    "Counters on the target device 0. For instructions on enabling permissions and to get more information "
    "see https://developer.nvidia.com/ERR_NVGPUCTRPERM\n"
    "==PROF== Disconnected from process 4242\n")


def test_failure_line_names_the_cause_in_one_line():
    line = nsight.failure_line(PERMISSION_OUTPUT, 1)
    assert "ERR_NVGPUCTRPERM" in line and "NVreg_RestrictProfilingToAdminUsers=0" in line
    assert "\n" not in line
    line = nsight.failure_line("==PROF== Connected\n==ERROR== Failed to find the target process\nmore\n", 1)
    assert line == "ncu failed: Failed to find the target process"
    line = nsight.failure_line("==ERROR== " + "x" * 1000 + "\n", 1)
    assert len(line) <= len("ncu failed: ") + 300
    line = nsight.failure_line("==PROF== Disconnected from process 1\n==WARNING== No kernels were profiled.\n", 0)
    assert line.startswith("ncu profiled no kernel") and "cudaProfilerStart" in line
    assert nsight.failure_line("", 139) == "ncu exited with status 139 and measured nothing"


def test_tool_version_reads_ncu_version_output():
    out = ["NVIDIA (R) Nsight Compute Command Line Profiler", "Copyright (c) 2018-2025 NVIDIA Corporation",
           "Version 2025.3.1.0 (build 36398880) (public-release)"]
    assert nsight.tool_version(out) == "Nsight Compute 2025.3.1.0 (build 36398880)"
    assert nsight.tool_version(["Version 2024.1.0.0"]) == "Nsight Compute 2024.1.0.0"
    assert nsight.tool_version(["garbage"]) == "Nsight Compute (version unknown)"
    # what the committed measurements recorded
    assert _measurement("512", "vanilla").tool_version.startswith("Nsight Compute 2025.3.1.0")


def test_profile_and_export_commands():
    cmd = nsight.profile_command("/x/ncu", "lean", "/run/ncu_vanilla", ["python", "-m", "child"])
    assert cmd[0] == "/x/ncu" and cmd[-3:] == ["python", "-m", "child"]
    assert cmd[cmd.index("--metrics") + 1].split(",") == list(nsight.METRIC_SETS["lean"])
    assert cmd[cmd.index("--export") + 1] == "/run/ncu_vanilla"
    assert cmd[cmd.index("--cache-control") + 1] == "all" and cmd[cmd.index("--clock-control") + 1] == "base"
    assert cmd[cmd.index("--profile-from-start") + 1] == "off"
    full = nsight.profile_command("ncu", "full", "b", [])
    assert set(full[full.index("--metrics") + 1].split(",")) > set(cmd[cmd.index("--metrics") + 1].split(","))
    exp = nsight.export_command("ncu", "r.ncu-rep")
    assert exp[exp.index("--page") + 1] == "raw" and exp[exp.index("--print-units") + 1] == "base"
    assert "--csv" in exp and exp[exp.index("--import") + 1] == "r.ncu-rep"


# --------------------------------------------------------------------------------------------
# The capture side against a fake ncu
# --------------------------------------------------------------------------------------------

FAKE_NCU = '''\
#!{python}
"""A stand-in for ncu: answers --version, "profiles" by copying the micro CSV to <base>.ncu-rep,
exports by printing the report. BEHAVIOUR: ok | perm | nokernels | hang | hang_export."""
import os, shutil, sys, time
args = sys.argv[1:]
with open({calls!r}, "a") as f:
    f.write(" ".join(args[:2]) + "\\n")
behaviour = {behaviour!r}
if args == ["--version"]:
    print("NVIDIA (R) Nsight Compute Command Line Profiler")
    print("Version 2025.3.1.0 (build 36398880) (public-release)")
    sys.exit(0)
if args[0] == "--import":
    if behaviour == "hang_export":
        time.sleep(60)
    print("==PROF== noise before the CSV")
    print(open(args[1]).read())
    sys.exit(0)
base = args[args.index("--export") + 1]
print("==PROF== Connected to process 4242 (" + " ".join(args[-4:]) + ")")
if behaviour == "perm":
    print({perm!r})
    sys.exit(1)
if behaviour == "nokernels":
    print("==PROF== Disconnected from process 4242")
    print("==WARNING== No kernels were profiled.", file=sys.stderr)
    sys.exit(0)
if behaviour == "hang":
    for i in range(3):
        print(f'==PROF== Profiling "kernel_{{i}}" - {{i}}: 0%....50%....100% - 9 passes', flush=True)
    time.sleep(60)
shutil.copy({csv!r}, base + ".ncu-rep")
print("==PROF== Report: " + base + ".ncu-rep")
'''


def _fake_ncu(tmp_path: Path, behaviour: str = "ok") -> tuple[Path, Path]:
    calls = tmp_path / f"calls_{behaviour}.txt"
    path = tmp_path / f"ncu_{behaviour}"
    path.write_text(FAKE_NCU.format(python=sys.executable, calls=str(calls), behaviour=behaviour,
                                    perm=PERMISSION_OUTPUT, csv=str(MICRO)))
    path.chmod(0o755)
    return path, calls


def _calls(calls: Path) -> list[str]:
    return calls.read_text().splitlines() if calls.exists() else []


def _cfg(executable, metrics="lean", timeout_s=600):
    return SimpleNamespace(ncu=SimpleNamespace(executable=str(executable), metrics=metrics, timeout_s=timeout_s))


def test_measure_mode_writes_the_record_and_keeps_the_log(tmp_path):
    ncu, calls = _fake_ncu(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    status = ncu_measure.measure_mode(str(run_dir), "vanilla", str(ncu), "full", 600, "NVIDIA H200")
    assert status.status == "measured" and status.reason is None
    assert (status.file, status.report_file, status.kernels) == ("ncu_vanilla.json", "ncu_vanilla.ncu-rep", 3)
    assert status.wall_s is not None and status.wall_s >= 0
    record = read_ncu_measurement(run_dir / "ncu_vanilla.json")
    assert record.kernels == nsight.parse_csv(MICRO.read_text(), "full")[0]
    assert record.mode == "vanilla" and record.device_name == "NVIDIA H200"
    assert record.tool_version == "Nsight Compute 2025.3.1.0 (build 36398880)"
    assert record.metric_set == "full"
    assert record.metrics == [m for m in nsight.METRIC_SETS["full"] if m not in (TENSOR_PIPE, LOCAL_STORES)]
    assert (record.cache_control, record.clock_control) == ("all", "base")
    assert "profiler_kit.capture.ncu_child" in record.command and str(run_dir.resolve()) in record.command
    log = (run_dir / "ncu_vanilla.log").read_text()
    assert "==PROF== Connected to process 4242" in log and "ncu_child" in log
    assert [c.split()[0] for c in _calls(calls)] == ["--profile-from-start", "--import", "--version"]


def test_measure_modes_measures_every_mode(tmp_path):
    ncu, calls = _fake_ncu(tmp_path)
    warnings: list[str] = []
    out = ncu_measure.measure_modes(str(tmp_path), ["vanilla", "sdpa"], _cfg(ncu), "cuda", "NVIDIA H200", warnings)
    assert {m: s.status for m, s in out.items()} == {"vanilla": "measured", "sdpa": "measured"}
    assert warnings == []
    assert {p.name for p in tmp_path.glob("ncu_*.json")} == {"ncu_vanilla.json", "ncu_sdpa.json"}
    assert sum(c.startswith("--profile-from-start") for c in _calls(calls)) == 2


def test_no_permission_is_unavailable_and_stops_the_other_modes(tmp_path):
    ncu, calls = _fake_ncu(tmp_path, "perm")
    warnings: list[str] = []
    out = ncu_measure.measure_modes(str(tmp_path), ["vanilla", "xformers", "sdpa"], _cfg(ncu), "cuda",
                                    "NVIDIA H200", warnings)
    assert [s.status for s in out.values()] == ["unavailable"] * 3
    reasons = {s.reason for s in out.values()}
    assert len(reasons) == 1 and "ERR_NVGPUCTRPERM" in reasons.pop()
    assert len(_calls(calls)) == 1                      # the other modes were not tried
    assert len(warnings) == 1 and warnings[0].startswith("vanilla: no Nsight Compute measurement:")
    assert "\n" not in warnings[0]
    assert "ERR_NVGPUCTRPERM" in (tmp_path / "ncu_vanilla.log").read_text()
    assert not list(tmp_path.glob("ncu_*.json"))


def test_no_kernels_profiled_is_a_failure_and_the_next_mode_is_tried(tmp_path):
    ncu, calls = _fake_ncu(tmp_path, "nokernels")
    warnings: list[str] = []
    out = ncu_measure.measure_modes(str(tmp_path), ["vanilla", "sdpa"], _cfg(ncu), "cuda", None, warnings)
    assert [s.status for s in out.values()] == ["failed", "failed"]
    assert out["vanilla"].reason.startswith("ncu profiled no kernel")
    assert len(_calls(calls)) == 2 and len(warnings) == 2


def test_a_timeout_fails_with_a_hint(tmp_path):
    ncu, _ = _fake_ncu(tmp_path, "hang")
    status = ncu_measure.measure_mode(str(tmp_path), "vanilla", str(ncu), "full", 0.5, None)
    assert status.status == "failed"
    assert "ncu.timeout_s=0.5" in status.reason and "ncu.metrics=lean" in status.reason
    assert "\n" not in status.reason
    # how far it got, and ncu's output kept to read
    assert "(3 kernels measured by then, 9 passes each)" in status.reason and "ncu_vanilla.log" in status.reason
    assert (tmp_path / "ncu_vanilla.log").read_text().count("==PROF== Profiling") == 3
    # already lean: the hint does not suggest what is already set
    lean = ncu_measure.measure_mode(str(tmp_path), "vanilla", str(ncu), "lean", 0.5, None)
    assert "ncu.timeout_s=0.5" in lean.reason and "ncu.metrics" not in lean.reason


def test_a_hanging_export_fails_with_a_hint_instead_of_raising(tmp_path):
    """measure_mode promises never to raise for a failed measurement: the export runs under the
    same timeout as the profile."""
    ncu, _ = _fake_ncu(tmp_path, "hang_export")
    status = ncu_measure.measure_mode(str(tmp_path), "vanilla", str(ncu), "lean", 2, None)
    assert status.status == "failed" and "ncu.timeout_s=2" in status.reason
    assert not (tmp_path / "ncu_vanilla.json").exists()


@pytest.mark.parametrize("device_type,executable,words", [
    ("cpu", "ncu", "needs a CUDA device"),
    ("cuda", "/nonexistent/ncu", "is not on the PATH"),
])
def test_no_cuda_or_no_ncu_makes_every_mode_unavailable(tmp_path, device_type, executable, words):
    warnings: list[str] = []
    out = ncu_measure.measure_modes(str(tmp_path), ["vanilla", "sdpa"], _cfg(executable), device_type,
                                    None, warnings)
    assert list(out) == ["vanilla", "sdpa"]
    assert all(s.status == "unavailable" and words in s.reason for s in out.values())
    assert len(warnings) == 1 and words in warnings[0] and "\n" not in warnings[0]
    assert not any(tmp_path.iterdir())


def test_find_ncu_takes_a_path_or_a_name_on_the_path(tmp_path, monkeypatch):
    ncu, _ = _fake_ncu(tmp_path)
    assert ncu_measure.find_ncu(str(ncu)) == str(ncu)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert ncu_measure.find_ncu(ncu.name) == str(ncu)
    assert ncu_measure.find_ncu(str(tmp_path / "missing")) is None


def _composed(*overrides):
    from hydra import compose, initialize_config_dir

    from profiler_kit import config
    config.register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_config_defaults_measure_nothing():
    from profiler_kit import config
    cfg = _composed()
    config.validate(cfg)
    assert (cfg.measure, cfg.ncu.metrics, cfg.ncu.executable) == ("none", "lean", "ncu")
    assert set(config.NCU_METRIC_SETS) == set(nsight.METRIC_SETS)
    config.validate(_composed("measure=ncu", "ncu.metrics=full", "ncu.timeout_s=1"))


@pytest.mark.parametrize("override,words", [
    ("measure=foo", "measure=foo is not known: use one of none, ncu"),
    ("ncu.metrics=foo", "ncu.metrics=foo is not known: use one of lean, full"),
    ("ncu.timeout_s=0", "ncu.timeout_s=0 must be at least 1"),
    ("measure=ncu profiler.enabled=false", "measure=ncu joins each measurement to the mode's trace"),
])
def test_config_refuses_bad_measure_settings_in_one_line(override, words):
    from profiler_kit.config import ConfigError, validate
    with pytest.raises(ConfigError) as exc:
        validate(_composed(*override.split()))
    assert words in str(exc.value) and "\n" not in str(exc.value)


# --------------------------------------------------------------------------------------------
# The join on the real data
# --------------------------------------------------------------------------------------------

def _analyze(res: str, mode: str, measurement=None, source=None):
    from profiler_kit.analysis import analyze_trace
    measurement = _measurement(res, mode) if measurement is None else measurement
    return analyze_trace(str(SD_NCU / res / f"trace_{mode}.json.gz"), spec="h200", label=mode,
                         measurement=measurement, measurement_source=source or f"ncu_{mode}.json.gz").record


@functools.lru_cache(maxsize=None)
def _joined(res: str, mode: str):
    return _analyze(res, mode)


@pytest.mark.parametrize("res,mode", ALL)
def test_every_mode_joins_every_kernel(res, mode):
    a = _joined(res, mode)
    m = a.measured
    meas = _measurement(res, mode)
    assert m.measurement == f"ncu_{mode}.json.gz" and m.window == "ProfilerStep#1"
    assert m.trace_kernels == m.measured_kernels == m.joined_kernels == len(meas.kernels) == a.kernels.count
    assert m.coverage == 1.0 and m.joined_time_fraction == pytest.approx(1.0) and m.conclusive
    assert m.shape_mismatches == 0
    assert [k.trace_index for k in m.kernels] == list(range(m.trace_kernels))
    assert [k.ncu_index for k in m.kernels] == [k.index for k in meas.kernels]
    by_index = {k.index: k for k in meas.kernels}
    assert all(nsight.base_name(k.name) == nsight.base_name(by_index[k.ncu_index].name) for k in m.kernels)
    assert m.tool_version == meas.tool_version and m.device_name == "NVIDIA H200"
    assert "measurement_join_incomplete" not in [f.rule for f in a.findings]
    assert [f.rule for f in a.findings].count("estimate_vs_measured") == 1


def test_a_missing_and_a_foreign_kernel_cost_one_pair_each_and_shift_nothing():
    meas = _measurement("512", "vanilla")
    keys = [nsight.base_name(k.name) for k in meas.kernels]
    drop = next(i for i in range(len(keys) // 2, len(keys) - 1)
                if len({keys[i - 1], keys[i], keys[i + 1]}) == 3)
    foreign = NcuKernel(index=10**6, name="void foreign::not_in_any_trace<int>(int)", grid=[1, 1, 1],
                        block=[32, 1, 1], dram_read_bytes=1e12, l2_write_bytes=1e12, duration_ns=1.0)
    kernels = list(meas.kernels)
    dropped = kernels.pop(drop)
    kernels.insert(len(kernels) // 3, foreign)
    perturbed = _analyze("512", "vanilla", msgspec.structs.replace(meas, kernels=kernels), "perturbed.json").measured
    whole = _joined("512", "vanilla").measured
    assert perturbed.measured_kernels == whole.measured_kernels
    assert perturbed.joined_kernels == whole.joined_kernels - 1
    assert perturbed.coverage == pytest.approx(whole.coverage - 1 / whole.trace_kernels)
    pairs = {(k.trace_index, k.ncu_index) for k in perturbed.kernels}
    assert pairs == {(k.trace_index, k.ncu_index) for k in whole.kernels if k.ncu_index != dropped.index}
    assert perturbed.total.hbm_bytes_measured == pytest.approx(
        whole.total.hbm_bytes_measured - dropped.hbm_bytes_measured)
    assert perturbed.conclusive and perturbed.shape_mismatches == 0


def test_a_measurement_of_another_resolution_is_flagged():
    """768 px's vanilla measured against 512 px's trace: many kernel names coincide (the same
    elementwise and norm kernels), but the GEMM tiles, the softmax and the grids differ. Fewer
    than MIN_JOIN_COVERAGE of the kernels join, most of the joined pairs differ in grid, and the
    verdict is withheld."""
    a = _analyze("512", "vanilla", _measurement("768", "vanilla"), "ncu_vanilla_768.json.gz")
    m = a.measured
    assert (m.trace_kernels, m.measured_kernels) == (1324, 1319)
    assert 0.3 < m.coverage < MIN_JOIN_COVERAGE and not m.conclusive
    assert m.shape_mismatches > m.joined_kernels / 2
    rules = [f.rule for f in a.findings]
    assert "measurement_join_incomplete" in rules and "estimate_vs_measured" not in rules
    finding = next(f for f in a.findings if f.rule == "measurement_join_incomplete")
    assert finding.level == "warn" and finding.figures["coverage"] == pytest.approx(m.coverage)
    assert f"{m.joined_kernels} of 1324 kernels joined" in finding.detail


def test_a_measurement_without_kernels_joins_nothing_and_says_so(tmp_path):
    from profiler_kit.records import write_record
    empty = msgspec.structs.replace(_measurement("512", "sdpa_cudnn"), kernels=[])
    a = _analyze("512", "sdpa_cudnn", empty, "empty.json")
    m = a.measured
    assert (m.measured_kernels, m.joined_kernels, m.coverage, m.conclusive) == (0, 0, 0.0, False)
    assert m.total.kernels == 0 and m.total.error is None and m.total.within is None
    assert m.attention is None and m.by_category == [] and m.misses == []
    finding = next(f for f in a.findings if f.rule == "measurement_join_incomplete")
    assert finding.figures["coverage"] == 0.0
    # ... and the analysis with it reads back
    write_record(tmp_path / "analysis.json", a)
    again = read_analysis(tmp_path / "analysis.json")
    assert again.measured == m
    assert [f.rule for f in again.findings] == [f.rule for f in a.findings]


# --------------------------------------------------------------------------------------------
# Invariants of the joined figures (not the cost model's numbers: those are moving)
# --------------------------------------------------------------------------------------------

def _groups(m):
    return [m.total, *([m.attention] if m.attention else []), *m.by_category, *m.by_attention_call]


@pytest.mark.parametrize("res,mode", ALL)
def test_measured_groups_add_up(res, mode):
    m = _joined(res, mode).measured
    for g in _groups(m):
        assert g.hbm_bytes_measured == pytest.approx(g.dram_read_bytes + g.written_bytes, rel=1e-12)
        assert g.hbm_bytes_measured > 0
    assert sum(c.hbm_bytes_measured for c in m.by_category) == pytest.approx(m.total.hbm_bytes_measured, rel=1e-12)
    assert sum(c.hbm_bytes_estimate for c in m.by_category) == pytest.approx(m.total.hbm_bytes_estimate, rel=1e-12)
    assert sum(c.kernels for c in m.by_category) == m.total.kernels == m.joined_kernels
    assert sum(c.time_share for c in m.by_category) == pytest.approx(1.0)
    assert m.total.hbm_bytes_measured == pytest.approx(sum(k.hbm_bytes_measured for k in m.kernels), rel=1e-12)
    # the attention total is its layers
    assert len(m.by_attention_call) == 32          # SD 1.5: 16 transformer blocks, self + cross each
    assert sum(c.hbm_bytes_measured for c in m.by_attention_call) == pytest.approx(
        m.attention.hbm_bytes_measured, rel=1e-12)
    assert sum(c.kernels for c in m.by_attention_call) == m.attention.kernels
    att_class = next(c for c in m.by_category if c.label == "attention")
    assert att_class.hbm_bytes_measured == m.attention.hbm_bytes_measured
    # the measured bound moves kernel time between bounds, never adds or loses any
    assert sum(m.bound_us_measured.values()) == pytest.approx(sum(m.bound_us_estimate.values()))
    assert sum(m.bound_us_estimate.values()) == pytest.approx(m.total.gpu_us)
    # verdicts follow the tolerances
    assert m.total.tolerance == 0.10 and m.attention.tolerance == 0.10
    for c in m.by_category:
        assert c.tolerance == (0.20 if c.time_share >= 0.01 else None)
        if c.within is not None:
            assert c.within == (abs(c.error) <= 0.20)
    assert all(g.within is False for g in m.misses)


@pytest.mark.parametrize("res", ["512", "768"])
def test_vanilla_attention_moves_its_score_matrices_four_times(res):
    """The vanilla processor writes the N x N scores (baddbmm), reads and writes them (softmax)
    and reads them again (bmm): at the top level, where the scores dwarf Q, K, V and the output,
    each self-attention layer's measured bytes are 4 x batch x heads x N^2 x 2 B, within 5 %."""
    a = _joined(res, "vanilla")
    calls = {c.scope: c for c in a.attention.calls}
    n_top = max(c.q_tokens for c in calls.values())
    assert n_top == (4096 if res == "512" else 9216)
    top = [g for g in a.measured.by_attention_call if calls[g.label].kind == "self"
           and calls[g.label].q_tokens == n_top]
    assert len(top) == 5                         # down_blocks.0 (2) and up_blocks.3 (3)
    for g in top:
        c = calls[g.label]
        scores = c.batch_x_heads * c.q_tokens * c.kv_tokens * 2
        assert g.hbm_bytes_measured == pytest.approx(4 * scores, rel=0.05)


@pytest.mark.parametrize("res,factor", [("512", 30), ("768", 80)])
def test_vanilla_attention_moves_far_more_than_cudnn(res, factor):
    vanilla = _joined(res, "vanilla").measured.attention.hbm_bytes_measured
    cudnn = _joined(res, "sdpa_cudnn").measured.attention.hbm_bytes_measured
    assert vanilla > factor * cudnn


def test_the_rest_of_the_unet_moves_the_same_bytes_in_every_mode():
    """Only attention differs between the modes: conv and GEMM traffic agree within 1 %."""
    for res, modes in MODES.items():
        for label in ("conv", "gemm", "norm"):
            values = [next(c for c in _joined(res, m).measured.by_category if c.label == label).hbm_bytes_measured
                      for m in modes]
            assert max(values) / min(values) < 1.01, (res, label, values)


# --------------------------------------------------------------------------------------------
# Register spills and FlashAttention's split-KV partials (the xformers miss, explained)
# --------------------------------------------------------------------------------------------

SPILLS = DATA / "ncu" / "h200_attention_spills_raw.csv"
BH, D = 16, 40          # SD 1.5 top level, batch 2 x 8 heads of 40 (scripts/gpu/attention_spills.py)


def test_spill_stores_are_l2_traffic_and_leave_the_written_bytes():
    """One call of each fused kernel on SD 1.5's top-level shape (4,096 and 9,216 tokens), under
    ncu with the local-memory counter: once its spill stores are taken out, FlashAttention-2's
    writes are exactly its output and log-sum-exp, like the other two kernels' (which write 14 %
    more), though it wrote 14x (4,096 tokens) and 30x (9,216) that into L2."""
    kernels, missing = nsight.parse_csv(SPILLS.read_text(), "lean")
    assert not {LOCAL_STORES, "lts__t_sectors_srcunit_tex_op_write.sum"} & set(missing)
    assert [nsight.base_name(k.name) for k in kernels] == [
        "flash_fwd_kernel", "cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7_64x128x64_4x1x1_cga1x1x1_kernel0_0",
        "fmha_cutlassF_f16_aligned_64x64_rf_sm80"] * 2
    for n, (flash, cudnn, cutlass) in zip((4096, 9216), (kernels[:3], kernels[3:])):
        out_and_lse = BH * n * D * 2 + BH * n * 4
        assert flash.written_bytes == out_and_lse                          # exact
        assert flash.l2_write_bytes > 14 * out_and_lse and flash.local_store_bytes > 13 * out_and_lse
        assert cudnn.local_store_bytes == 0 and cudnn.written_bytes == cudnn.l2_write_bytes
        for k in (cudnn, cutlass):                     # O + LSE and some 14 % more, no spills
            assert 0 <= k.written_bytes - out_and_lse < 0.15 * out_and_lse
        # so all three now move about Q, K and V once plus O: within 10 % of each other
        moved = [k.hbm_bytes_measured for k in (flash, cudnn, cutlass)]
        assert max(moved) / min(moved) < 1.10


def test_spills_overstate_nothing_once_counted():
    """Without the counter the written bytes are what went into L2 (older measurements), with
    it they never drop below what reached DRAM."""
    k = NcuKernel(index=0, name="k", dram_read_bytes=1e6, dram_write_bytes=3e6, l2_write_bytes=9e6)
    assert k.written_bytes == 9e6 and k.local_store_bytes is None
    spilled = msgspec.structs.replace(k, local_store_bytes=8e6)
    assert spilled.written_bytes == 3e6                # evicted spills did reach DRAM: kept
    assert msgspec.structs.replace(k, local_store_bytes=2e6).written_bytes == 7e6


@pytest.fixture(scope="module", params=[("512", "xformers"), ("768", "xformers"), ("512", "sdpa_flash"),
                                        ("768", "sdpa_flash")], ids=lambda p: "-".join(p))
def xformers_with_spills(request):
    """The two modes that run PyTorch's FlashAttention-2 kernel, measured with the local-memory
    counter (tests/data/sd-ncu/README.md)."""
    from profiler_kit.analysis import analyze_trace
    res, mode = request.param
    folder = SD_NCU / f"{res}-{mode}"
    return res, analyze_trace(str(folder / f"trace_{mode}.json.gz"), spec="h200", label=mode,
                              measurement=read_ncu_measurement(folder / f"ncu_{mode}.json.gz"),
                              measurement_source=f"ncu_{mode}.json.gz").record


def test_flash_attention_meets_the_goal_once_spills_and_split_kv_are_accounted(xformers_with_spills):
    """Issue 11's goal for xformers (missed before by -66 % / -77 % in attention) and sdpa_flash:
    total and attention within 10 %, every class over 1 % of the time within 20 %, every layer
    within 20 %."""
    m = xformers_with_spills[1].measured
    assert m.conclusive and m.coverage == 1.0 and m.shape_mismatches == 0
    assert abs(m.total.error) < 0.05 and abs(m.attention.error) < 0.07
    assert not m.misses and all(c.within for c in m.by_category if c.tolerance)
    assert max(abs(g.error) for g in m.by_attention_call) < 0.15
    # the top level's FlashAttention kernels spill (20 of the 32 layers' kernels store over 1 MB);
    # no kernel is left flagged as rewriting L2 once spills are counted
    assert m.attention.spilling_kernels == 20 and m.attention.local_store_bytes > 3e8
    assert m.total.rewriting_kernels == 0
    assert all(k.local_store_bytes is not None for k in m.kernels)


def test_split_kv_partials_are_estimated_per_kernel(xformers_with_spills):
    """FlashAttention-2 splits the keys where batch x heads x query blocks leave SMs idle: the
    split kernel writes fp32 partials that its combine kernel reads back. With the partials
    each such layer's estimate lands within 12 % of what ncu counted (up to -80 % without)."""
    res, record = xformers_with_spills
    pairs = [k for k in record.measured.kernels if "splitkv" in k.name]
    split = [k for k in pairs if "combine" not in k.name]
    combine = [k for k in pairs if "combine" in k.name]
    # as launched (grid.y = splits): 512 px, every layer at 256 tokens and the 64-token mid
    # block's cross-attention (11); 768 px, the 576-token self-attention layers (5 splits) and
    # both of the 144-token mid block's layers (7)
    assert len(split) == len(combine) == {"512": 11, "768": 7}[res]
    layers = {k.attention_call for k in pairs}
    for g in record.measured.by_attention_call:      # each split layer as a whole
        if g.label in layers:
            assert abs(g.error) < 0.12, g.label
    for w, r in zip(split, combine):                 # the partials one writes, the other reads back
        assert w.trace_index < r.trace_index and r.dram_read_bytes == pytest.approx(w.written_bytes, rel=0.03)


def test_spilling_kernels_get_a_finding_with_their_share_of_the_time(xformers_with_spills):
    """The FlashAttention-2 kernel's spills cost time (364 us a call against cuDNN's 203 us on the
    top-level shape): a finding names it, with the share of the kernel time its spilling calls
    hold (5 % or more: SPILL_SHARE_MIN) and what they stored."""
    from profiler_kit.analysis.findings import SPILL_SHARE_MIN
    res, record = xformers_with_spills
    finding = next(f for f in record.findings if f.rule == "register_spills")
    spilled = [k for k in record.measured.kernels if k.spilled]
    joined_us = sum(k.dur_us for k in record.measured.kernels)
    assert finding.figures["spill_us"] == pytest.approx(sum(k.dur_us for k in spilled))
    assert finding.figures["share_of_kernel_time"] == pytest.approx(finding.figures["spill_us"] / joined_us)
    assert finding.figures["share_of_kernel_time"] >= SPILL_SHARE_MIN
    assert finding.figures["local_store_bytes"] == pytest.approx(sum(k.local_store_bytes for k in spilled))
    assert finding.detail.index("flash_fwd_kernel (20 calls") < finding.detail.index("tensorTransformGeneric (1 call,")


def test_no_spill_finding_without_the_counter_or_under_the_share():
    from profiler_kit.analysis.findings import register_spills
    old = _joined("512", "sdpa_cudnn")
    assert not [f for f in old.findings if f.rule == "register_spills"]
    # the same kernels, one of them spilling but holding under 5 % of the time: no finding
    m = old.measured
    short = min(m.kernels, key=lambda k: k.dur_us)
    kernels = [msgspec.structs.replace(k, local_store_bytes=5e6 if k is short else 0.0) for k in m.kernels]
    quiet = msgspec.structs.replace(old, measured=msgspec.structs.replace(m, kernels=kernels))
    assert register_spills({"sdpa_cudnn": quiet}) == []


def test_old_measurements_without_the_spill_counter_keep_their_verdict():
    """The first xformers measurement (no local-memory counter) still misses, and says why."""
    m = _joined("512", "xformers").measured
    assert all(k.local_store_bytes is None for k in m.kernels) and m.attention.spilling_kernels == 0
    assert m.attention.within is False and m.total.rewriting_kernels > 0


# --------------------------------------------------------------------------------------------
# The CLI
# --------------------------------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "profiler_kit.analyze", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def test_analyze_trace_with_ncu(tmp_path):
    out = _cli(SD_NCU / "512" / "trace_sdpa_cudnn.json.gz", "--ncu", SD_NCU / "512" / "ncu_sdpa_cudnn.json.gz",
               "--out", tmp_path, "--gpu", "h200")
    assert out.returncode == 0, out.stderr
    d = json.loads((tmp_path / "analysis.json").read_text())
    assert d["measured"]["joined_kernels"] == d["measured"]["trace_kernels"] == 1132
    assert d["measured"]["measurement"] == "ncu_sdpa_cudnn.json.gz"
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("ncu ")]
    assert len(lines) == 1
    assert lines[0].startswith("ncu ncu_sdpa_cudnn.json.gz: joined 1132 of 1132 kernels (100.0 % of kernel time); "
                               "total bytes estimated ")
    # what the counters saw (the estimates beside them are the cost model's, and move)
    assert ", measured 10.7 GB (" in lines[0] and "; attention bytes estimated " in lines[0]
    assert ", measured 296 MB (" in lines[0]
    html = (tmp_path / "report.html").read_text()
    assert 'id="measured"' in html


def _bad(tmp_path, *args) -> str:
    out = _cli(*args, "--out", tmp_path / "out")
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert not (tmp_path / "out").exists()
    return lines[0]


def test_analyze_refuses_a_bad_ncu_file_in_one_line(tmp_path):
    trace = SD_NCU / "512" / "trace_sdpa_cudnn.json.gz"
    line = _bad(tmp_path, trace, "--ncu", tmp_path / "missing.json")
    assert line.startswith("error: --ncu: cannot read ") and "No such file" in line
    assert line.endswith("give an ncu_<mode>.json written by measure=ncu")
    not_json = tmp_path / "ncu.json"
    not_json.write_text("hello")
    assert "--ncu: " in (line := _bad(tmp_path, trace, "--ncu", not_json)) and "not valid JSON" in line
    cut = tmp_path / "ncu_cut.json.gz"
    cut.write_bytes((SD_NCU / "512" / "ncu_sdpa_cudnn.json.gz").read_bytes()[:4000])
    assert "--ncu: " in (line := _bad(tmp_path, trace, "--ncu", cut)) and "Compressed file ended" in line
    wrong = tmp_path / "not_a_measurement.json"
    wrong.write_text(json.dumps({"kernels": "many"}))
    line = _bad(tmp_path, trace, "--ncu", wrong)
    assert "--ncu: " in line and "not a valid NcuMeasurement record" in line and "$.kernels" in line
    ncu = SD_NCU / "512" / "ncu_sdpa_cudnn.json.gz"
    assert "one measurement per trace" in _bad(tmp_path, trace, "--ncu", ncu, "--ncu", ncu)


def test_analyze_refuses_ncu_for_a_run_folder(tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(SD_NCU / "512", folder)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert "drop --gpu / --label / --roofs / --roof-basis / --ncu" in _bad(
        tmp_path, folder, "--ncu", folder / "ncu_vanilla.json.gz")
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_analyze_run_folder_joins_every_mode_and_reports_it(tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(SD_NCU / "512", folder)
    out = _cli(folder)
    assert out.returncode == 0, out.stderr
    summary = read_summary(folder / "summary.json")
    assert list(summary.modes) == MODES["512"]
    for mode, rec in summary.modes.items():
        m = rec.analysis.measured
        assert m is not None and m.measurement == f"ncu_{mode}.json.gz"
        assert m.joined_kernels == m.trace_kernels == rec.measure.kernels
        assert rec.measure.status == "measured"
    assert [f.subject for f in summary.findings if f.rule == "estimate_vs_measured"] == MODES["512"]
    html = (folder / "report.html").read_text()
    section = re.search(r'<section id="measured">(.*?)</section>', html, re.S).group(1)
    chunks = dict(re.findall(r"<h3>(\w+)</h3>(.*?)(?=<h3>|$)", section, re.S))
    assert list(chunks) == MODES["512"]
    for mode, rec in summary.modes.items():
        rows = re.findall(r"<tr><td><code>([^<]*)</code></td>", chunks[mode])
        # one row per category after the totals; attention, a total and a class over the same
        # kernels, is shown once (as the total)
        labels = ["total", "attention"] + [c.label for c in rec.analysis.measured.by_category
                                           if c.label != "attention"]
        assert rows[:len(labels)] == labels
        assert rows[len(labels):] == [c.label for c in rec.analysis.measured.by_attention_call]
    assert section.count("<summary>Per attention layer (32)</summary>") == 4
    assert "down_blocks.0.attentions.0.transformer_blocks.0.attn1" in section


# --------------------------------------------------------------------------------------------
# Untrusted names in the measured section render as text
# --------------------------------------------------------------------------------------------

def test_measured_section_escapes_kernel_and_tool_names(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from report_support import IMG_PAYLOAD, SCRIPT_PAYLOAD, poisoned
    from test_report_escaping import assert_inert

    from profiler_kit.report import render_trace_report

    a = _joined("512", "sdpa_cudnn")
    clean = render_trace_report({"cudnn": a}, None, tmp_path / "clean.html").read_text(encoding="utf-8")
    dirty_a = poisoned(a)
    dirty_m = msgspec.structs.replace(dirty_a.measured, measurement="ncu" + SCRIPT_PAYLOAD,
                                      tool_version="Nsight" + IMG_PAYLOAD, device_name="H200" + SCRIPT_PAYLOAD,
                                      window="step" + IMG_PAYLOAD)
    assert any(SCRIPT_PAYLOAD in k.name or IMG_PAYLOAD in k.name for k in dirty_m.kernels)
    dirty_a = msgspec.structs.replace(dirty_a, measured=dirty_m)
    dirty = render_trace_report({"cudnn" + IMG_PAYLOAD: dirty_a}, None,
                                tmp_path / "dirty.html").read_text(encoding="utf-8")
    assert_inert(clean, dirty)
    section = re.search(r'<section id="measured">(.*?)</section>', dirty, re.S).group(1)
    assert "Nsight&lt;img src=x onerror=" in section
    assert "&lt;/script&gt;&lt;script&gt;window.__pwned=1" in section


def test_a_name_join_of_other_launches_is_not_conclusive(tmp_path):
    """Names alone pair kernels of another configuration: when most pairs ran with another grid or
    block the join gives no verdict, whatever its coverage."""
    import msgspec
    from profiler_kit.records import MeasuredTraffic
    base = MeasuredTraffic(measurement="m.json", trace_kernels=100, measured_kernels=100, joined_kernels=100)
    assert base.conclusive
    assert msgspec.structs.replace(base, shape_mismatches=5).conclusive
    assert not msgspec.structs.replace(base, shape_mismatches=60).conclusive


def test_a_timeout_kills_ncu_and_the_process_it_launched(tmp_path):
    """ncu.timeout_s stops the whole process group: no measured child is left on the GPU."""
    from profiler_kit.capture import ncu_measure
    fake, marker = _sleeping_group_ncu(tmp_path)
    status = ncu_measure.measure_mode(str(tmp_path), "vanilla", str(fake), "lean", 1.5, None)
    assert status.status == "failed" and "ncu.timeout_s" in status.reason
    assert _still_running(int(marker.read_text())) is None, "the launched child outlived the timeout"


def test_measured_csv_has_one_row_per_joined_kernel(tmp_path):
    """measured.csv beside analysis.json: the join per kernel, its error as the record computes it."""
    import csv
    from profiler_kit.analyze import main
    data = Path(__file__).parent / "data" / "sd-ncu" / "768"
    out = tmp_path / "out"
    assert main([str(data / "trace_sdpa_cudnn.json.gz"), "--ncu", str(data / "ncu_sdpa_cudnn.json.gz"),
                 "--out", str(out), "--no-report"]) == 0
    from profiler_kit.records import read_analysis
    measured = read_analysis(out / "analysis.json").measured
    with open(out / "measured.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == measured.joined_kernels == 1127
    assert sum(float(r["hbm_bytes_measured"]) for r in rows) == pytest.approx(measured.total.hbm_bytes_measured)
    first = rows[0]
    k = measured.kernels[0]
    assert first["name"] == k.name and first["bound_measured"] == k.bound_measured
    if k.hbm_bytes_measured:
        assert float(first["error"]) == pytest.approx(k.hbm_bytes_estimate / k.hbm_bytes_measured - 1)


def test_a_join_of_graph_replayed_kernels_gives_no_verdict():
    """Under CUDA-graph replay the trace has no ops: the joined kernels have no estimates, which
    is not 'zero bytes' — the join says so and draws no verdict (real H200 graph trace; the
    measurement holds its own kernels' names, as ncu would count them)."""
    from profiler_kit.analysis import analyze_trace
    from profiler_kit.records import NcuKernel, NcuMeasurement
    from profiler_kit.trace import KERNEL
    import numpy as np
    path = Path(__file__).parent / "data" / "sd-graphs" / "trace_sdpa_cudnn.json.gz"
    plain = analyze_trace(path, spec="h200")
    gpu = plain.table.trace.gpu
    kernels = np.flatnonzero(gpu.kind == KERNEL)
    kernels = kernels[np.argsort(gpu.start_ns[kernels], kind="stable")]
    measured = NcuMeasurement(kernels=[NcuKernel(index=i, name=plain.table.name(int(k)), dram_read_bytes=1e6,
                                                 l2_write_bytes=1e6, dram_write_bytes=0.0)
                                       for i, k in enumerate(kernels.tolist())])
    m = analyze_trace(path, spec="h200", measurement=measured, measurement_source="m.json").record
    assert m.measured.coverage > 0.9
    assert m.measured.costed_time_fraction < 0.5
    assert not m.measured.conclusive
    found = [f for f in m.findings if f.rule == "measurement_join_incomplete"]
    assert found and "CUDA graph" in found[0].title
    assert not [f for f in m.findings if f.rule == "estimate_vs_measured"]


def test_ctrl_c_during_ncu_stops_its_process_group(tmp_path):
    """ncu runs in its own session (so a timeout can kill its whole group); Ctrl-C of the run then
    no longer reaches it from the terminal, and the run must stop it itself instead of waiting."""
    import signal
    import time
    from profiler_kit.capture import ncu_measure
    fake, marker = _sleeping_group_ncu(tmp_path)

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    start = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            ncu_measure._run_in_own_group([str(fake)], 60)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.perf_counter() - start < 10          # did not wait for the 60 s group
    assert _still_running(int(marker.read_text())) is None


def _sleeping_group_ncu(tmp_path):
    """A fake ncu that launches a child (its pid written down) and both sleep: (executable, pid file)."""
    marker = tmp_path / "child.pid"
    fake = tmp_path / "ncu"
    fake.write_text("#!/bin/sh\n(sleep 60 & echo $! > %s; wait) \nsleep 60\n" % marker)
    fake.chmod(0o755)
    return fake, marker


def _still_running(pid: int) -> str | None:
    """The process's state while it runs or sleeps; None once gone or a zombie awaiting reaping."""
    import time
    time.sleep(0.2)
    try:
        state = next(line for line in open(f"/proc/{pid}/status") if line.startswith("State:"))
    except FileNotFoundError:
        return None
    return state if ("sleeping" in state or "running" in state) else None

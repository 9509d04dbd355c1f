"""The experiment end to end on this CPU with the tiny UNet: every mode that can run here runs
and agrees with the reference, the run folder follows the summary.json contract, modes that
cannot run say why, and the OOM path goes through the real handler."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = ["model=tiny", "resolution=256", "warmup=1", "iterations=3"]


def run_cli(args, cwd, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "profiler_kit", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run") / "tiny"
    proc = run_cli([*TINY, "modes=[all]", f"hydra.run.dir={run_dir}"], cwd=tmp_path_factory.mktemp("cwd"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    return run_dir, summary, proc


def test_summary_follows_the_contract(tiny_run):
    run_dir, s, _ = tiny_run
    assert s["schema_version"] == 2 and s["analyzed"] is True
    for key in ("config", "environment", "comparison", "modes", "reference_mode", "efficient_mode",
                "efficient_mode_reason", "command", "findings", "warnings"):
        assert key in s, key
    # one reader: the typed record decodes what the pipeline wrote, and writes it back unchanged
    from profiler_kit.records import read_summary, to_json
    assert json.loads(to_json(read_summary(run_dir / "summary.json"))) == s
    env = s["environment"]
    for key in ("device", "gpu_name", "driver", "cuda", "torch", "diffusers", "xformers", "host"):
        assert key in env, key
    # cpu_threads=null: one thread per CPU the process may run on (unless the user's environment set it)
    import os
    if env["cpu_threads_from"] == "affinity":
        assert env["cpu_threads"] >= len(os.sched_getaffinity(0))
    assert s["config"]["model"]["name"] == "tiny" and s["config"]["resolution"] == 256
    assert s["run"]["batch"] == 2                        # classifier-free guidance doubles the batch
    assert s["run"]["latent_shape"] == [2, 4, 32, 32]    # 256 px / 8
    assert list(s["modes"])[0] == "vanilla"


def test_every_mode_that_can_run_here_agrees_with_the_reference(tiny_run):
    _, s, _ = tiny_run
    ok = {m for m, r in s["modes"].items() if r["status"] == "ok"}
    # On a CPU: the unfused chain, PyTorch's choice, its CPU flash kernel and the math fallback.
    assert {"vanilla", "sdpa", "sdpa_flash", "sdpa_math"} <= ok
    for mode in ok:
        rec = s["modes"][mode]
        assert rec["output_match"] is True, (mode, rec["output_rel_error"])
        assert 0 <= rec["output_rel_error"] < 1e-4
        st = rec["step_ms"]
        assert st["n"] == 3 and 0 < st["min_ms"] <= st["median_ms"] and st["iqr_ms"] >= 0
        assert st["noisy"] == (st["iqr_ms"] > 0.10 * st["median_ms"])
        assert rec["loop_it_per_s"] > 0
        assert rec["trace"] == f"trace_{mode}.json.gz"
    for mode in ok - {"vanilla"}:
        assert s["comparison"][mode]["speedup"] > 0


def test_modes_that_cannot_run_say_why(tiny_run):
    _, s, _ = tiny_run
    xf = s["modes"]["xformers"]
    assert xf["status"] == "unavailable" and "CUDA" in xf["reason"]
    for mode in ("sdpa_efficient", "sdpa_cudnn"):
        assert s["modes"][mode]["status"] == "unavailable"
        assert s["modes"][mode]["reason"].startswith("PyTorch:")
    # No xformers on a CPU: the fallback is said plainly, in the summary and its warnings.
    assert s["efficient_mode"] == "sdpa" and "cpu" in s["efficient_mode_reason"]
    assert any("not xformers" in w for w in s["warnings"])


def test_the_headline_compares_a_fused_mode_the_run_measured():
    """modes=[vanilla,sdpa_cudnn] on an H200 without xformers (2026-11-29, scripts/gpu/calibrate.sh):
    the device's choice, sdpa_efficient, was never run, and the headline said "not compared"."""
    from profiler_kit.capture.attention_modes import headline_efficient
    ok = {"vanilla": True, "sdpa_cudnn": True, "sdpa_flash": False, "sdpa_efficient": True}
    mode, why = headline_efficient(["vanilla", "sdpa_cudnn"], "vanilla", "sdpa_efficient", "no xformers", ok)
    assert mode == "sdpa_cudnn" and "sdpa_efficient is this device's choice (no xformers)" in why
    assert headline_efficient(["vanilla", "sdpa_flash", "sdpa_cudnn"], "vanilla", "xformers", "w", ok)[0] == "sdpa_cudnn"
    assert headline_efficient(["vanilla", "sdpa_efficient"], "vanilla", "sdpa_efficient", "w", ok) == ("sdpa_efficient", "w")
    assert headline_efficient(["vanilla"], "vanilla", "sdpa_efficient", "w", ok) == ("sdpa_efficient", "w")


def test_run_folder_holds_traces_log_and_report(tiny_run):
    run_dir, s, proc = tiny_run
    for mode, rec in s["modes"].items():
        if rec["status"] != "ok":
            continue
        with gzip.open(run_dir / rec["trace"], "rt") as fh:
            trace = json.load(fh)
        names = {e.get("name", "") for e in trace["traceEvents"]}
        assert any(n.startswith("module::") and n.endswith(".attn1") for n in names), mode
        assert "analysis" in rec and rec["analysis"]["kernels"]["count"] == 0   # a CPU trace has no kernels
    assert (run_dir / "profiler_kit.log").exists()            # Hydra job name, not __main__.log
    assert "speed-up" in (run_dir / "profiler_kit.log").read_text()   # the readable table
    assert (run_dir / "report.html").stat().st_size > 100_000
    assert not list(run_dir.glob(".partial-*"))               # nothing half-written left behind


@pytest.mark.parametrize("override, expect", [
    ("resolution=100", "resolution=96"),
    ("resolution=abc", "resolution"),
    ("modes=[vanilla,foo]", "unknown attention mode 'foo'"),
    ("iterations=-1", "iterations"),
    ("warmup=-2", "warmup"),
    ("cpu_threads=0", "cpu_threads=null"),
    ("model=nope", "sd15"),
    ("+gpu=nope", "h100"),
    ("modes=all", "modes=[all]"),
    ("dtype=fp8", "bf16"),
    ("device=tpu", "cuda:N"),
    ("foo=1", "not a setting"),
    ("model.pretrained=/no/such/folder", "local diffusers model"),
])
def test_bad_overrides_get_one_line_and_no_run_folder(tmp_path, override, expect):
    proc = run_cli([override], cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("profiler_kit: "), proc.stderr
    assert expect in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "outputs").exists()


def test_a_bad_value_in_a_sweep_is_caught_before_any_run(tmp_path):
    proc = run_cli(["-m", "model=tiny", "resolution=256,100"], cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "resolution=96" in proc.stderr
    assert not (tmp_path / "multirun").exists()


def test_two_runs_started_together_get_their_own_folders(tmp_path):
    args = [*TINY[:2], "warmup=0", "iterations=1", "modes=[vanilla]", "profiler.enabled=false",
            "report.enabled=false"]
    procs = [subprocess.Popen([sys.executable, "-m", "profiler_kit", *args], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    folders = [p for p in (tmp_path / "outputs").glob("*/*") if (p / "summary.json").exists()]
    assert len(folders) == 2


def test_out_of_memory_is_a_result_and_the_next_mode_runs(tmp_path, monkeypatch):
    """vanilla raises torch.cuda.OutOfMemoryError inside its attention processor, as the N x N
    allocation does on a GPU; the experiment's own handler must record it and go on."""
    import torch
    from hydra import compose, initialize_config_dir

    from profiler_kit import config
    from profiler_kit.capture import attention_modes
    from profiler_kit.__main__ import run_pipeline

    class OutOfMemoryProcessor:
        def __call__(self, *args, **kwargs):
            raise torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 12.50 GiB. GPU 0 has a total capacity of 79.19 GiB")

    real = attention_modes._processor
    monkeypatch.setattr(attention_modes, "_processor",
                        lambda mode, model=None: OutOfMemoryProcessor() if mode == "vanilla" else real(mode, model))
    config.register()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[*TINY, "modes=[vanilla,sdpa]", "profiler.enabled=false",
                                           "report.enabled=false"])
    monkeypatch.chdir(tmp_path)
    summary = run_pipeline(cfg)            # capture, then the analysis of the folder, as the CLI does
    van = summary.modes["vanilla"]
    assert van.status == "oom" and van.oom_requested_bytes == int(12.5 * 2**30)
    assert "out of memory" in van.reason
    assert summary.modes["sdpa"].status == "ok"
    assert summary.comparison == {}                 # nothing to compare with a reference that did not run
    assert any("reference mode vanilla did not run (oom)" in w for w in summary.warnings)
    assert [f.rule for f in summary.findings if f.subject == "vanilla"] == ["out_of_memory"]
    assert json.loads((tmp_path / "summary.json").read_text())["modes"]["vanilla"]["status"] == "oom"


def test_a_regular_wheel_install_finds_conf(tmp_path):
    """Not editable: the configs must travel inside the wheel (as profiler_kit.conf)."""
    wheel_dir, site, cwd = tmp_path / "wheel", tmp_path / "site", tmp_path / "elsewhere"
    cwd.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(wheel_dir), str(REPO)], check=True, capture_output=True, timeout=300)
    wheel = next(wheel_dir.glob("profiler_kit-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    assert (site / "profiler_kit" / "conf" / "config.yaml").exists()
    assert (site / "profiler_kit" / "conf" / "model" / "sd15.yaml").exists()
    assert list((site / "profiler_kit" / "conf" / "gpu").glob("*.yaml"))
    env = {"PYTHONPATH": str(site)}
    proc = run_cli(["--cfg", "job", "model=sdxl", "+gpu=h100-sxm"], cwd=cwd, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "cross_attention_dim: 2048" in proc.stdout and "memory_bandwidth_gbps" in proc.stdout
    assert "pkg://profiler_kit.conf" in run_cli(["--info", "searchpath"], cwd=cwd, env=env, timeout=120).stdout
    where = subprocess.run([sys.executable, "-c", "import profiler_kit; print(profiler_kit.__file__)"], cwd=cwd,
                           capture_output=True, text=True, env={**os.environ, **env}, check=True).stdout
    assert where.startswith(str(site))                 # the wheel's copy ran, not the source tree


def _composed(gpu):
    """The config and hydra runtime of `python -m profiler_kit [+gpu=NAME]`, as Hydra composes them."""
    from types import SimpleNamespace

    from hydra import compose, initialize_config_dir

    from profiler_kit import config
    config.register()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"+gpu={gpu}"] if gpu else [])
    return cfg, SimpleNamespace(runtime=SimpleNamespace(choices={"gpu": gpu} if gpu else {}))


def test_gpu_spec_is_matched_from_the_device_or_taken_from_config_with_a_mismatch_kept():
    """Resolved once, from what Hydra loaded into cfg.gpu (no second read of conf/gpu)."""
    from profiler_kit.capture.experiment import resolve_gpu_spec

    warnings = []
    matched = resolve_gpu_spec(*_composed(None), "NVIDIA H200", warnings)
    assert matched.key == "h200" and matched.matched_from == "device_name"
    assert matched.mismatch is None and not warnings
    chosen = resolve_gpu_spec(*_composed("a100"), "NVIDIA H200", warnings)
    assert chosen.key == "a100-80gb" and chosen.matched_from == "config"
    assert "NVIDIA H200" in chosen.mismatch and warnings == [chosen.mismatch]
    same = resolve_gpu_spec(*_composed("h200"), "NVIDIA H200", [])
    assert same.mismatch is None
    assert resolve_gpu_spec(*_composed(None), None, []) is None      # a CPU run


def test_real_weights_come_from_a_local_folder(tmp_path):
    """model.pretrained=<folder with unet/>: the weights are loaded from disk, never downloaded."""
    import torch
    from diffusers import UNet2DConditionModel
    from omegaconf import OmegaConf

    unet_cfg = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "model" / "tiny.yaml").unet)
    torch.manual_seed(1)
    UNet2DConditionModel.from_config(unet_cfg).save_pretrained(tmp_path / "model" / "unet")
    run_dir = tmp_path / "run"
    proc = run_cli([*TINY, f"model.pretrained={tmp_path / 'model'}", "modes=[vanilla,sdpa]",
                    "profiler.enabled=false", "report.enabled=false", f"hydra.run.dir={run_dir}"],
                   cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["run"]["weights"] == str(tmp_path / "model")
    assert s["modes"]["sdpa"]["output_match"] is True


def test_cpu_threads_fill_the_affinity_unless_set(monkeypatch):
    import torch

    from profiler_kit.capture import environment

    before = torch.get_num_threads()
    try:
        for var in environment.THREAD_ENV_VARS:
            monkeypatch.delenv(var, raising=False)
        torch.set_num_threads(1)             # torch's default on one core with two hardware threads
        monkeypatch.setattr(environment.os, "sched_getaffinity", lambda pid: {0, 1})
        assert environment.set_cpu_threads(None) == "affinity" and torch.get_num_threads() == 2
        torch.set_num_threads(1)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")            # the user's choice wins over null
        assert environment.set_cpu_threads(None) == "OMP_NUM_THREADS" and torch.get_num_threads() == 1
        assert environment.set_cpu_threads(2) == "cpu_threads" and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

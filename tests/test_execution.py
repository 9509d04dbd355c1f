"""Execution modes on this CPU: validation, the unavailable path of CUDA graphs (no CUDA here),
and torch.compile end to end with the tiny UNet (compile time apart, eager steps beside).
CUDA-graph replay itself is measured on the GPU (docs/gpu-results.md); its trace is analysed in
tests/test_records.py-style tests once committed."""

from __future__ import annotations

import json

import pytest

from test_experiment import TINY, run_cli


@pytest.mark.parametrize("override, expect", [("execution=graphs", "eager, cuda_graphs, compile"),
                                              ("compile_mode=fast", "reduce-overhead")])
def test_bad_execution_settings_get_one_line(tmp_path, override, expect):
    proc = run_cli([override], cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and expect in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_cuda_graphs_without_cuda_say_why_for_every_mode(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli([*TINY, "execution=cuda_graphs", "modes=[vanilla,sdpa]", "report.enabled=false",
                    f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "complete" and s["run"]["execution"] == "cuda_graphs"
    for mode in ("vanilla", "sdpa"):
        assert s["modes"][mode]["status"] == "unavailable"
        assert "CUDA graphs need a CUDA device" in s["modes"][mode]["reason"]


def test_compile_runs_reports_compile_time_apart_and_eager_steps_beside(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(["model=tiny", "resolution=128", "warmup=1", "iterations=2", "execution=compile",
                    "modes=[vanilla,sdpa]", "profiler.enabled=false", f"hydra.run.dir={run_dir}"],
                   cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from profiler_kit.records import read_summary
    s = read_summary(run_dir / "summary.json")
    assert s.run.execution == "compile" and s.run.compile_mode == "reduce-overhead"
    for mode in ("vanilla", "sdpa"):
        rec = s.modes[mode]
        assert rec.status == "ok" and rec.output_match
        assert rec.setup_s > 0 and rec.step_ms.n == 2 and rec.eager_step_ms.n == 2
    cmp = s.comparison["sdpa"]
    assert cmp.eager_speedup == pytest.approx(s.modes["vanilla"].eager_step_ms.median_ms
                                              / s.modes["sdpa"].eager_step_ms.median_ms)
    gain = next(f for f in s.findings if f.rule == "execution_gain")
    assert "torch.compile" in gain.title and "eager" in gain.detail
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "eager step" in html and "capture / compile" in html and "torch.compile" in html


GRAPHS = __import__("pathlib").Path(__file__).parent / "data" / "sd-graphs"


def test_graph_replay_trace_is_attributed_and_its_limits_said(tmp_path):
    """A real CUDA-graph run (H200, SD 1.5 512 px): every kernel is known to come from a graph
    replay, the analysis says what that costs (no ops, shapes, modules), categories and fused
    attention backends still come from kernel names, and the replayed step is the kernel time."""
    import shutil

    from profiler_kit.analysis.run import analyze_run
    run = tmp_path / "run"
    shutil.copytree(GRAPHS, run)
    s = analyze_run(str(run))
    assert s.run.execution == "cuda_graphs"
    for mode, rec in s.modes.items():
        a = rec.analysis
        assert a.kernels.graph_replay_count >= a.kernels.count > 1000       # every kernel replayed
        assert any("replayed from CUDA graphs" in w for w in a.warnings)
        assert not any("no launching aten op" in w for w in a.warnings)   # said once, as replay
        kernel_ms = a.kernel_us_per_step / 1e3
        assert rec.step_ms.median_ms == pytest.approx(kernel_ms, rel=0.03)   # the host is gone
        assert rec.step_ms.iqr_ms < 0.01 * rec.step_ms.median_ms
        assert rec.eager_step_ms.median_ms > 1.5 * rec.step_ms.median_ms      # eager 512 px: host-bound
    assert s.modes["sdpa_cudnn"].analysis.attention.backends["cudnn"] > 0
    assert s.modes["xformers"].analysis.attention.total_us > 0
    assert s.modes["vanilla"].analysis.categories_us["softmax"] > 0          # by name, without ops
    cmp = s.comparison["xformers"]
    assert cmp.speedup > 1.3 > 1.0 > cmp.eager_speedup                     # graphs 1.36x, eager 0.89x
    gain = next(f for f in s.findings if f.rule == "execution_gain")
    assert "CUDA-graph replay" in gain.title and gain.figures["eager_speedup"] == cmp.eager_speedup


COMPILED = GRAPHS.parent / "sd-compile"


def test_compiled_traces_categorise_inductor_kernels_and_find_fused_attention():
    """torch.compile on the H200: Inductor's Triton kernels are categorised by what their prefix
    says they do (a fused conv epilogue in a group norm is a norm, not a convolution), the cuDNN
    attention Inductor kept as an SDPA call is still found, and nothing is left uncategorised."""
    from profiler_kit.analysis import analyze_trace
    for mode in ("vanilla", "sdpa_cudnn"):
        t = analyze_trace(COMPILED / f"trace_{mode}.json.gz")
        rows = list(t.kernel_rows())
        triton = [r for r in rows if r["name"].startswith("triton_")]
        assert len(triton) > 300
        assert all(r["category"] in ("elementwise", "norm", "softmax") for r in triton)
        # a group norm's statistics (a reduction) are the norm; applying them (a pointwise pass,
        # fused with the SiLU) is element-wise work, whatever ops the name lists
        assert all(r["category"] == "norm" for r in triton
                   if "group_norm" in r["name"] and r["name"].startswith(("triton_per_", "triton_red_")))
        assert any(r["category"] == "norm" for r in triton)
        assert t.record.categories_us["other"] < 0.01 * t.record.kernels.total_us
    cudnn = analyze_trace(COMPILED / "trace_sdpa_cudnn.json.gz").record.attention
    assert cudnn.backends["cudnn"] == pytest.approx(cudnn.total_us) and cudnn.total_us > 500


def test_unfused_attention_in_a_graph_replay_is_unknown_not_zero(tmp_path):
    import shutil

    from profiler_kit.analysis.run import analyze_run
    run = tmp_path / "run"
    shutil.copytree(GRAPHS, run)
    s = analyze_run(str(run))
    vanilla, xformers = s.modes["vanilla"].analysis, s.modes["xformers"].analysis
    assert not vanilla.ops_attributed and vanilla.attention.total_us == 0
    assert vanilla.attention_share is None                  # shown as "–", never as 0 %
    assert xformers.attention_share > 0.1                   # fused kernels are found by name


def test_the_compiled_runner_compiles_once_for_the_check_and_the_loop():
    """The check calls the runner with the prepared inputs (an int timestep, ordinary tensors),
    the denoising loop with the scheduler's float timesteps and tensors made in inference mode:
    neither may recompile the UNet inside the timed steps."""
    import torch
    from hydra import compose, initialize_config_dir
    from torch._dynamo.utils import counters

    from profiler_kit import config
    from profiler_kit.capture import execution, model_inputs, models, timing
    from test_experiment import REPO

    config.register()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["model=tiny", "resolution=64"])
    device = torch.device("cpu")
    unet = models.build_unet(cfg.model, device, torch.float32, 0).unet
    inputs = model_inputs.make_inputs(unet, cfg.model, 64, 2, device, torch.float32, 0)
    torch._dynamo.reset()
    counters.clear()
    with torch.inference_mode():
        runner = execution.make_runner("compile", unet, inputs, "default")
        compiled = counters["stats"]["unique_graphs"]
        runner(inputs["sample"], inputs["timestep"])                    # as the check does
        timing.timed_denoising_loop(runner, inputs, timing.make_scheduler("euler"), 3, True, device)
    assert compiled >= 1 and counters["stats"]["unique_graphs"] == compiled

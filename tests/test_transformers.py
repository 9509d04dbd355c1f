"""The diffusion transformers (SD3 / SD3.5, Flux.1, Wan 2.1) on this CPU with the tiny configs of
each family: the model builds from its config with the pipeline's inputs, every attention mode
goes through diffusers' dispatcher and computes what diffusers' own processors compute, vanilla
is textbook attention, a mode that ran another attention than it names is flagged, and a run
goes end to end (check, timing, traces, analysis, report)."""

from __future__ import annotations

import json
import math

import pytest

from test_experiment import REPO, run_cli

TINY_FAMILIES = ["tiny_sd3", "tiny_flux", "tiny_wan"]


def _cfg(*overrides):
    from hydra import compose, initialize_config_dir

    from profiler_kit import config

    config.register()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    config.validate(cfg)
    return cfg


def _build(name, resolution=64, guidance=True):
    import torch

    from profiler_kit.capture import model_inputs, models

    cfg = _cfg(f"model={name}", f"resolution={resolution}", f"guidance={str(guidance).lower()}")
    built = models.build_unet(cfg.model, torch.device("cpu"), torch.float32, 0)
    batch = 2 if model_inputs.cfg_batches(cfg) else 1
    inputs = model_inputs.make_inputs(built.unet, cfg.model, resolution, batch, torch.device("cpu"),
                                      torch.float32, 0)
    return cfg, built, inputs


def test_official_configs_build_the_published_sizes():
    """The config values are the official ones: parameter counts (on the meta device, nothing
    allocated) match the model cards' 2B / 2.5B / 8B / 12B / 1.3B within rounding."""
    from omegaconf import OmegaConf

    from profiler_kit.capture import models

    published_b = {"sd3": 2.03, "sd35_medium": 2.24, "sd35_large": 8.06, "flux": 11.90, "wan": 1.42}
    for name, billions in published_b.items():
        cfg = OmegaConf.load(REPO / "conf" / "model" / f"{name}.yaml")
        with models._parameters_on_meta():
            model = models.model_class(cfg).from_config(models.unet_config(cfg))
        assert math.isclose(sum(p.numel() for p in model.parameters()) / 1e9, billions, abs_tol=0.01), name


def test_inputs_are_shaped_as_the_pipelines_build_them():
    _, _, sd3 = _build("tiny_sd3", 128)
    assert list(sd3["sample"].shape) == [2, 16, 16, 16]            # CFG batch, 16 channels, 128/8
    assert list(sd3["encoder_hidden_states"].shape) == [2, 24, 32]
    _, _, flux = _build("tiny_flux", 128)
    assert list(flux["sample"].shape) == [1, 64, 64]               # no CFG batch; (128/16)^2 packed tokens
    assert list(flux["img_ids"].shape) == [64, 3] and flux["img_ids"][9].tolist() == [0.0, 1.0, 1.0]
    assert list(flux["txt_ids"].shape) == [24, 3] and flux["guidance"].tolist() == [3.5]
    _, _, wan = _build("tiny_wan", 64)
    assert list(wan["sample"].shape) == [2, 16, 2, 8, 8]           # 5 frames -> 1 + 4/4 latent frames


def test_flux_loop_shifts_sigmas_as_its_pipeline_does():
    """The loop's scheduler gives the sigmas FluxPipeline gets at 1024 px (4096 image tokens,
    mu 1.15), and SD3's its fixed shift 3."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from profiler_kit.capture import model_inputs, timing

    cfg, _, inputs = _build("tiny_flux", 1024)
    tokens = inputs["sample"].shape[1]
    ours = timing.make_scheduler("euler", model_inputs.flow_schedule(cfg.model, inputs))
    pipeline = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                               base_image_seq_len=256, max_image_seq_len=4096)
    mu = 0.5 + (1.15 - 0.5) * (tokens - 256) / (4096 - 256)
    pipeline.set_timesteps(20, mu=mu)
    ours.set_timesteps(20, **ours.profiler_kit_set_timesteps)
    assert tokens == 4096 and ours.sigmas.allclose(pipeline.sigmas, atol=1e-6)
    sd3_cfg, _, sd3_inputs = _build("tiny_sd3", 64)
    sd3 = timing.make_scheduler("euler", model_inputs.flow_schedule(sd3_cfg.model, sd3_inputs))
    assert sd3.config.shift == 3.0 and not sd3.config.use_dynamic_shifting


@pytest.mark.parametrize("name", ["tiny", *TINY_FAMILIES])
def test_dispatched_modes_compute_what_diffusers_own_processors_compute(name):
    """Our processors (UNet, SD3) and the backend set on diffusers' (Flux, Wan) against the
    model as diffusers builds it; vanilla (textbook) agrees too."""
    import torch

    from profiler_kit.capture import attention_modes, execution

    _, built, inputs = _build(name)
    model = built.unet
    with torch.inference_mode():
        own = execution.Runner(model, inputs)(inputs["sample"], inputs["timestep"]).clone()
        for mode in ("sdpa", "sdpa_math", "vanilla", "flex"):
            with attention_modes.attention_mode(model, mode):
                out = execution.Runner(model, inputs)(inputs["sample"], inputs["timestep"])
            err = ((out - own).norm() / own.norm()).item()
            assert err < 1e-5, (name, mode, err)


@pytest.mark.parametrize("name", TINY_FAMILIES)
def test_vanilla_is_textbook_and_a_mode_that_ran_another_attention_is_flagged(name):
    import torch

    from profiler_kit.capture import attention_modes, attention_ran, execution

    _, built, inputs = _build(name)
    model = built.unet

    def call():
        execution.Runner(model, inputs)(inputs["sample"], inputs["timestep"])

    with torch.inference_mode():
        with attention_modes.attention_mode(model, "vanilla"):
            vanilla, _ = attention_ran.check("vanilla", call, "eager")
        with attention_modes.attention_mode(model, "sdpa_math"):
            math_ran, _ = attention_ran.check("sdpa_math", call, "eager")
            # the same calls judged as if FlashAttention had been asked for: a fallback
            as_flash, _ = attention_ran.check("sdpa_flash", call, "eager")
    assert vanilla.families == [] and vanilla.fallback is None
    assert math_ran.families == ["math"] and math_ran.fallback is None
    assert as_flash.fallback == "sdpa_flash asked for flash but ran math"


def test_flex_is_seen_on_every_check_in_one_process():
    """Eager flex_attention records its op only on the call that traces its compiled wrapper:
    the jobs of a multirun share one process, and a second check must not flag flex as not run
    (the H200 sweep of 2026-12-06 said "flex asked for flex but ran no attention op" for every
    flex job after the first)."""
    import torch

    from profiler_kit.capture import attention_modes, attention_ran, execution

    _, built, inputs = _build("tiny_sd3")
    model = built.unet

    def call():
        return execution.Runner(model, inputs)(inputs["sample"], inputs["timestep"])

    with torch.inference_mode():
        for _ in range(2):
            with attention_modes.attention_mode(model, "flex"):
                ran, _ = attention_ran.check("flex", call, "eager")
            assert ran.families == ["flex"], ran
            assert "without torch.compile" in ran.fallback


def test_fallback_verdicts():
    from profiler_kit.capture.attention_ran import families_of, judge

    assert families_of(["aten::_scaled_dot_product_flash_attention_for_cpu", "aten::bmm"]) == ["flash"]
    assert families_of(["xformers::efficient_attention_forward_cutlass"]) == ["xformers"]
    assert judge("sdpa", ["math"], "eager") == "sdpa asked for flash/efficient/cudnn/fused but ran math"
    assert judge("sdpa", ["cudnn"], "eager") is None
    assert judge("sdpa_efficient", ["efficient", "math"], "eager").startswith("sdpa_efficient ran efficient")
    assert judge("vanilla", ["flash"], "eager").startswith("vanilla ran a library attention op")
    assert judge("flex", ["flex"], "compile") is None and "without torch.compile" in judge("flex", ["flex"], "eager")


def test_unavailable_backends_carry_diffusers_reason():
    import torch

    from profiler_kit.capture import attention_modes

    check = attention_modes.check_mode("flash_attn", torch.device("cpu"), torch.float32, [(2, 16)])
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        assert not check.available and check.reason.startswith("diffusers: ") and "flash-attn" in check.reason
    else:           # installed: on a CPU its CUDA-only constraint is the reason
        assert not check.available and "diffusers" in check.reason


def test_hub_kernels_are_never_downloaded():
    import torch

    from profiler_kit.capture import attention_modes

    check = attention_modes.check_mode("sage_hub", torch.device("cpu"), torch.float32, [(2, 16)])
    assert not check.available and "never downloads" in check.reason and "mode sage" in check.reason


def test_the_transformers_sweep_composes_sd3_and_flux_points():
    cfg = _cfg("+sweep=transformers", "point=flux_1536")
    assert cfg.model.name == "flux" and cfg.resolution == 1536 and list(cfg.modes) == ["all"]
    assert _cfg("point=sd3_512").model.family == "sd3"


def test_transformer_blocks_are_the_blocks():
    """Joint and single blocks of Flux, SD3's joint blocks and Wan's blocks are the analysis'
    blocks, as down_blocks.N is the UNet's."""
    from profiler_kit.analysis.categories import is_attention_scope_component
    from profiler_kit.analysis.kernels import block_of

    assert block_of("transformer_blocks.3.attn.to_q") == "transformer_blocks.3"
    assert block_of("single_transformer_blocks.37.attn") == "single_transformer_blocks.37"
    assert block_of("blocks.12.attn2") == "blocks.12"
    assert block_of("x_embedder") == "x_embedder"
    assert all(is_attention_scope_component(c) for c in ("attn", "attn1", "attn2"))


@pytest.fixture(scope="module", params=TINY_FAMILIES)
def family_run(request, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run") / request.param
    proc = run_cli([f"model={request.param}", "resolution=128", "warmup=1", "iterations=2", "modes=[all]",
                    f"hydra.run.dir={run_dir}"], cwd=tmp_path_factory.mktemp("cwd"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return request.param, run_dir, json.loads((run_dir / "summary.json").read_text())


def test_a_run_goes_end_to_end(family_run):
    import gzip

    name, run_dir, s = family_run
    assert s["config"]["model"]["name"] == name and s["analyzed"] is True
    ok = {m for m, r in s["modes"].items() if r["status"] == "ok"}
    assert {"vanilla", "sdpa", "sdpa_flash", "sdpa_math", "flex"} <= ok
    for mode in ok:
        rec = s["modes"][mode]
        assert rec["output_match"] is True and rec["output_rel_error"] < 1e-4, (mode, rec["output_rel_error"])
        assert rec["analysis"] is not None and (run_dir / rec["trace"]).exists()
        with gzip.open(run_dir / rec["trace"], "rt") as fh:
            names = {e.get("name", "") for e in json.load(fh)["traceEvents"]}
        assert any(n.startswith("module::") and ".attn" in n for n in names), mode
    assert s["modes"]["sdpa_math"]["attention_ran"] == ["math"]
    assert "without torch.compile" in s["modes"]["flex"]["attention_fallback"]
    for mode in ("flash_attn", "flash_attn_3", "sage", "xformers", "sdpa_efficient", "sdpa_cudnn", "flash_attn_hub"):
        assert s["modes"][mode]["status"] == "unavailable" and s["modes"][mode]["reason"], mode
    assert (run_dir / "report.html").stat().st_size > 100_000


@pytest.mark.parametrize("override, expect", [
    ("scheduler=ddim", "scheduler=euler"),
    ("resolution=120", "resolution=112"),
    ("model.frames=4", "4k+1"),
])
def test_bad_transformer_settings_get_one_line(tmp_path, override, expect):
    proc = run_cli(["model=tiny_flux", override], cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0] and "Traceback" not in proc.stderr, proc.stderr


def test_no_arguments_stays_the_sd15_unet(tmp_path):
    proc = run_cli(["--cfg", "job"], cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "name: sd15" in proc.stdout and "family: unet" in proc.stdout and "UNet2DConditionModel" in proc.stdout


def test_the_compiled_transformer_compiles_once_per_mode_for_the_check_and_the_loop():
    """As for the UNet (test_execution): the check's prepared inputs (a float32 timestep that
    .to() hands back as it is) and the loop's scheduler timesteps must not recompile a
    transformer inside the timed steps, switching modes included."""
    import torch
    from torch._dynamo.utils import counters

    from profiler_kit.capture import attention_modes, execution, model_inputs, timing

    cfg, built, inputs = _build("tiny_sd3")        # SD3 takes the timestep as it is (Flux divides it)
    torch._dynamo.reset()
    counters.clear()
    with torch.inference_mode():
        for mode in ("vanilla", "sdpa"):
            with attention_modes.attention_mode(built.unet, mode):
                runner = execution.make_runner("compile", built.unet, inputs, "default")
                runner(inputs["sample"], inputs["timestep"])
        compiled = counters["stats"]["unique_graphs"]
        for mode in ("vanilla", "sdpa"):
            with attention_modes.attention_mode(built.unet, mode):
                timing.timed_denoising_loop(runner, inputs, timing.make_scheduler(
                    "euler", model_inputs.flow_schedule(cfg.model, inputs)), 2, True, torch.device("cpu"))
    assert compiled == 2 and counters["stats"]["unique_graphs"] == compiled


def test_a_local_pretrained_folder_is_loaded_not_built(tmp_path):
    """model.pretrained: a pipeline folder with transformer/ inside gives the saved weights."""
    import torch

    from profiler_kit.capture import execution, models

    cfg, built, inputs = _build("tiny_flux")
    with torch.no_grad():
        for param in built.unet.parameters():
            param.mul_(0.5)                          # weights no seeded build would give
    built.unet.save_pretrained(tmp_path / "transformer")
    cfg.model.pretrained = str(tmp_path)
    loaded = models.build_unet(cfg.model, torch.device("cpu"), torch.float32, 0)
    assert loaded.weights == str(tmp_path) and loaded.parameters == built.parameters
    with torch.inference_mode():
        want = execution.Runner(built.unet, inputs)(inputs["sample"], inputs["timestep"])
        got = execution.Runner(loaded.unet, inputs)(inputs["sample"], inputs["timestep"])
    assert torch.equal(want, got)

"""The experiment's typed configuration: dataclasses in Hydra's ConfigStore, plus the checks
that types alone cannot express. No torch import: the CLI validates before anything heavy loads.

Every rejection is a `ConfigError` whose one-line message says what to type instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from profiler_kit.hardware.nsight import METRIC_SETS as NCU_METRIC_SETS     # torch-free, like this module
from profiler_kit.records import ROOF_BASES

# Attention modes, written side by side so a reader sees where each kernel comes from.
# The sdpa_* pins run in diffusers' AttnProcessor2_0 on the UNet (as its pipeline does) and through
# the dispatcher's '_native_*' backend on the transformers (capture/attention_modes.py says why).
ATTENTION_MODES: Dict[str, str] = {
    "vanilla": "textbook attention: baddbmm -> softmax -> bmm, the N x N scores in memory (diffusers AttnProcessor on the UNet)",
    "xformers": "xformers.ops.memory_efficient_attention (diffusers XFormersAttnProcessor on the UNet, "
                "dispatcher 'xformers' on the transformers)",
    "sdpa": "torch SDPA, PyTorch picks the backend (diffusers AttnProcessor2_0 on the UNet, dispatcher 'native' "
            "on the transformers)",
    "sdpa_flash": "torch SDPA pinned to FlashAttention-2 (SDPBackend.FLASH_ATTENTION) [dispatcher '_native_flash' on the transformers]",
    "sdpa_efficient": "torch SDPA pinned to the CUTLASS memory-efficient "
                      "kernel (SDPBackend.EFFICIENT_ATTENTION) [dispatcher '_native_efficient' on the transformers]",
    "sdpa_cudnn": "torch SDPA pinned to cuDNN attention (SDPBackend.CUDNN_ATTENTION) [dispatcher '_native_cudnn' on the transformers]",
    "sdpa_math": "torch SDPA pinned to the math fallback (SDPBackend.MATH), unfused [dispatcher '_native_math' on the transformers]",
    # diffusers' dispatcher only (attention_dispatch.AttentionBackendName): the libraries it calls
    "flex": "diffusers dispatcher 'flex' -> torch.nn.attention.flex_attention (fused only when compiled)",
    "flash_attn": "diffusers dispatcher 'flash' -> the flash-attn 2 package's flash_attn_func",
    "flash_attn_3": "diffusers dispatcher '_flash_3' -> FlashAttention-3 (flash_attn_interface, Hopper)",
    "sage": "diffusers dispatcher 'sage' -> SageAttention (INT8 QK^T, FP16/FP8 PV)",
    # the dispatcher's Hub kernels (fetched by the `kernels` package at run time): always
    # unavailable here, nothing is downloaded; the same libraries run as flash_attn / sage
    "flash_attn_hub": "diffusers dispatcher 'flash_hub' -> kernels-community/flash-attn2 from the Hub",
    "flash_attn_3_hub": "diffusers dispatcher '_flash_3_hub' -> kernels-community/flash-attn3 from the Hub",
    "sage_hub": "diffusers dispatcher 'sage_hub' -> SageAttention/sage-attention from the Hub",
}
# Names resolved at run time, once the device is known (see attention_modes.resolve_modes).
MODE_ALIASES = ("efficient", "all")
DTYPES = ("auto", "fp16", "bf16", "fp32")
SCHEDULERS = ("euler", "ddim", "pndm")
PLOTLY_JS = ("inline", "directory")
EXECUTIONS = ("eager", "cuda_graphs", "compile")
COMPILE_MODES = ("reduce-overhead", "max-autotune-no-cudagraphs", "default", "max-autotune")
# When the card's roofs are measured (calibrate.py calibration_for_run); what they judge against
# is records.ROOF_BASES.
CALIBRATE_MODES = ("auto", "always", "never")


class ConfigError(ValueError):
    """A configuration the experiment cannot run; the message is one line for the user."""


@dataclass
class ModelConfig:
    """A model: its official config values (`unet` or `transformer`, exactly one) and what its
    pipeline feeds it. The defaults are the SD UNet pipeline's; conf/model/*.yaml say otherwise
    where a pipeline differs, each value with its source."""
    name: str = MISSING
    display_name: str = ""
    source: str = ""
    pretrained: Optional[str] = None
    family: str = "unet"             # unet | sd3 | flux | wan: how inputs, timestep and loop are built
    text_tokens: int = 77            # text tokens the pipeline's encoders give (SD3: 77 CLIP + 256 T5)
    cfg_batch: bool = True           # the pipeline doubles the batch for classifier-free guidance
    guidance_scale: float = 7.5      # the pipeline's default (CFG scale, or Flux's embedded guidance)
    flow_shift: Optional[float] = None       # flow-matching sigma shift; null: from image tokens (Flux)
    frames: int = 1                  # video frames (Wan); 1 for image models
    cuda_dtype: str = "fp16"         # dtype=auto on CUDA: what the model card runs
    unet: Dict[str, Any] = field(default_factory=dict)
    transformer: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ProfilerConfig:
    enabled: bool = True
    steps: int = 1
    record_shapes: bool = True
    profile_memory: bool = True
    with_stack: bool = False
    module_scopes: bool = True


@dataclass
class ReportConfig:
    enabled: bool = True
    plotly_js: str = "inline"


MEASURES = ("none", "ncu")


@dataclass
class NcuConfig:
    metrics: str = "lean"
    timeout_s: int = 1800
    executable: str = "ncu"


@dataclass
class ExperimentConfig:
    model: ModelConfig = MISSING
    gpu: Optional[Any] = None
    resolution: int = 512
    images_per_prompt: int = 1
    guidance: bool = True
    dtype: str = "auto"
    device: str = "auto"
    seed: int = 0
    warmup: Optional[int] = None
    iterations: Optional[int] = None
    cpu_threads: Optional[int] = None
    reference_mode: str = "vanilla"
    modes: List[str] = field(default_factory=lambda: ["vanilla", "efficient"])
    scheduler: str = "euler"
    tf32: bool = False
    execution: str = "eager"
    compile_mode: str = "reduce-overhead"
    roofs: str = "datasheet"
    calibrate: str = "auto"
    profiler: ProfilerConfig = field(default_factory=ProfilerConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    measure: str = "none"
    ncu: NcuConfig = field(default_factory=NcuConfig)


def register() -> None:
    """Put the schema into Hydra's ConfigStore (idempotent) and the resolvers config.yaml uses."""
    ConfigStore.instance().store(name="profiler_kit_schema", node=ExperimentConfig)
    if not OmegaConf.has_resolver("pk_pid"):
        OmegaConf.register_new_resolver("pk_pid", lambda: os.getpid(), use_cache=True)


def _choices(values) -> str:
    return ", ".join(values)


def validate(cfg: Any) -> None:
    """Checks beyond types. Raises ConfigError with one line that says what to type instead."""
    res = cfg.resolution
    if res <= 0 or res % 8:
        lower = max(8, res - res % 8)
        raise ConfigError(
            f"resolution={res} is not a positive multiple of 8 (the VAE downsamples by 8): "
            f"try resolution={lower}")
    if cfg.images_per_prompt < 1:
        raise ConfigError(f"images_per_prompt={cfg.images_per_prompt} must be at least 1: try images_per_prompt=1")
    for key in ("warmup", "iterations"):
        value = cfg[key]
        if value is not None and value < (0 if key == "warmup" else 1):
            least = 0 if key == "warmup" else 1
            raise ConfigError(f"{key}={value} must be at least {least} (or null for auto): try {key}={max(least, 3)}")
    if cfg.cpu_threads is not None and cfg.cpu_threads < 1:
        raise ConfigError(f"cpu_threads={cfg.cpu_threads} must be at least 1 (or null for every CPU this "
                          "process may use): try cpu_threads=null")
    if cfg.profiler.steps < 1:
        raise ConfigError(f"profiler.steps={cfg.profiler.steps} must be at least 1: try profiler.steps=1, "
                          "or profiler.enabled=false to skip profiling")
    for key, value, choices in (("dtype", cfg.dtype, DTYPES), ("scheduler", cfg.scheduler, SCHEDULERS),
                                ("execution", cfg.execution, EXECUTIONS),
                                ("compile_mode", cfg.compile_mode, COMPILE_MODES), ("roofs", cfg.roofs, ROOF_BASES),
                                ("calibrate", cfg.calibrate, CALIBRATE_MODES),
                                ("report.plotly_js", cfg.report.plotly_js, PLOTLY_JS),
                                ("ncu.metrics", cfg.ncu.metrics, NCU_METRIC_SETS)):
        if value not in choices:
            raise ConfigError(f"{key}={value} is not known: use one of {_choices(choices)}")
    if cfg.roofs == "measured" and (cfg.calibrate == "never" or str(cfg.device) == "cpu"):
        why = "calibrate=never" if cfg.calibrate == "never" else "device=cpu (roofs are measured on CUDA devices)"
        raise ConfigError(f"roofs=measured needs measured roofs, but {why}: use calibrate=auto on a GPU, "
                          "or roofs=datasheet")
    if cfg.measure not in MEASURES:
        raise ConfigError(f"measure={cfg.measure} is not known: use one of {_choices(MEASURES)} "
                          "(measure=ncu: HBM bytes counted by Nsight Compute)")
    if cfg.measure == "ncu" and not cfg.profiler.enabled:
        raise ConfigError("measure=ncu joins each measurement to the mode's trace: keep profiler.enabled=true")
    if cfg.ncu.timeout_s < 1:
        raise ConfigError(f"ncu.timeout_s={cfg.ncu.timeout_s} must be at least 1: try ncu.timeout_s=1800")
    dev = str(cfg.device)
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ConfigError(f"device={dev} is not known: use auto, cpu, cuda or cuda:N (e.g. device=cuda:1)")
    known = list(ATTENTION_MODES) + list(MODE_ALIASES)
    modes = list(cfg.modes)
    if not modes:
        raise ConfigError("modes is empty: try modes=[vanilla,efficient]")
    for mode in modes:
        if mode not in known:
            raise ConfigError(f"unknown attention mode '{mode}': use any of {_choices(known)}, "
                              "e.g. modes=[vanilla,xformers,sdpa_flash]")
    if cfg.reference_mode not in ATTENTION_MODES:
        raise ConfigError(f"reference_mode={cfg.reference_mode} is not a mode: use one of "
                          f"{_choices(ATTENTION_MODES)} (usually reference_mode=vanilla)")
    if cfg.model.pretrained is not None and not os.path.isdir(str(cfg.model.pretrained)):
        raise ConfigError(f"model.pretrained={cfg.model.pretrained} is not a folder here: give the path of a "
                          "local diffusers model (weights are never downloaded), or leave it null for random weights")
    _validate_model(cfg)


MODEL_FAMILIES = ("unet", "sd3", "flux", "wan")
FLOW_FAMILIES = ("sd3", "flux", "wan")
WAN_TEMPORAL_STRIDE = 4      # Wan's VAE keeps frame 0 and compresses each next 4 frames into one


def _validate_model(cfg: Any) -> None:
    model = cfg.model
    if model.family not in MODEL_FAMILIES:
        raise ConfigError(f"model.family={model.family} is not known: use one of {_choices(MODEL_FAMILIES)}")
    want = "unet" if model.family == "unet" else "transformer"
    if (model.unet and model.transformer) or (not model[want] and model.pretrained is None):
        raise ConfigError(f"model '{model.name}' needs exactly one '{want}' config (family {model.family}): "
                          "pick model=sd15, sd21, sdxl, sd3, sd35_medium, sd35_large, flux, flux_schnell, wan "
                          "or a tiny_* one")
    if model.family in FLOW_FAMILIES and cfg.scheduler != "euler":
        raise ConfigError(f"scheduler={cfg.scheduler} is a UNet scheduler; model {model.name} is a flow-matching "
                          "transformer: use scheduler=euler (its pipeline's flow-matching Euler)")
    if cfg.resolution % 16 and model.family in FLOW_FAMILIES:
        lower = max(16, cfg.resolution - cfg.resolution % 16)
        raise ConfigError(f"resolution={cfg.resolution} is not a multiple of 16 (VAE 8 x patch 2 for "
                          f"{model.name}): try resolution={lower}")
    if model.frames < 1 or (model.frames - 1) % WAN_TEMPORAL_STRIDE:
        raise ConfigError(f"model.frames={model.frames} must be 4k+1 (Wan's VAE keeps frame 0 and packs "
                          "4 frames per latent frame): try model.frames=81 or model.frames=1")
    if model.cuda_dtype not in ("fp16", "bf16", "fp32"):
        raise ConfigError(f"model.cuda_dtype={model.cuda_dtype} is not known: use fp16, bf16 or fp32")

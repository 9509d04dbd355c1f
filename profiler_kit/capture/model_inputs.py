"""What each pipeline feeds its denoiser, and how it calls it: latents, timestep and text
conditioning shaped as diffusers' pipelines build them (pipeline_stable_diffusion*.py,
pipeline_stable_diffusion_3.py, pipeline_flux.py, pipeline_wan.py), with seeded random values.

The inputs dict always holds `sample` (the latents the scheduler steps) and `timestep`; every
other key is a keyword argument of the model's forward. `call` turns (sample, timestep) into the
model's own call, so the correctness check, the denoising loop, CUDA-graph capture and
torch.compile all call every family the same way.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import torch

from profiler_kit.capture.models import FAMILY_CLASSES
from profiler_kit.config import WAN_TEMPORAL_STRIDE

VAE_SCALE = 8             # every VAE here (SD, SD3, Flux, Wan) downsamples images by 8 per side
FLUX_PACK = 2             # Flux packs 2x2 latent patches into one token of 4x the channels
# Flux's dynamic shift (pipeline_flux.calculate_shift with the FLUX.1-dev scheduler config:
# base_shift 0.5 at 256 image tokens, max_shift 1.15 at 4096)
FLUX_SHIFT_TOKENS = (256, 4096)
FLUX_SHIFT_MU = (0.5, 1.15)
# Flux and the UNet name their latents differently; the transformers take a timestep per sample.
SAMPLE_ARG = {"unet": "sample", "sd3": "hidden_states", "flux": "hidden_states", "wan": "hidden_states"}


def family_of(model: Any) -> str:
    name = type(model).__name__
    for family, cls in FAMILY_CLASSES.items():
        if cls == name:
            return family
    return "unet"


def call(fn: Callable[..., Any], family: str, sample: torch.Tensor, timestep: Any,
         extra: Dict[str, Any]) -> torch.Tensor:
    """One denoiser call as the family's pipeline makes it. The UNet takes a scalar timestep;
    the transformers one per sample (SD3, Wan: t; Flux: t / 1000 in the latents' dtype)."""
    if family == "unet":
        return fn(sample, timestep, **extra, return_dict=False)[0]
    t = torch.as_tensor(timestep, device=sample.device).expand(sample.shape[0])
    if family == "flux":
        t = t.to(sample.dtype) / 1000
    return fn(**{SAMPLE_ARG[family]: sample, "timestep": t}, **extra, return_dict=False)[0]


def cfg_batches(cfg: Any) -> bool:
    """Whether the denoiser's batch is doubled for classifier-free guidance: `guidance` asked
    for it and the model's pipeline does it (Flux dev embeds guidance instead)."""
    return bool(cfg.guidance) and bool(cfg.model.get("cfg_batch", True))


def flow_schedule(model_cfg: Any, inputs: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The flow-matching scheduler as the pipeline sets it up, None for the UNet's schedulers:
    `config` for FlowMatchEulerDiscreteScheduler, `set_timesteps` for its set_timesteps.

    SD3 and Wan shift sigmas by a fixed `flow_shift`; Flux shifts them dynamically by mu, linear
    in the image tokens (pipeline_flux.calculate_shift)."""
    family = str(model_cfg.family)
    if family == "unet":
        return None
    if model_cfg.flow_shift is not None:
        return {"config": {"shift": float(model_cfg.flow_shift)}, "set_timesteps": {}}
    tokens = inputs["sample"].shape[1]
    (t0, t1), (m0, m1) = FLUX_SHIFT_TOKENS, FLUX_SHIFT_MU
    mu = m0 + (m1 - m0) * (tokens - t0) / (t1 - t0)
    return {"config": {"use_dynamic_shifting": True, "base_shift": m0, "max_shift": m1,
                       "base_image_seq_len": t0, "max_image_seq_len": t1},
            "set_timesteps": {"mu": mu}}


def latent_frames(frames: int) -> int:
    return (frames - 1) // WAN_TEMPORAL_STRIDE + 1


def image_tokens(model_cfg: Any, resolution: int) -> int:
    """Tokens of the image (video) at the model's top level: the UNet's latent pixels, a
    transformer's 2x2 latent patches (Flux's packed tokens), times Wan's latent frames."""
    side = resolution // VAE_SCALE
    family = str(model_cfg.get("family", "unet"))
    if family == "unet":
        return side * side
    patches = (side // 2) ** 2
    return patches * latent_frames(int(model_cfg.frames)) if family == "wan" else patches


def make_inputs(unet: Any, model_cfg: Any, resolution: int, batch: int, device: torch.device,
                dtype: torch.dtype, seed: int) -> Dict[str, Any]:
    """The denoiser's inputs for `batch` samples (already doubled where the pipeline runs
    classifier-free guidance) at `resolution` px."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    family = str(model_cfg.get("family", "unet"))
    side = resolution // VAE_SCALE
    cfg = unet.config
    tokens = int(model_cfg.text_tokens)

    def randn(*shape):
        return torch.randn(*shape, generator=gen).to(device, dtype)

    if family == "sd3":
        # latents (B, 16, H/8, W/8); text: 77 CLIP-L/G tokens (768 + 1280 = 2048, zero-padded to
        # T5's 4096) followed by 256 T5 tokens; pooled: CLIP-L + CLIP-G pooled (2048)
        return {"sample": randn(batch, cfg.in_channels, side, side), "timestep": torch.tensor(1000.0),
                "encoder_hidden_states": randn(batch, tokens, cfg.joint_attention_dim),
                "pooled_projections": randn(batch, cfg.pooled_projection_dim)}
    if family == "flux":
        # latents packed 2x2: (B, (H/16)(W/16), 4 * 16); 512 T5 tokens (dev; schnell 256); pooled
        # CLIP-L (768); position ids (row, column) per image token, zeros per text token;
        # guidance embedded (dev) instead of a second batch
        packed = side // FLUX_PACK
        ids = torch.zeros(packed, packed, 3)
        ids[..., 1] += torch.arange(packed)[:, None]
        ids[..., 2] += torch.arange(packed)[None, :]
        inputs = {"sample": randn(batch, packed * packed, cfg.in_channels), "timestep": torch.tensor(1000.0),
                  "encoder_hidden_states": randn(batch, tokens, cfg.joint_attention_dim),
                  "pooled_projections": randn(batch, cfg.pooled_projection_dim),
                  "img_ids": ids.reshape(-1, 3).to(device, dtype),
                  "txt_ids": torch.zeros(tokens, 3).to(device, dtype)}
        if cfg.guidance_embeds:
            inputs["guidance"] = torch.full((batch,), float(model_cfg.guidance_scale), device=device,
                                            dtype=torch.float32)
        return inputs
    if family == "wan":
        # latents (B, 16, 1 + (frames-1)/4, H/8, W/8); 512 umT5 tokens (4096)
        frames = latent_frames(int(model_cfg.frames))
        return {"sample": randn(batch, cfg.in_channels, frames, side, side), "timestep": torch.tensor(1000.0),
                "encoder_hidden_states": randn(batch, tokens, cfg.text_dim)}
    return _unet_inputs(unet, model_cfg, resolution, batch, device, dtype, gen)


def _unet_inputs(unet: Any, model_cfg: Any, resolution: int, batch: int, device: torch.device,
                 dtype: torch.dtype, gen: torch.Generator) -> Dict[str, Any]:
    """Latents (batch, 4, H/8, W/8), a timestep, text embeddings (batch, 77, cross_attention_dim)
    and, for SDXL, the pooled text embedding and size/crop ids of its added conditioning."""
    side = resolution // VAE_SCALE
    cfg = unet.config
    cross_dim = cfg.cross_attention_dim
    cross_dim = cross_dim[0] if isinstance(cross_dim, (list, tuple)) else cross_dim
    sample = torch.randn(batch, cfg.in_channels, side, side, generator=gen)
    text = torch.randn(batch, int(model_cfg.text_tokens), cross_dim, generator=gen)
    inputs: Dict[str, Any] = {
        "sample": sample.to(device, dtype),
        "timestep": torch.tensor(999, device=device),
        "encoder_hidden_states": text.to(device, dtype),
    }
    if cfg.addition_embed_type == "text_time":
        # SDXL: pooled text embedding + (original size, crop top-left, target size) ids, each id
        # embedded in addition_time_embed_dim channels; together projection_class_embeddings_input_dim.
        time_ids_count = 6
        pooled_dim = cfg.projection_class_embeddings_input_dim - time_ids_count * cfg.addition_time_embed_dim
        time_ids = torch.tensor([resolution, resolution, 0, 0, resolution, resolution], dtype=torch.float32)
        inputs["added_cond_kwargs"] = {
            "text_embeds": torch.randn(batch, pooled_dim, generator=gen).to(device, dtype),
            "time_ids": time_ids.repeat(batch, 1).to(device, dtype),
        }
    return inputs

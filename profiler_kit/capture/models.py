"""The Stable Diffusion UNet from its config (seeded random weights) or from a local folder, and
inputs shaped as the real pipeline feeds it.

Random weights are enough to measure speed and memory: the kernels, shapes and bytes do not
depend on the values. Nothing is ever downloaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict

import torch

VAE_SCALE = 8             # the SD VAE downsamples images by 8 in each direction
LATENT_CHANNELS = 4


@dataclass(frozen=True)
class BuiltUnet:
    unet: Any
    weights: str                 # "random (seed N)" or the folder the weights came from
    parameters: int
    weights_bytes: int


def _init_random_(module: torch.nn.Module, seed: int, device: torch.device) -> None:
    """Fill every parameter from one seeded generator on the target device (fast, no host copy).

    Matrices get N(0, 1/fan_in) so activations keep their scale through the depth of the UNet
    (fp16 must not overflow); biases are zero and norm scales one, as after a fresh init.
    """
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.dim() > 1:
                fan_in = param[0].numel()
                param.normal_(0.0, fan_in ** -0.5, generator=gen)
            elif name.endswith("bias"):
                param.zero_()
            else:
                param.fill_(1.0)
        for buf in module.buffers():
            if buf.is_floating_point() and not torch.isfinite(buf).all():
                buf.zero_()


def _pretrained_folder(path: str) -> tuple[str, str | None]:
    """Accept a diffusers pipeline folder (with unet/) or the unet folder itself."""
    if os.path.isfile(os.path.join(path, "unet", "config.json")):
        return path, "unet"
    if os.path.isfile(os.path.join(path, "config.json")):
        return path, None
    raise FileNotFoundError(f"{path} holds neither unet/config.json nor config.json")


def build_unet(model_cfg: Any, device: torch.device, dtype: torch.dtype, seed: int) -> BuiltUnet:
    from diffusers import UNet2DConditionModel

    if model_cfg.get("pretrained"):
        folder, subfolder = _pretrained_folder(str(model_cfg.pretrained))
        unet = UNet2DConditionModel.from_pretrained(
            folder, subfolder=subfolder, torch_dtype=dtype, local_files_only=True)
        unet = unet.to(device)
        weights = os.path.abspath(folder)
    else:
        config = unet_config(model_cfg)
        # Build on the meta device, then allocate straight on the target: no 3 GB host init.
        with torch.device("meta"):
            unet = UNet2DConditionModel.from_config(config)
        unet = unet.to_empty(device=device)
        _init_random_(unet, seed, device)
        # nn.Module.to, not ModelMixin.to: the latter warns about fp32-kept modules SD does not have
        unet = torch.nn.Module.to(unet, dtype)
        weights = f"random (seed {seed})"
    unet.eval().requires_grad_(False)
    params = sum(p.numel() for p in unet.parameters())
    nbytes = sum(t.numel() * t.element_size() for t in list(unet.parameters()) + list(unet.buffers()))
    return BuiltUnet(unet=unet, weights=weights, parameters=params, weights_bytes=nbytes)


def unet_config(model_cfg: Any) -> Dict[str, Any]:
    from omegaconf import OmegaConf

    raw = model_cfg.unet
    cfg = OmegaConf.to_container(raw, resolve=True) if not isinstance(raw, dict) else dict(raw)
    return cfg


def make_inputs(unet: Any, model_cfg: Any, resolution: int, batch: int, device: torch.device,
                dtype: torch.dtype, seed: int) -> Dict[str, Any]:
    """Latents (batch, 4, H/8, W/8), a timestep, text embeddings (batch, 77, cross_attention_dim)
    and, for SDXL, the pooled text embedding and size/crop ids of its added conditioning."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
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

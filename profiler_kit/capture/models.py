"""The denoiser of a diffusion model (the SD UNet, or the SD3 / Flux / Wan transformer) from its
official config values (seeded random weights) or from a local folder. model_inputs.py builds
what its pipeline feeds it.

Random weights are enough to measure speed and memory: the kernels, shapes and bytes do not
depend on the values. Nothing is ever downloaded.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterator

import torch

@dataclass(frozen=True)
class BuiltUnet:
    """The built denoiser (a UNet or a diffusion transformer; the name is the stage's history)."""
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


@contextlib.contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Every parameter registered inside goes to the meta device as it is registered, so the
    layers' own initialisation runs on meta tensors (free); buffers stay real (accelerate's
    init_empty_weights(include_buffers=False) does the same)."""
    register = torch.nn.Module.register_parameter

    def on_meta(module, name, param):
        register(module, name, param)
        if param is not None and not param.is_meta:
            module._parameters[name] = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    torch.nn.Module.register_parameter = on_meta
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = register


def _materialise_(module: torch.nn.Module, device: torch.device) -> None:
    """Uninitialised storage on the device for every meta parameter; buffers are moved there."""
    for sub in module.modules():
        for name, param in list(sub._parameters.items()):
            if param is not None and param.is_meta:
                sub._parameters[name] = torch.nn.Parameter(torch.empty_like(param, device=device),
                                                           requires_grad=False)
    module.to(device)


def _keep_in_fp32_(module: torch.nn.Module, dtype: torch.dtype) -> None:
    keep = getattr(type(module), "_keep_in_fp32_modules", None) or []
    if dtype == torch.float32 or not keep:
        return
    for name, param in module.named_parameters():
        if any(part in keep for part in name.split(".")):
            param.data = param.data.float()


# The diffusers class of each family (a pretrained folder's config.json names its own, which must
# be this one: the inputs and the loop are built for it).
FAMILY_CLASSES = {"unet": "UNet2DConditionModel", "sd3": "SD3Transformer2DModel",
                  "flux": "FluxTransformer2DModel", "wan": "WanTransformer3DModel"}


def _pretrained_folder(path: str, part: str) -> tuple[str, str | None]:
    """Accept a diffusers pipeline folder (with unet/ or transformer/) or that folder itself."""
    if os.path.isfile(os.path.join(path, part, "config.json")):
        return path, part
    if os.path.isfile(os.path.join(path, "config.json")):
        return path, None
    raise FileNotFoundError(f"{path} holds neither {part}/config.json nor config.json")


def model_class(model_cfg: Any):
    import diffusers

    return getattr(diffusers, FAMILY_CLASSES[str(model_cfg.get("family", "unet"))])


def build_unet(model_cfg: Any, device: torch.device, dtype: torch.dtype, seed: int) -> BuiltUnet:
    """The model's denoiser: the UNet, or the transformer of SD3 / Flux / Wan."""
    cls = model_class(model_cfg)
    part = "unet" if str(model_cfg.get("family", "unet")) == "unet" else "transformer"
    if model_cfg.get("pretrained"):
        folder, subfolder = _pretrained_folder(str(model_cfg.pretrained), part)
        unet = cls.from_pretrained(folder, subfolder=subfolder, torch_dtype=dtype, local_files_only=True)
        unet = unet.to(device)
        weights = os.path.abspath(folder)
    else:
        config = unet_config(model_cfg)
        # Parameters on the meta device, then allocated straight on the target: no 24 GB host
        # init for Flux. Buffers are built for real: SD3's sin-cos position table and Wan's RoPE
        # tables are computed at construction and would be garbage after to_empty.
        with _parameters_on_meta():
            unet = cls.from_config(config)
        _materialise_(unet, device)
        _init_random_(unet, seed, device)
        # nn.Module.to, not ModelMixin.to: the latter warns about fp32-kept modules. Those the
        # class keeps in fp32 (Wan's time embedder, norms and modulation table) go back to fp32,
        # as from_pretrained(torch_dtype=...) leaves them: their kernels are the pipeline's.
        unet = torch.nn.Module.to(unet, dtype)
        _keep_in_fp32_(unet, dtype)
        weights = f"random (seed {seed})"
    unet.eval().requires_grad_(False)
    params = sum(p.numel() for p in unet.parameters())
    nbytes = sum(t.numel() * t.element_size() for t in list(unet.parameters()) + list(unet.buffers()))
    return BuiltUnet(unet=unet, weights=weights, parameters=params, weights_bytes=nbytes)


def unet_config(model_cfg: Any) -> Dict[str, Any]:
    from omegaconf import OmegaConf

    raw = model_cfg.unet if str(model_cfg.get("family", "unet")) == "unet" else model_cfg.transformer
    cfg = OmegaConf.to_container(raw, resolve=True) if not isinstance(raw, dict) else dict(raw)
    return cfg

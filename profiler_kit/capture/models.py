"""The denoiser of a diffusion model (the SD UNet, or the SD3 / Flux / Wan transformer) from its
official config values (seeded random weights) or from a local folder. model_inputs.py builds
what its pipeline feeds it.

Random weights are enough to measure speed and memory: the kernels, shapes and bytes do not
depend on the values. Nothing is ever downloaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
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


def _parameter_seed(seed: int, name: str) -> int:
    """The generator seed of one parameter: from the run's seed and the parameter's name, so a
    weight does not depend on the order parameters are drawn in (they are drawn in parallel)."""
    digest = hashlib.blake2b(f"{seed}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2 ** 63 - 1)


def _init_random_(module: torch.nn.Module, seed: int, device: torch.device, dtype: torch.dtype) -> None:
    """Give every (meta) parameter storage on the device, filled from its own seeded generator
    there (fast, no host copy), in the run's dtype.

    Matrices get variance 1/fan_in so activations keep their scale through the depth of the
    model (fp16 must not overflow), drawn uniform on ±sqrt(3/fan_in): the same variance as
    N(0, 1/fan_in), and the family PyTorch's own layers draw from (kaiming_uniform), but cheaper
    on a CPU (SD 1.5's 860 M weights: 2.6 s uniform against 4.1 s normal on one core of the
    2-core development machine, issue 24). A seeded draw runs on one thread, so on a CPU the
    parameters are drawn on as many threads as PyTorch's intra-op pool has, each from a
    generator seeded by its name (the same weights whatever the thread order). Biases are zero
    and norm scales one, as after a fresh init. Each parameter is drawn in fp32 and cast at once,
    so the device never holds an fp32 copy of the whole model (Flux: 48 GB) beside the
    half-precision one; the class's fp32-kept parameters (Wan's time embedder, norms and
    modulation table) stay fp32, as from_pretrained keeps them. Buffers go to the device, cast as
    from_pretrained casts them.
    """
    keep = getattr(type(module), "_keep_in_fp32_modules", None) or []
    slots = [(sub, name, f"{mod_name}.{name}" if mod_name else name)
             for mod_name, sub in module.named_modules()
             for name, param in sub._parameters.items() if param is not None]

    def draw(slot) -> None:
        sub, name, full = slot
        shape = sub._parameters[name].shape
        data = torch.empty(shape, device=device, dtype=torch.float32)
        if data.dim() > 1:
            bound = (3.0 / data[0].numel()) ** 0.5
            gen = torch.Generator(device=device).manual_seed(_parameter_seed(seed, full))
            data.uniform_(-bound, bound, generator=gen)
        elif full.endswith("bias"):
            data.zero_()
        else:
            data.fill_(1.0)
        target = torch.float32 if any(part in keep for part in full.split(".")) else dtype
        sub._parameters[name] = torch.nn.Parameter(data.to(target), requires_grad=False)

    with torch.no_grad():
        threads = torch.get_num_threads() if device.type == "cpu" else 1
        if threads > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(draw, slots))
        else:
            for slot in slots:
                draw(slot)
        for sub in module.modules():
            for name, buf in list(sub._buffers.items()):
                if buf is None:
                    continue
                # from_pretrained(torch_dtype=...) casts what it loads: persistent buffers (SD3's
                # position table); those built at construction (Wan's RoPE tables) stay as built
                cast = buf.is_floating_point() and name not in sub._non_persistent_buffers_set
                buf = buf.to(device, dtype) if cast else buf.to(device)
                if buf.is_floating_point() and not torch.isfinite(buf).all():
                    buf.zero_()
                sub._buffers[name] = buf


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
        _init_random_(unet, seed, device, dtype)
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

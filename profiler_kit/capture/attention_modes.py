"""Attention modes -> diffusers' attention dispatcher (`dispatch_attention_fn` with an
`AttentionBackendName`), and whether each can run here, with the reason diffusers, xformers or
PyTorch gives when it cannot.

Every model takes every mode: SD3's attention layers get the processors of
attention_processors.py (diffusers' own, with the attention call through the dispatcher), Flux's
and Wan's keep their own processors, which call the dispatcher, with the mode's backend set on
them. The UNet keeps diffusers' own processors for the modes they run (UNET_OWN_PROCESSOR_MODES:
what a Stable Diffusion pipeline runs) and takes the dispatcher's processor for the others. No hand-written attention kernel: `vanilla` is diffusers'
AttnProcessor on the UNet and the same baddbmm -> softmax -> bmm chain elsewhere (the N x N
score matrix in memory), `sdpa_*` are the dispatcher's pinned native backends (and the
torch.nn.attention.sdpa_kernel pin around the call as well).
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import torch

from profiler_kit.capture import attention_processors
from profiler_kit.config import ATTENTION_MODES

REASON_CHARS = 400


@dataclass(frozen=True)
class ModeCheck:
    mode: str
    available: bool
    reason: Optional[str] = None


def _sdpa_backend(mode: str):
    from torch.nn.attention import SDPBackend

    return {
        "sdpa_flash": SDPBackend.FLASH_ATTENTION,
        "sdpa_efficient": SDPBackend.EFFICIENT_ATTENTION,
        "sdpa_cudnn": SDPBackend.CUDNN_ATTENTION,
        "sdpa_math": SDPBackend.MATH,
    }.get(mode)


# Each mode's backend in diffusers' dispatcher (AttentionBackendName values); vanilla has none.
DISPATCH_BACKENDS = {
    "sdpa": "native", "sdpa_flash": "_native_flash", "sdpa_efficient": "_native_efficient",
    "sdpa_cudnn": "_native_cudnn", "sdpa_math": "_native_math", "xformers": "xformers",
    "flex": "flex", "flash_attn": "flash", "flash_attn_3": "_flash_3", "sage": "sage",
    "flash_attn_hub": "flash_hub", "flash_attn_3_hub": "_flash_3_hub", "sage_hub": "sage_hub",
}
HUB_MODES = ("flash_attn_hub", "flash_attn_3_hub", "sage_hub")


def dispatch_backend(mode: str):
    from diffusers.models.attention_dispatch import AttentionBackendName

    name = DISPATCH_BACKENDS.get(mode)
    return AttentionBackendName(name) if name else None


# The UNet's modes that diffusers' own processors already run, as a Stable Diffusion pipeline
# does (AttnProcessor2_0 by default, XFormersAttnProcessor after
# enable_xformers_memory_efficient_attention): the UNet keeps those, so its figures are the
# pipeline's. Through the dispatcher the same backends differ in what surrounds the kernel
# (_native_cudnn makes q, k and v contiguous: three copies a call the pipeline never makes).
# Only the backends the UNet's processors cannot reach (flex, flash-attn, Sage) are dispatched.
UNET_OWN_PROCESSOR_MODES = ("xformers", "sdpa", "sdpa_flash", "sdpa_efficient", "sdpa_cudnn", "sdpa_math")


def _processor(mode: str, model: Any = None):
    """The processor of a plain Attention layer (the UNet's, SD3.5's second attention)."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0, XFormersAttnProcessor

    if mode == "vanilla":
        return AttnProcessor()
    if type(model).__name__ == "UNet2DConditionModel" and mode in UNET_OWN_PROCESSOR_MODES:
        return XFormersAttnProcessor() if mode == "xformers" else AttnProcessor2_0()
    return attention_processors.DispatchAttnProcessor(dispatch_backend(mode))


def _joint_processor(mode: str):
    """The processor of SD3's joint attention layers (image and text tokens in one attention)."""
    return attention_processors.DispatchJointAttnProcessor(dispatch_backend(mode))


def attention_shapes(unet: Any) -> List[Tuple[int, int]]:
    """Distinct (heads, head_dim) of the model's attention layers, for availability probes."""
    shapes = set()
    for module in attention_processors.attention_modules(unet):
        heads = module.heads
        head_dim = getattr(module, "head_dim", None) or module.inner_dim // heads
        shapes.add((heads, head_dim))
    return sorted(shapes)


def _condense(text: str) -> str:
    """xformers' refusal lists every operator with its reasons on many lines: keep the gist."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    keep = [ln for ln in lines if "not supported because" in ln or ln.startswith(("xFormers", "requires", "dtype", "device", "operator wasn't built", "Flash", "Memory", "Both", "Query", "cuDNN"))]
    out = "; ".join(dict.fromkeys(keep or lines))
    return out[:REASON_CHARS] + ("..." if len(out) > REASON_CHARS else "")


def _probe_inputs(shape: Tuple[int, int], device: torch.device, dtype: torch.dtype, layout: str):
    heads, head_dim = shape
    tokens = 64
    dims = (1, heads, tokens, head_dim) if layout == "bhmk" else (1, tokens, heads, head_dim)
    return [torch.randn(dims, device=device, dtype=dtype) for _ in range(3)]


def check_mode(mode: str, device: torch.device, dtype: torch.dtype,
               shapes: Sequence[Tuple[int, int]]) -> ModeCheck:
    """Run the mode's kernel once on small inputs of the model's head sizes; report why not."""
    if mode == "vanilla":
        return ModeCheck(mode, True)
    if mode == "xformers":
        return _check_xformers(device, dtype, shapes)
    if mode in HUB_MODES:
        local = mode.replace("_hub", "")
        return ModeCheck(mode, False, f"diffusers fetches '{DISPATCH_BACKENDS[mode]}' from the Hugging Face Hub at "
                                      f"run time and profiler_kit never downloads: install the library and use "
                                      f"mode {local}")
    if mode not in ("sdpa", "sdpa_flash", "sdpa_efficient", "sdpa_cudnn", "sdpa_math"):
        return _check_dispatch(mode, device, dtype, shapes)
    backend = _sdpa_backend(mode)
    from torch.nn.attention import sdpa_kernel

    for shape in shapes:
        q, k, v = _probe_inputs(shape, device, dtype, "bhmk")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ctx = sdpa_kernel([backend]) if backend is not None else contextlib.nullcontext()
                with ctx:
                    torch.nn.functional.scaled_dot_product_attention(q, k, v)
            except RuntimeError as exc:
                said = [str(w.message) for w in caught] + [str(exc)]
                return ModeCheck(mode, False, f"PyTorch: {_condense(chr(10).join(said))} "
                                               f"(head_dim {shape[1]}, {str(dtype).replace('torch.', '')}, {device.type})")
    return ModeCheck(mode, True)


def _check_dispatch(mode: str, device: torch.device, dtype: torch.dtype,
                    shapes: Sequence[Tuple[int, int]]) -> ModeCheck:
    """A backend only the dispatcher offers: diffusers' own requirement check (the package and
    version it needs), its constraints (device, dtype, shape), then one call per head size."""
    from diffusers.models.attention_dispatch import (_AttentionBackendRegistry,
                                                     _check_attention_backend_requirements, dispatch_attention_fn)

    backend = dispatch_backend(mode)
    try:
        _check_attention_backend_requirements(backend)
    except RuntimeError as exc:
        return ModeCheck(mode, False, f"diffusers: {_condense(str(exc))}")
    for shape in shapes:
        q, k, v = _probe_inputs(shape, device, dtype, "bmhk")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")     # flex's "use torch.compile" note: the run says so itself
                for constraint in _AttentionBackendRegistry._constraints.get(backend, []):
                    constraint(query=q, key=k, value=v, attn_mask=None, is_causal=False)
                dispatch_attention_fn(q, k, v, backend=backend)
        except Exception as exc:
            return ModeCheck(mode, False, f"diffusers '{backend.value}': {_condense(str(exc))} "
                                          f"(head_dim {shape[1]}, {str(dtype).replace('torch.', '')}, {device.type})")
    return ModeCheck(mode, True)


def _check_xformers(device: torch.device, dtype: torch.dtype,
                    shapes: Sequence[Tuple[int, int]]) -> ModeCheck:
    if device.type != "cuda":
        return ModeCheck("xformers", False, "xformers' memory_efficient_attention runs on CUDA devices only")
    try:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            import xformers
            import xformers.ops as xops
    except Exception as exc:  # ImportError, or a broken build raising at import
        return ModeCheck("xformers", False, f"xformers cannot be imported ({_condense(str(exc))}): "
                                            "pip install xformers built for this torch")
    for shape in shapes:
        q, k, v = _probe_inputs(shape, device, dtype, "bmhk")
        try:
            xops.memory_efficient_attention(q, k, v)
            torch.cuda.synchronize(device)
        except Exception as exc:
            return ModeCheck("xformers", False, f"xformers {xformers.__version__}: {_condense(str(exc))}")
    return ModeCheck("xformers", True)


def resolve_modes(requested: Sequence[str], reference: str, device: torch.device, dtype: torch.dtype,
                  shapes: Sequence[Tuple[int, int]]) -> Tuple[List[str], dict, str, str]:
    """Expand `all` and `efficient`, put the reference first, check each mode once.

    Returns (modes, checks by mode, the efficient mode chosen, why it was chosen).
    """
    checks: dict = {}

    def check(mode: str) -> ModeCheck:
        if mode not in checks:
            checks[mode] = check_mode(mode, device, dtype, shapes)
        return checks[mode]

    if device.type == "cuda" and check("xformers").available:
        efficient, why = "xformers", "xformers' memory-efficient kernels run on this device"
    elif device.type == "cuda" and check("sdpa_efficient").available:
        efficient = "sdpa_efficient"
        why = ("xformers cannot run here (" + (check("xformers").reason or "") + "); using sdpa_efficient, "
               "PyTorch's build of the same CUTLASS memory-efficient kernel family")
    else:
        efficient = "sdpa"
        why = (f"on {device.type} neither xformers nor PyTorch's CUTLASS memory-efficient kernel runs; "
               "using sdpa, PyTorch's own choice of fused kernel")
    modes: List[str] = [reference]
    for mode in requested:
        expanded = list(ATTENTION_MODES) if mode == "all" else [efficient if mode == "efficient" else mode]
        modes.extend(m for m in expanded if m not in modes)
    for mode in modes:
        check(mode)
    efficient, why = headline_efficient(modes, reference, efficient, why,
                                        {m: c.available for m, c in checks.items()})
    return modes, checks, efficient, why


# Fused modes in the order the headline prefers them when the device's own choice was not run:
# the CUTLASS family first (what "memory-efficient attention" names), then FlashAttention,
# cuDNN, and SDPA's own pick last (its backend depends on the build).
FUSED_PREFERENCE = ("xformers", "sdpa_efficient", "sdpa_flash", "sdpa_cudnn", "sdpa")


def headline_efficient(modes: Sequence[str], reference: str, efficient: str, why: str,
                       available: dict) -> Tuple[str, str]:
    """The memory-efficient mode the run's headline compares with the reference: the device's
    choice when the run measures it; else the first fused mode the run does measure, so
    modes=[vanilla,sdpa_cudnn] on a machine without xformers compares cuDNN rather than an
    sdpa_efficient that never ran (and the headline would say "not compared")."""
    if efficient in modes:
        return efficient, why
    ran = [m for m in FUSED_PREFERENCE if m in modes and m != reference and available.get(m, False)]
    if not ran:
        return efficient, why
    return ran[0], (f"{efficient} is this device's choice ({why}) but not among the modes run; "
                    f"the headline compares {ran[0]}, the first memory-efficient mode run")


@contextlib.contextmanager
def attention_mode(unet: Any, mode: str) -> Iterator[None]:
    """Route every attention layer of the model to the mode's backend (and pin SDPA's backend
    around the call too, as before the dispatcher: a pinned backend fails rather than falls
    back, and the pin holds under torch.compile whatever the dispatcher's inner pin does)."""
    from diffusers.models.attention_processor import Attention

    backend = dispatch_backend(mode)
    plain, joint = _processor(mode, unet), _joint_processor(mode)
    if mode == "vanilla" and type(unet).__name__ != "UNet2DConditionModel":
        # diffusers' AttnProcessor predates QK norms (SD3.5's second attention has them): outside
        # the UNet, textbook attention inside the processor that applies them
        plain = attention_processors.DispatchAttnProcessor(None)
    for module in attention_processors.attention_modules(unet):
        if isinstance(module, Attention):
            module.set_processor(joint if getattr(module, "add_q_proj", None) is not None else plain)
        elif hasattr(module.processor, "_attention_backend"):
            module.processor._attention_backend = backend
    with contextlib.ExitStack() as stack:
        if mode == "vanilla":
            stack.enter_context(attention_processors.textbook_in_dispatching_processors(unet))
        pinned = _sdpa_backend(mode)
        if pinned is not None:
            from torch.nn.attention import sdpa_kernel

            stack.enter_context(sdpa_kernel([pinned]))
        yield

"""Attention modes -> diffusers' own attention processors (and PyTorch SDPA backends), and
whether each can run here, with the reason xformers or PyTorch gives when it cannot.

No hand-written attention: `vanilla` is diffusers' AttnProcessor (baddbmm -> softmax -> bmm, the
N x N score matrix in memory), `xformers` its XFormersAttnProcessor, `sdpa*` its AttnProcessor2_0
with torch.nn.attention.sdpa_kernel pinning the backend.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import torch

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


def _processor(mode: str):
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0, XFormersAttnProcessor

    if mode == "vanilla":
        return AttnProcessor()
    if mode == "xformers":
        return XFormersAttnProcessor()
    return AttnProcessor2_0()


def attention_shapes(unet: Any) -> List[Tuple[int, int]]:
    """Distinct (heads, head_dim) of the UNet's attention layers, for availability probes."""
    from diffusers.models.attention_processor import Attention

    shapes = set()
    for module in unet.modules():
        if isinstance(module, Attention):
            heads = module.heads
            shapes.add((heads, module.inner_dim // heads))
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
    """Install the mode's diffusers processor on every attention layer (and pin the SDPA backend)."""
    unet.set_attn_processor(_processor(mode))
    backend = _sdpa_backend(mode)
    if backend is None:
        yield
        return
    from torch.nn.attention import sdpa_kernel

    with sdpa_kernel([backend]):
        yield

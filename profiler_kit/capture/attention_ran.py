"""Which attention implementation a mode really ran, from the ops of one call, against the one
it asked for: a pinned or named backend that fell back is flagged.

Why ops and not kernels: the op that picks the kernel (aten::_scaled_dot_product_flash_attention,
xformers::efficient_attention_forward_cutlass, flash_attn::_flash_attn_forward, ...) is recorded
on every device, CPU runs included, and before any CUDA-graph replay hides it; the analysis
judges the kernels themselves from the trace. One eager call under a CPU-only profiler
(no shapes, no memory) costs about one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

import torch

from profiler_kit import attention_op_names

SDPA_FUSED = ("flash", "efficient", "cudnn", "fused")
# What each mode must run. vanilla must run none of them (its chain is plain GEMMs and softmax).
EXPECTED = {
    "sdpa": SDPA_FUSED, "sdpa_flash": ("flash",), "sdpa_efficient": ("efficient",),
    "sdpa_cudnn": ("cudnn",), "sdpa_math": ("math",), "xformers": ("xformers",), "flex": ("flex",),
    "flash_attn": ("flash_attn",), "flash_attn_3": ("flash_attn_3",), "sage": ("sage",),
    "flash_attn_hub": ("flash_attn",), "flash_attn_3_hub": ("flash_attn_3",), "sage_hub": ("sage",),
}


@dataclass(frozen=True)
class Ran:
    families: List[str]            # implementation families the call's ops show, sorted
    fallback: Optional[str]        # why the mode did not run what it asked for, or None


def families_of(op_names: List[str]) -> List[str]:
    found = {attention_op_names.implementation_of(name) for name in op_names}
    return sorted(found - {None})


def outermost_attention_ops(events: Any) -> List[str]:
    """The names of the attention ops no other attention op called: the library the mode chose.

    A library's op often calls another's: xformers' flash op (``xformers_flash::flash_fwd``)
    runs PyTorch's ``aten::_flash_attention_forward``, as SDPA's flash op does. The inner op names
    the kernel family, the outer one what the mode picked; counting both would flag xformers
    as having run flash for some calls (it did, through its own op)."""
    names = []
    for evt in events:
        if attention_op_names.implementation_of(evt.name) is None:
            continue
        parent = evt.cpu_parent
        while parent is not None and attention_op_names.implementation_of(parent.name) is None:
            parent = parent.cpu_parent
        if parent is None:
            names.append(evt.name)
    return names


def judge(mode: str, families: List[str], execution: str) -> Optional[str]:
    """The one-line fallback verdict for what ran, or None when the mode ran what it names."""
    if mode == "vanilla":
        return (f"vanilla ran a library attention op ({', '.join(families)}) instead of textbook attention"
                if families else None)
    expected = EXPECTED.get(mode, ())
    hit = [f for f in families if f in expected]
    if not hit:
        ran = ", ".join(families) or "no attention op"
        return f"{mode} asked for {'/'.join(expected)} but ran {ran}"
    others = [f for f in families if f not in expected]
    if others:
        return f"{mode} ran {', '.join(hit)} for some calls and {', '.join(others)} for others"
    if mode == "flex" and execution != "compile":
        # torch warns so itself: flex_attention outside torch.compile is its unfused reference
        return ("flex ran flex_attention without torch.compile: PyTorch's unfused reference (N x N scores "
                "in memory); execution=compile runs the fused Triton kernel")
    return None


def check(mode: str, call: Callable[[], Any], execution: str) -> Tuple[Ran, Any]:
    """Run `call` (one eager denoiser call in the mode) once and judge what it ran; returns the
    verdict and the call's output (an eager run's correctness call is this one)."""
    from torch.profiler import ProfilerActivity, profile

    if mode == "flex" and execution != "compile":
        # Eager flex_attention runs through a region torch.compile'd with the eager backend: its
        # op (FlexAttentionAutogradOp) is recorded only on the call that traces the region, and
        # later calls show a bare "Torch-Compiled Region". A process that already ran flex (the
        # jobs of a multirun with Hydra's basic launcher run in one process) would see no
        # attention op and flag flex as not run. Outside execution=compile, flex's wrapper is
        # the only thing Dynamo holds, so its cache is dropped and this call traces again.
        torch._dynamo.reset()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=False, profile_memory=False) as prof:
        out = call()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    families = families_of(outermost_attention_ops(prof.events()))
    return Ran(families=families, fallback=judge(mode, families, execution)), out

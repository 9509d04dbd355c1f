"""Which attention implementation a mode really ran, from the ops of one call, against the one
it asked for: a pinned or named backend that fell back is flagged.

Why ops and not kernels: the op that picks the kernel (aten::_scaled_dot_product_flash_attention,
xformers::efficient_attention_forward_cutlass, flash_attn::_flash_attn_forward, ...) is recorded
on every device, CPU runs included, and before any CUDA-graph replay hides it; the analysis
judges the kernels themselves from the trace. One eager call under a CPU-only profiler
(no shapes, no memory) costs about one call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

import torch

# op name pattern -> implementation family, first match wins (xformers before flash: its flash
# op is xformers', not the flash-attn package's)
OP_FAMILIES: Tuple[Tuple[re.Pattern, str], ...] = (
    (re.compile(r"xformers", re.I), "xformers"),
    (re.compile(r"flash_attn_3|flash_attn_interface|_flash_3", re.I), "flash_attn_3"),
    (re.compile(r"flash_attn::|flash_attn_func|_flash_attn_forward", re.I), "flash_attn"),
    (re.compile(r"sageattn|sageattention", re.I), "sage"),
    (re.compile(r"flex_?attention", re.I), "flex"),
    (re.compile(r"aten::_scaled_dot_product_flash_attention"), "flash"),
    (re.compile(r"aten::_scaled_dot_product_efficient_attention|aten::_efficient_attention_forward"), "efficient"),
    (re.compile(r"aten::_scaled_dot_product_cudnn_attention"), "cudnn"),
    (re.compile(r"aten::_scaled_dot_product_fused_attention_overrideable"), "fused"),
    (re.compile(r"aten::_scaled_dot_product_attention_math"), "math"),
)
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
    found = set()
    for name in op_names:
        for pattern, family in OP_FAMILIES:
            if pattern.search(name):
                found.add(family)
                break
    return sorted(found)


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

    with profile(activities=[ProfilerActivity.CPU], record_shapes=False, profile_memory=False) as prof:
        out = call()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    names = sorted({evt.key for evt in prof.key_averages()})
    families = families_of(names)
    return Ran(families=families, fallback=judge(mode, families, execution)), out

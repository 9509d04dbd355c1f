"""Which attention implementation an op name belongs to: the one table of op-name patterns.

Two stages read it and must agree: the capture checks that a mode ran the attention it names
(capture/attention_ran.py, from the ops of one eager call) and the analysis gives every kernel
its attention backend by the op that launched it (analysis/categories.py). The op is the
reliable witness: it is recorded on every device, CPU runs included, and it names the library
(ROCm's flash kernel is a bare ``attn_fwd``; xformers launches the same CUTLASS and flash
kernels as PyTorch).

Each pattern is matched from the start of the op name (``re.match``), namespace included; first
match wins in the order below: xformers before flash (its ``xformers_flash::`` op is xformers'),
FlashAttention 3 before 2 (diffusers wraps FA3 as ``_diffusers_flash_attn_3::``). No torch
import: the analysis reads this without torch.
"""

from __future__ import annotations

import re
from typing import Optional, Tuple

# implementation -> op-name pattern, in first-match order
ATTENTION_OPS: Tuple[Tuple[str, re.Pattern], ...] = tuple((impl, re.compile(pattern)) for impl, pattern in (
    ("xformers", r"\w*xformers"),
    ("flash_attn_3", r"\w*(flash_attn_3|_flash_3)|flash_attn_interface"),
    ("flash_attn", r"flash_attn::|flash_attn_func|\w*_flash_attn_forward|flash_attn_\w*(fwd|forward)"),
    ("sage", r"(\w+::)?sage(attn|_attn|_fwd|_quant)|sageattention::"),
    ("flex", r"(?i)\w*flex_?attention"),
    # PyTorch's SDPA backends; flash's CPU kernel is its _for_cpu op (the CPU run's sdpa)
    ("flash", r"aten::(_flash_attention_(forward|backward)|"
              r"_scaled_dot_product_flash_attention(_for_cpu)?(_backward)?)$"),
    ("efficient", r"aten::(_efficient_attention_(forward|backward)|"
                  r"_scaled_dot_product_efficient_attention(_backward)?)$"),
    ("cudnn", r"aten::(_scaled_dot_product_cudnn_attention|_cudnn_attention_forward)(_backward)?$"),
    ("fused", r"aten::_scaled_dot_product_fused_attention_overrideable"),
    # SDPA's math backend: the unfused chain runs under this op
    ("math", r"aten::_scaled_dot_product_attention_math"),
    ("aiter", r"aiter::\w*(fmha|mha_|attn|attention)"),
    # FlashInfer's attention ops only: its quantize, GEMM and MoE ops are not attention
    ("flashinfer", r"flashinfer::\w*(prefill|decode|attention|mla)"),
))
_BY_NAME = dict(ATTENTION_OPS)


def implementation_of(op_name: str) -> Optional[str]:
    """The attention implementation whose op this is, or None for any other op."""
    for impl, pattern in ATTENTION_OPS:
        if pattern.match(op_name):
            return impl
    return None


def pattern_of(*implementations: str) -> str:
    """One regex source matching the ops of any of these implementations (for rules that
    name a backend covering several: the analysis's "flash" is PyTorch's and flash-attn's)."""
    return "|".join(f"(?:{_BY_NAME[impl].pattern})" for impl in implementations)

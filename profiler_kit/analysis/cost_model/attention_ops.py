"""Cost of attention ops from outside PyTorch: AMD aiter's FMHA, flash-attn 2's custom op,
SageAttention (INT8 Q/K, FP8 V) and Sage's quantization prologue.

Same FlashAttention formula as fused_attention.py (2·B·H·Nq·Nk·(d + dv) FLOPs, halved when
causal; Q, K, V read once and O written once), with each operand at its own recorded size: Sage
reads Q and K as INT8 and V as FP8 (1 byte each) plus their fp32 scales, and writes O in bf16.
That is why Sage moves half the bytes of a bf16 flash call of the same shape.

Sage's kernels reach the trace as a compiled region's user-defined Triton kernels
(``sage_quant_kernel_0``, ``sage_fwd_1``: the kernel name, a dot-less index), whose recorded
arguments are the kernel's own: every tensor argument is an operand the kernel reads or writes
once (inputs, outputs, scales), so the ideal bytes are the sum of their sizes. The prologue does
no matrix arithmetic: a max-abs reduction and a scale per block, a handful of FLOPs per element
(counted as 3 per element read: abs, max, scale-and-round, an estimate).

Sage's roof: INT8 QKᵀ and FP8 PV. The call is judged against the FP8 tensor peak (the dtype of
V); on the cards Sage targets (H100, H20, L40S, MI300X) the datasheets give the same dense
peak for INT8 TOPS and FP8 TFLOPS, so one roof serves both halves.
"""

from __future__ import annotations

import math
import re
from typing import Sequence

from .op_args import Arg
from .op_cost import AttentionShape, OpCost, tensor_engine

_LSE_BYTES = 4
# FlashAttention-2 / aiter's CK tile: 128 query rows per block (the re-read figure's assumption;
# documented in docs/cost-model.md like fused_attention.TILE_Q).
_TILE_Q = 128
_QUANT_FLOPS_PER_ELEMENT = 3     # abs, running max, scale-and-round: an estimate

# op -> (index of is_causal in the concrete inputs, index of the return-LSE flag or None)
#   aiter::fmha_v3_fwd / aiter::mha_fwd(q, k, v, dropout_p, softmax_scale, is_causal,
#       window_size_left, window_size_right, return_softmax_lse, return_dropout_randval, ...)
#   flash_attn::_flash_attn_forward(q, k, v, dropout_p, softmax_scale, causal,
#       window_size_left, window_size_right, softcap, alibi_slopes, return_softmax): LSE always
_BMHK_OPS = {
    "aiter::fmha_v3_fwd": (5, 8),
    "aiter::mha_fwd": (5, 8),
    "flash_attn::_flash_attn_forward": (5, None),
}
SAGE_FWD = re.compile(r"(\w+::)?sage_fwd(_\d+)?$")
_SAGE_QUANT = re.compile(r"(\w+::)?sage_quant(_kernel)?(_\d+)?$")


def is_attention_op(name: str) -> bool:
    """True for the ops this module costs."""
    return name in _BMHK_OPS or bool(SAGE_FWD.match(name) or _SAGE_QUANT.match(name))


def _flag(args: Sequence[Arg], index: int | None) -> bool | None:
    if index is None or index >= len(args):
        return None
    value = args[index].concrete
    return bool(value) if isinstance(value, (bool, int)) else None


def _attention(q: Arg, k: Arg, v: Arg, layout: str, causal: bool, io_bytes: float,
               dtype_of: Arg, formula: str) -> OpCost | None:
    if len(q.shape) != 4 or len(k.shape) != 4 or len(v.shape) != 4:
        return None
    if layout == "BMHK":
        batch, nq, heads, d = q.shape
        nk, kv_heads, dv = k.shape[1], k.shape[2], v.shape[3]
    else:
        batch, heads, nq, d = q.shape
        kv_heads, nk, dv = k.shape[1], k.shape[2], v.shape[3]
    bh = batch * heads
    mask = 0.5 if causal else 1.0
    passes = math.ceil(nq / _TILE_Q)
    rereads = io_bytes + (k.nbytes + v.nbytes) * (passes - 1)
    engine, dtype = tensor_engine(dtype_of.dtype)
    return OpCost(
        flops=mask * 2.0 * bh * nq * nk * (d + dv), bytes=float(io_bytes), engine=engine,
        dtype=dtype, formula=formula, kind="attention", bytes_with_rereads=float(rereads),
        transcendentals=mask * bh * nq * nk,
        attention=AttentionShape(batch=batch, heads=heads, kv_heads=kv_heads, q_tokens=nq,
                                 kv_tokens=nk, head_dim=d, head_dim_v=dv, layout=layout,
                                 causal=causal, tile_q=_TILE_Q))


def estimate_attention_op(name: str, args: Sequence[Arg]) -> OpCost | None:
    """Cost of one call of an op :func:`is_attention_op` accepts, or None if its recorded
    arguments are not what the op takes."""
    tensors = [a for a in args if a.is_tensor and a.shape]   # 0-d scalars are launch arguments
    if name in _BMHK_OPS:
        if len(args) < 3 or not all(a.is_tensor for a in args[:3]):
            return None
        q, k, v = args[:3]
        causal_i, lse_i = _BMHK_OPS[name]
        causal = bool(_flag(args, causal_i))
        lse = _flag(args, lse_i) if lse_i is not None else True
        if len(q.shape) != 4:
            return None
        out = q.shape[0] * q.shape[1] * q.shape[2] * v.shape[-1] * q.itemsize
        lse_bytes = q.shape[0] * q.shape[1] * q.shape[2] * _LSE_BYTES if lse else 0
        return _attention(q, k, v, "BMHK", causal, q.nbytes + k.nbytes + v.nbytes + out + lse_bytes,
                          q, "attention.fused.bmhk")
    if SAGE_FWD.match(name):
        # sage_fwd(q_int8, k_int8, v_fp8, ..., q_scale, k_scale, v_scale, ..., out, ...): Q, K, V
        # are the first three tensors; every tensor argument is read or written once.
        if len(tensors) < 4:
            return None
        q, k, v = tensors[:3]
        return _attention(q, k, v, "BHMK", False, sum(t.nbytes for t in tensors), v,
                          "attention.sage")
    if _SAGE_QUANT.match(name):
        if not tensors:
            return None
        # inputs are the 16-bit tensors; every tensor (inputs, INT8/FP8 outputs, scales) once
        read = [t for t in tensors if t.dtype in ("bf16", "fp16", "fp32") and len(t.shape) == 4]
        return OpCost(flops=float(_QUANT_FLOPS_PER_ELEMENT * sum(t.numel for t in read)),
                      bytes=float(sum(t.nbytes for t in tensors)), engine="cuda",
                      dtype=read[0].dtype if read else "unknown", formula="attention.sage_quant",
                      kind="elementwise")
    return None

"""Cost of fused attention ops (FlashAttention, memory-efficient/CUTLASS, cuDNN, xformers).

FLOPs: the two GEMMs, S = Q Kᵀ and O = P V: 2·B·H·Nq·Nk·d + 2·B·H·Nq·Nk·dv (= 4·B·H·Nq·Nk·d when
dv = d), the convention of the FlashAttention papers and TraceLens. The softmax's exp is counted
apart in ``transcendentals`` (B·H·Nq·Nk); its few adds/muls are not counted.

Bytes, ideal: Q, K, V (and a bias/mask) read once, O (and the log-sum-exp, when the op writes it)
written once: the IO lower bound of Dao et al. 2022, Theorem 2 with the scores never leaving SRAM.

Bytes with re-reads: a forward kernel gives each thread block ``tile_q`` query rows and streams
all of K and V past them, so K and V are fetched ceil(Nq / tile_q) times:
Q + O + (K + V)·ceil(Nq / tile_q). Those re-reads mostly hit L2 when K and V of one head fit
there, so real DRAM traffic lies between the two figures.

Layouts: torch SDPA ops take (B, H, M, K); xformers ops and ``aten::_flash_attention_forward`` /
``aten::_efficient_attention_forward`` take (B, M, H, K).
"""

from __future__ import annotations

import math
from typing import Sequence

from .op_args import Arg
from .op_cost import AttentionShape, OpCost, tensor_engine

# Query rows per thread block, per kernel family, for the re-read figure. FlashAttention-2's
# forward uses 128-row tiles for the head sizes diffusion models use (kBlockM = 128); the CUTLASS
# memory-efficient kernel (xformers, PyTorch's "efficient" backend) uses 64 (kQueriesPerBlock);
# cuDNN's fused flash kernel 128. These are assumptions (documented in docs/cost-model.md).
TILE_Q = {"flash": 128, "efficient": 64, "cudnn": 128, "sdpa": 128}

_LSE_BYTES = 4  # the log-sum-exp is fp32, one per query row and head

# op name -> (layout, family, index of is_causal (or custom_mask_type) in the concrete inputs,
#             does the op write the log-sum-exp? None: only if its compute_log_sumexp flag says so,
#             index of that flag)
_BHMK_OPS = {
    # scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa)
    "aten::scaled_dot_product_attention": ("sdpa", 5, False, None, 3),
    # _scaled_dot_product_flash_attention(q, k, v, dropout_p, is_causal, return_debug_mask, scale)
    "aten::_scaled_dot_product_flash_attention": ("flash", 4, True, None, None),
    "aten::_scaled_dot_product_flash_attention_for_cpu": ("flash", 4, True, None, 5),
    # _scaled_dot_product_efficient_attention(q, k, v, attn_bias, compute_log_sumexp, dropout_p, is_causal, scale)
    "aten::_scaled_dot_product_efficient_attention": ("efficient", 6, None, 4, 3),
    # _scaled_dot_product_cudnn_attention(q, k, v, attn_bias, compute_log_sumexp, dropout_p, is_causal, return_debug_mask, scale)
    "aten::_scaled_dot_product_cudnn_attention": ("cudnn", 6, None, 4, 3),
    # _cudnn_attention_forward(q, k, v, attn_bias, cum_seq_q, cum_seq_k, max_q, max_k,
    #   compute_log_sumexp, dropout_p, is_causal, return_debug_mask, scale): torch >= 2.9
    "aten::_cudnn_attention_forward": ("cudnn", 10, None, 8, 3),
}
_BMHK_OPS = {
    # _flash_attention_forward(q, k, v, cum_seq_q, cum_seq_k, max_q, max_k, dropout_p, is_causal, ...)
    "aten::_flash_attention_forward": ("flash", 8, True, None, None),
    # _efficient_attention_forward(q, k, v, bias, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
    #   max_seqlen_k, dropout_p, custom_mask_type, compute_log_sumexp, scale, ...)
    "aten::_efficient_attention_forward": ("efficient", 9, None, 10, 3),
}


# xformers_flash::flash_fwd(q, k, v, cu_seqlens_q, cu_seqlens_k, seqused_k, max_seqlen_q,
#   max_seqlen_k, p, softmax_scale, is_causal, window_left, window_right, return_softmax, ...):
# FlashAttention-2 as xformers builds it; it always writes the log-sum-exp. diffusers'
# XFormersAttnProcessor passes (B·H, M, K), which xformers views as (B·H, M, 1, K).
_XFORMERS_FLASH = {"xformers_flash::flash_fwd", "xformers_flash3::flash_fwd"}


def is_fused_attention(name: str) -> bool:
    """True for the fused attention forward ops this module costs (any layout)."""
    return name in _BHMK_OPS or name in _BMHK_OPS or _is_xformers_forward(name)


def _is_xformers_forward(name: str) -> bool:
    # xformers registers its kernels as custom ops: xformers::efficient_attention_forward_cutlass,
    # xformers_flash::flash_fwd, xformers_flash3::flash_fwd, xformers::fmha_* ...
    low = name.lower()
    if not low.startswith("xformers"):
        return False
    if "bw" in low or "backward" in low or "grad" in low:
        return False
    return any(tag in low for tag in ("fwd", "forward", "fmha", "attention"))


def _xformers_family(name: str) -> str:
    return "flash" if "flash" in name.lower() else "efficient"


def _concrete(args: Sequence[Arg], index: int | None):
    if index is None or index >= len(args):
        return None
    return args[index].concrete


def estimate_attention(name: str, args: Sequence[Arg]) -> OpCost | None:
    """Cost of one fused attention forward call, or None if its inputs are not Q, K, V tensors."""
    if name in _BHMK_OPS:
        layout, (family, causal_i, writes_lse, lse_flag_i, bias_i) = "BHMK", _BHMK_OPS[name]
    elif name in _BMHK_OPS:
        layout, (family, causal_i, writes_lse, lse_flag_i, bias_i) = "BMHK", _BMHK_OPS[name]
    elif name in _XFORMERS_FLASH:
        layout, family, causal_i, writes_lse, lse_flag_i, bias_i = "BMHK", "flash", 10, True, None, None
    elif _is_xformers_forward(name):
        # Other xformers forwards: attn_bias is a Python object (not visible) and the LSE flag's
        # position changed across versions, so the LSE is left out (under 1% of the bytes).
        layout, family, causal_i, writes_lse, lse_flag_i, bias_i = (
            "BMHK", _xformers_family(name), None, False, None, None)
    else:
        return None
    if len(args) < 3 or not all(a.is_tensor for a in args[:3]):
        return None
    q, k, v = args[0], args[1], args[2]
    if len(q.shape) < 2 or len(k.shape) != len(q.shape) or len(v.shape) != len(q.shape):
        return None

    if layout == "BHMK":
        # (..., M, K): every leading dim is batch x heads.
        *lead, nq, d = q.shape
        nk, dv = k.shape[-2], v.shape[-1]
        batch = lead[0] if len(lead) >= 1 else 1
        heads = math.prod(lead[1:]) if len(lead) >= 2 else 1
        kv_heads = math.prod(k.shape[1:-2]) if len(k.shape) >= 4 else heads
    else:
        # (B, M, H, K) or (B, M, K) with one head.
        if len(q.shape) == 4:
            batch, nq, heads, d = q.shape
            nk, kv_heads, dv = k.shape[1], k.shape[2], v.shape[3]
        elif len(q.shape) == 3:
            batch, nq, d = q.shape
            heads = kv_heads = 1
            nk, dv = k.shape[1], v.shape[2]
        else:
            return None

    causal_value = _concrete(args, causal_i)
    # is_causal is a bool; _efficient_attention_forward's custom_mask_type is 0 (none) or 1/2.
    causal = bool(causal_value) if isinstance(causal_value, (bool, int)) else False
    if writes_lse is None:
        writes_lse = bool(_concrete(args, lse_flag_i))

    bh = batch * heads
    # Causal masking skips about half of the score tiles (exactly half in the limit Nq = Nk).
    mask_factor = 0.5 if causal else 1.0
    flops = mask_factor * 2.0 * bh * nq * nk * (d + dv)
    exps = mask_factor * bh * nq * nk

    out_bytes = bh * nq * dv * q.itemsize
    lse_bytes = bh * nq * _LSE_BYTES if writes_lse else 0
    bias_bytes = args[bias_i].nbytes if bias_i is not None and bias_i < len(args) and args[bias_i].is_tensor else 0
    ideal = q.nbytes + k.nbytes + v.nbytes + out_bytes + lse_bytes + bias_bytes

    tile_q = TILE_Q[family]
    passes = math.ceil(nq / tile_q)
    rereads = q.nbytes + out_bytes + lse_bytes + bias_bytes + (k.nbytes + v.nbytes) * passes

    engine, dtype = tensor_engine(q.dtype)
    shape = AttentionShape(batch=batch, heads=heads, kv_heads=kv_heads, q_tokens=nq, kv_tokens=nk,
                           head_dim=d, head_dim_v=dv, layout=layout, causal=causal, tile_q=tile_q)
    return OpCost(
        flops=flops, bytes=float(ideal), engine=engine, dtype=dtype,
        formula=f"attention.fused.{layout.lower()}", kind="attention",
        bytes_with_rereads=float(rereads), transcendentals=exps, attention=shape,
    )

"""Cost of vLLM's custom ops (``_C::``, ``_C_cache_ops::``): RMS norms, rotary embedding, FP8
activation quantization and the KV-cache write.

Each is one pass over memory; the formulas follow the aten rows of docs/cost-model.md
(``norm.rms``: 4 FLOPs per element, a copy: 0), with vLLM's argument order as its
``csrc/torch_bindings.cpp`` / ``csrc/cache.h`` declare it and as TraceLens' B200 vLLM trace
records it:

- ``_C::rms_norm(out, input, weight, epsilon)``: reads input and weight, writes out.
- ``_C::fused_add_rms_norm(input, residual, weight, epsilon)``: in place: residual += input,
  input = norm(residual) * weight: reads input, residual and weight, writes input and residual.
- ``_C::rotary_embedding(positions, query, key, head_size, cos_sin_cache, is_neox)``: rotates
  query and key in place (read and written), reads the positions and one cache row per token,
  never the whole cache (131,072 rows in the trace; 888 are read).
- ``_C::static_scaled_fp8_quant(out, input, scale)``: reads input, writes FP8 out;
  ``dynamic_scaled_fp8_quant`` first reduces the input's absolute maximum (a second read);
  ``dynamic_per_token_scaled_fp8_quant(out, input, scales, ...)`` does it per row, in the same
  pass (one read).
- ``_C_cache_ops::reshape_and_cache(_flash)(key, value, key_cache, value_cache, slot_mapping,
  kv_cache_dtype, k_scale, v_scale)``: writes each token's K and V into its slot, in the cache's
  dtype (FP8 caches store one byte an element): reads key, value and the slot mapping, writes
  as many elements of the cache, never the whole cache (4.2 M blocks in the trace).
- aiter's ``rmsnorm2d_fwd(out, input, weight, eps)`` and ``rmsnorm2d_fwd_with_add(out, input,
  residual_in, residual_out, weight, eps)`` (``_ck`` variants alike; vLLM on ROCm): every tensor
  argument once (inputs read, outputs written).
"""

from __future__ import annotations

from typing import Sequence

from .op_args import Arg
from .op_cost import OpCost

_RMS_FLOPS = 4          # as norm.rms: square, sum, scale by rsqrt, weight
_ROTARY_FLOPS = 3       # two products and a sum per rotated element
_QUANT_FLOPS = 2        # scale and clamp per element

_OPS = ("_C::rms_norm", "_C::fused_add_rms_norm", "_C::rotary_embedding",
        "_C::static_scaled_fp8_quant", "_C::dynamic_scaled_fp8_quant",
        "_C::dynamic_per_token_scaled_fp8_quant", "_C_cache_ops::reshape_and_cache",
        "_C_cache_ops::reshape_and_cache_flash", "aiter::rmsnorm2d_fwd", "aiter::rmsnorm2d_fwd_ck",
        "aiter::rmsnorm2d_fwd_with_add", "aiter::rmsnorm2d_fwd_with_add_ck")


def is_serving_op(name: str) -> bool:
    return name in _OPS


def _tensors(args: Sequence[Arg], count: int) -> list[Arg] | None:
    if len(args) < count or not all(a.is_tensor and a.itemsize for a in args[:count]):
        return None
    return list(args[:count])


def estimate_serving_op(name: str, args: Sequence[Arg]) -> OpCost | None:
    """Cost of one call of a vLLM custom op :func:`is_serving_op` accepts, or None when its
    recorded arguments are not the ones it takes."""
    if name == "_C::rms_norm":
        t = _tensors(args, 3)
        if t is None:
            return None
        out, x, w = t
        return OpCost(flops=_RMS_FLOPS * x.numel, bytes=float(x.nbytes + w.nbytes + out.nbytes),
                      engine="cuda", dtype=x.dtype, formula="vllm.rms_norm", kind="norm",
                      transcendentals=x.numel / max(x.shape[-1], 1))
    if name.startswith("aiter::rmsnorm2d_fwd"):
        tensors = [a for a in args if a.is_tensor and a.itemsize and a.shape]
        if len(tensors) < 3:
            return None
        x = tensors[1]
        add = 1 if "with_add" in name else 0
        return OpCost(flops=(_RMS_FLOPS + add) * x.numel, bytes=float(sum(t.nbytes for t in tensors)),
                      engine="cuda", dtype=x.dtype, formula="vllm.rms_norm", kind="norm",
                      transcendentals=x.numel / max(x.shape[-1], 1))
    if name == "_C::fused_add_rms_norm":
        t = _tensors(args, 3)
        if t is None:
            return None
        x, residual, w = t
        return OpCost(flops=(_RMS_FLOPS + 1) * x.numel,
                      bytes=float(2 * x.nbytes + 2 * residual.nbytes + w.nbytes), engine="cuda",
                      dtype=x.dtype, formula="vllm.fused_add_rms_norm", kind="norm",
                      transcendentals=x.numel / max(x.shape[-1], 1))
    if name == "_C::rotary_embedding":
        if len(args) < 5 or not all(args[i].is_tensor for i in (0, 1, 2, 4)):
            return None
        positions, q, k, cache = args[0], args[1], args[2], args[4]
        rows = positions.numel * (cache.shape[-1] if cache.shape else 0) * cache.itemsize
        return OpCost(flops=_ROTARY_FLOPS * (q.numel + k.numel),
                      bytes=float(2 * (q.nbytes + k.nbytes) + positions.nbytes + rows),
                      engine="cuda", dtype=q.dtype, formula="vllm.rotary_embedding",
                      kind="elementwise")
    if name.endswith("scaled_fp8_quant"):
        t = _tensors(args, 2)
        if t is None:
            return None
        out, x = t
        reads = 2 if name == "_C::dynamic_scaled_fp8_quant" else 1
        return OpCost(flops=_QUANT_FLOPS * x.numel, bytes=float(reads * x.nbytes + out.nbytes),
                      engine="cuda", dtype=x.dtype, formula="vllm.scaled_fp8_quant",
                      kind="elementwise")
    if name.startswith("_C_cache_ops::reshape_and_cache"):
        t = _tensors(args, 5)
        if t is None:
            return None
        key, value, key_cache, value_cache, slots = t
        written = key.numel * key_cache.itemsize + value.numel * value_cache.itemsize
        return OpCost(flops=0.0, bytes=float(key.nbytes + value.nbytes + slots.nbytes + written),
                      engine="cuda", dtype=key.dtype, formula="vllm.reshape_and_cache",
                      kind="copy")
    return None

"""Cost of memory-bound ops on CUDA cores: softmax, norms, element-wise, copies, reductions,
upsampling (see cost_model/__init__.py). Bytes: each tensor input read once, the output written once;
FLOPs: a small per-element constant (these ops sit far left of every ridge point)."""

from __future__ import annotations

import math
from typing import Sequence

from .op_args import DTYPE_BYTES, Arg, broadcast, promote, scalar_type
from .op_cost import HelperTraffic, OpCost


def _tensors(args: Sequence[Arg]) -> list[Arg]:
    return [a for a in args if a.is_tensor]



# --------------------------------------------------------------------------------------------
# Softmax and normalization: memory-bound passes over the tensor
# --------------------------------------------------------------------------------------------

# Per element: max-reduce, subtract, exp, sum-reduce, divide.
_SOFTMAX_FLOPS_PER_ELEM = 5
# Per element: mean (1 add), variance (sub, square, add = 3), normalize (sub, mul = 2),
# affine (mul, add = 2). One rsqrt per normalized row goes to ``transcendentals``.
_NORM_FLOPS_PER_ELEM = 8
# Inference batch norm with running statistics: normalize (sub, mul) + affine (mul, add).
_BATCHNORM_FLOPS_PER_ELEM = 4
# RMSNorm: square, sum, scale by rsqrt, scale by weight.
_RMSNORM_FLOPS_PER_ELEM = 4


def _softmax(name: str, args: Sequence[Arg]) -> OpCost | None:
    x = args[0]
    out_dtype = x.dtype
    if name in ("aten::_softmax", "aten::_log_softmax"):
        # _softmax(input, dim, half_to_float): True writes fp32 from a half input.
        if len(args) > 2 and args[2].concrete is True:
            out_dtype = "fp32"
    elif len(args) > 2:
        st = scalar_type(args[2].concrete)  # softmax(input, dim, dtype=None)
        out_dtype = st[0] if st else out_dtype
    out_bytes = x.numel * DTYPE_BYTES.get(out_dtype or "", x.itemsize)
    return OpCost(flops=float(_SOFTMAX_FLOPS_PER_ELEM * x.numel), bytes=float(x.nbytes + out_bytes),
                  engine="cuda", dtype=x.dtype or "unknown", formula="softmax.rowwise",
                  kind="softmax", transcendentals=float(x.numel))


GROUP_NORM_INPUT_READS = 2


def _norm_cost(x: Arg, params: Sequence[Arg], rows: int, stats_written: bool,
               flops_per_elem: int, formula: str, input_reads: int = 1,
               helper: HelperTraffic | None = None) -> OpCost:
    param_bytes = sum(p.nbytes for p in params if p.is_tensor)
    # native_* ops also return the per-row mean and rstd (fp32) for the backward pass.
    stats = 2 * rows * 4 if stats_written else 0
    return OpCost(flops=float(flops_per_elem * x.numel),
                  bytes=float((input_reads + 1) * x.nbytes + param_bytes + stats),
                  engine="cuda", dtype=x.dtype or "unknown", formula=formula, kind="norm",
                  transcendentals=float(rows), helper=helper)


def _rows(args: Sequence[Arg]) -> int:
    """Rows a layer/RMS norm normalizes: input elements over the normalized_shape (args[1])."""
    x = args[0]
    normalized = args[1].concrete if len(args) > 1 else None
    inner = math.prod(normalized) if isinstance(normalized, (list, tuple)) and normalized else x.shape[-1]
    return x.numel // max(inner, 1)


def _layer_norm(name: str, args: Sequence[Arg]) -> OpCost | None:
    # layer_norm(input, normalized_shape, weight, bias, eps, cudnn_enable); native_: no cudnn_enable
    # A row fits in registers: one pass, x read once. diffusers calls it on a permuted (B, HW, C)
    # view of an NCHW activation: PyTorch first copies it contiguous, a helper copy of x.
    return _norm_cost(args[0], args[2:4], _rows(args), name == "aten::native_layer_norm",
                      _NORM_FLOPS_PER_ELEM, "norm.layer",
                      helper=HelperTraffic(before_bytes=(float(args[0].nbytes),)))


def _group_norm(name: str, args: Sequence[Arg]) -> OpCost | None:
    x = args[0]
    if name == "aten::native_group_norm":
        # native_group_norm(input, weight, bias, N, C, HxW, group, eps)
        groups = args[6].concrete if len(args) > 6 else None
        params = args[1:3]
    else:
        # group_norm(input, num_groups, weight, bias, eps, cudnn_enabled)
        groups = args[1].concrete if len(args) > 1 else None
        params = args[2:4]
    groups = groups if isinstance(groups, int) and groups > 0 else 1
    rows = x.shape[0] * groups
    # Two passes over x: a group (C/groups channels x H x W) does not fit on chip, so PyTorch's
    # CUDA kernel computes the moments (RowwiseMoments) in one pass and normalizes in a second,
    # reading x twice: 3 |x| (measured on an H200: 3.0 |x| over the three kernels).
    return _norm_cost(x, params, rows, name == "aten::native_group_norm",
                      _NORM_FLOPS_PER_ELEM, "norm.group", input_reads=GROUP_NORM_INPUT_READS)


def _batch_norm(name: str, args: Sequence[Arg]) -> OpCost | None:
    x = args[0]
    channels = x.shape[1] if len(x.shape) > 1 else 1
    return _norm_cost(x, args[1:5], channels, False, _BATCHNORM_FLOPS_PER_ELEM, "norm.batch")


def _rms_norm(name: str, args: Sequence[Arg]) -> OpCost | None:
    # rms_norm(input, normalized_shape, weight, eps)
    return _norm_cost(args[0], args[2:3], _rows(args), False, _RMSNORM_FLOPS_PER_ELEM, "norm.rms")


# --------------------------------------------------------------------------------------------
# Element-wise, copies, data movement: bytes = tensor inputs + output; flops = c · output elements
# --------------------------------------------------------------------------------------------

# FLOPs per output element (a small constant: these ops are memory-bound on every GPU here) and
# whether each element needs a special-function evaluation (exp, tanh, erf, rsqrt, sin ...).
_ELEMENTWISE: dict[str, tuple[int, bool]] = {
    "add": (1, False), "sub": (1, False), "mul": (1, False), "div": (1, False), "rsub": (1, False),
    "neg": (1, False), "abs": (1, False), "reciprocal": (1, False), "pow": (1, False),
    "square": (1, False), "sqrt": (1, True), "rsqrt": (1, True),
    "exp": (1, True), "log": (1, True), "sin": (1, True), "cos": (1, True), "tanh": (1, True),
    "erf": (1, True), "relu": (1, False), "clamp": (1, False), "clamp_min": (1, False),
    "clamp_max": (1, False), "maximum": (1, False), "minimum": (1, False), "where": (1, False),
    "sigmoid": (3, True),             # exp, add, divide
    "silu": (4, True),                # x * sigmoid(x)
    "gelu": (8, True),                # x/2 · (1 + erf(x/√2)), or the tanh approximation
    "addcmul": (2, False), "addcdiv": (2, False), "lerp": (2, False),
    "masked_fill": (1, False), "eq": (1, False), "ne": (1, False), "lt": (1, False),
    "le": (1, False), "gt": (1, False), "ge": (1, False),
    # SDPA's math backend checks the scores with these (_safe_softmax): one pass each.
    "isneginf": (1, False), "isposinf": (1, False), "isinf": (1, False), "isnan": (1, False),
    "logical_not": (1, False), "logical_and": (1, False), "logical_or": (1, False),
}
_COMPARISONS = {"eq", "ne", "lt", "le", "gt", "ge", "isneginf", "isposinf", "isinf", "isnan",
                "logical_not", "logical_and", "logical_or"}
# Pure data movement: no arithmetic. Output = same elements as the (first) input.
_FILLS = {"fill", "zero", "uniform", "normal", "random", "bernoulli", "exponential"}
_COPIES = _FILLS | {"copy", "clone", "contiguous", "_to_copy", "to", "index_select",
           "embedding", "repeat", "roll", "flip", "constant_pad_nd", "pad", "tril", "triu"}
_JOINS = {"cat", "stack", "_cat"}
_REDUCTIONS = {"sum", "mean", "amax", "amin", "max", "min", "prod", "norm", "var", "std", "all", "any"}
_BOOL_REDUCTIONS = {"all", "any"}
_UPSAMPLES = {"upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
              "upsample_bilinear2d", "upsample_linear1d", "upsample_trilinear3d", "upsample_bicubic2d"}
_UPSAMPLE_FLOPS = {"nearest": 0, "linear": 3, "bilinear": 7, "trilinear": 15, "bicubic": 31}


def _base(name: str) -> str:
    """"aten::add_" -> "add": an in-place variant costs the same as the out-of-place one."""
    base = name.split("::", 1)[-1]
    return base[:-1] if base.endswith("_") and not base.endswith("__") else base


def _elementwise(base: str, args: Sequence[Arg], fallback_dtype: str | None) -> OpCost | None:
    tensors = _tensors(args)
    if not tensors:
        return None
    dimensioned = [t for t in tensors if t.shape]
    out_shape = broadcast([t.shape for t in (dimensioned or tensors)])
    dtype = promote([t.dtype for t in (dimensioned or tensors)]) or fallback_dtype
    if base in _COMPARISONS:
        out_dtype = "bool"
    elif base == "div" and dtype not in (None, "fp16", "bf16", "fp32", "fp64"):
        out_dtype = "fp32"  # true division of integers yields the default float dtype
    else:
        out_dtype = dtype
    numel = math.prod(out_shape)
    in_bytes = sum(t.nbytes for t in tensors)
    flops_per, special = _ELEMENTWISE[base]
    return OpCost(flops=float(flops_per * numel), bytes=float(in_bytes + numel * DTYPE_BYTES.get(out_dtype or "", 0)),
                  engine="cuda", dtype=dtype or "unknown", formula="elementwise",
                  kind="elementwise", transcendentals=float(numel if special else 0))


def _copy(base: str, args: Sequence[Arg], fallback_dtype: str | None) -> OpCost | None:
    tensors = _tensors(args)
    if not tensors:
        return None
    if base == "copy" and len(tensors) >= 2:
        # copy_(self, src): read src, write self (converting to self's dtype).
        dst, src = tensors[0], tensors[1]
        return OpCost(flops=0.0, bytes=float(src.nbytes + dst.nbytes), engine="cuda",
                      dtype=dst.dtype or "unknown", formula="copy", kind="copy")
    if base in _FILLS:
        # Writes its tensor in place (constant or random numbers); reads nothing of size.
        t = tensors[0]
        return OpCost(flops=0.0, bytes=float(t.nbytes), engine="cuda", dtype=t.dtype or "unknown",
                      formula="copy.fill", kind="copy")
    src = tensors[0]
    out_itemsize = src.itemsize
    if base in ("_to_copy", "to"):
        if len(tensors) >= 2:                       # to(other): other's dtype
            out_itemsize = tensors[1].itemsize
        else:                                       # to(dtype) / _to_copy(dtype=...): first dtype code
            for a in args[1:]:
                st = scalar_type(a.concrete)
                if st and not a.is_tensor:
                    out_itemsize = st[1]
                    break
    if base in ("embedding", "index_select") and len(tensors) >= 2:
        # embedding(weight, indices): rows gathered = indices; index_select(self, dim, index)
        # (rows taken along dim 0: the embedding case; index_select along another dim is rare)
        weight, index = tensors[0], tensors[1]
        row = weight.numel // max(weight.shape[0], 1) if weight.shape else 1
        out = index.numel * row * weight.itemsize
        return OpCost(flops=0.0, bytes=float(index.nbytes + 2 * out), engine="cuda",
                      dtype=weight.dtype or "unknown", formula="copy.gather", kind="copy")
    out_numel = src.numel
    if base == "repeat" and len(args) > 1 and isinstance(args[1].concrete, (list, tuple)):
        out_numel = src.numel * math.prod(int(r) for r in args[1].concrete)
    if base in ("constant_pad_nd", "pad") and len(args) > 1 and isinstance(args[1].concrete, (list, tuple)):
        pads = list(args[1].concrete)
        shape = list(src.shape)
        for i in range(0, len(pads) - 1, 2):
            dim = len(shape) - 1 - i // 2
            if dim >= 0:
                shape[dim] += pads[i] + pads[i + 1]
        out_numel = math.prod(shape)
    return OpCost(flops=0.0, bytes=float(src.nbytes + out_numel * out_itemsize), engine="cuda",
                  dtype=src.dtype or fallback_dtype or "unknown", formula="copy", kind="copy")


def _join(args: Sequence[Arg], fallback_dtype: str | None) -> OpCost | None:
    # cat/stack(tensors, dim): the TensorList carries shapes but no dtype in Kineto's record.
    shapes = args[0].shapes if args else ()
    if not shapes:
        return None
    dtype = fallback_dtype
    itemsize = DTYPE_BYTES.get(dtype or "", 0)
    if not itemsize:
        return None
    numel = sum(math.prod(s) for s in shapes)
    return OpCost(flops=0.0, bytes=float(2 * numel * itemsize), engine="cuda", dtype=dtype,
                  formula="copy.join", kind="copy")


def _reduction(base: str, args: Sequence[Arg]) -> OpCost | None:
    x = args[0] if args and args[0].is_tensor else None
    if x is None or not x.shape:
        return None
    dims = args[1].concrete if len(args) > 1 else None
    if isinstance(dims, int) and not isinstance(dims, bool):
        dims = [dims]
    if isinstance(dims, (list, tuple)) and dims and all(isinstance(d, int) for d in dims):
        reduced = {d % len(x.shape) for d in dims}
        out_numel = math.prod(s for i, s in enumerate(x.shape) if i not in reduced)
    else:
        out_numel = 1
    out_itemsize = 1 if base in _BOOL_REDUCTIONS else x.itemsize
    return OpCost(flops=float(x.numel), bytes=float(x.nbytes + out_numel * out_itemsize), engine="cuda",
                  dtype=x.dtype or "unknown", formula="reduction", kind="reduction")


def _upsample(base: str, args: Sequence[Arg]) -> OpCost | None:
    x = args[0]
    if len(x.shape) < 3:
        return None
    nd = len(x.shape) - 2
    out_spatial = None
    for a in args[1:]:
        v = a.concrete
        if isinstance(v, (list, tuple)) and len(v) == nd and all(isinstance(s, int) for s in v):
            out_spatial = tuple(v)                       # output_size
            break
        if isinstance(v, (list, tuple)) and len(v) == nd and all(isinstance(s, float) for s in v):
            out_spatial = tuple(int(math.floor(i * s)) for i, s in zip(x.shape[2:], v))  # scale_factors
            break
    if out_spatial is None:
        return None
    out_numel = x.shape[0] * x.shape[1] * math.prod(out_spatial)
    mode = base.split("_")[1].rstrip("123d")
    flops = _UPSAMPLE_FLOPS.get(mode, 0) * out_numel
    return OpCost(flops=float(flops), bytes=float(x.nbytes + out_numel * x.itemsize), engine="cuda",
                  dtype=x.dtype or "unknown", formula="copy.upsample", kind="copy")


NORM_OPS = {
    "aten::layer_norm": _layer_norm, "aten::native_layer_norm": _layer_norm,
    "aten::group_norm": _group_norm, "aten::native_group_norm": _group_norm,
    "aten::batch_norm": _batch_norm, "aten::_native_batch_norm_legit_no_training": _batch_norm,
    "aten::cudnn_batch_norm": _batch_norm, "aten::native_batch_norm": _batch_norm,
    "aten::rms_norm": _rms_norm, "aten::_fused_rms_norm": _rms_norm,
}
SOFTMAX_OPS = frozenset({"aten::softmax", "aten::_softmax", "aten::log_softmax", "aten::_log_softmax",
                         "aten::_safe_softmax"})


def is_pointwise(name: str) -> bool:
    """Does :func:`estimate_pointwise` know this op name?"""
    if name in NORM_OPS or name in SOFTMAX_OPS:
        return True
    if not name.startswith("aten::"):
        return False
    base = _base(name)
    return (base in _ELEMENTWISE or base in _COPIES or base in _JOINS or base in _REDUCTIONS
            or base in _UPSAMPLES)


def estimate_pointwise(name: str, args: Sequence[Arg], fallback_dtype: str | None) -> OpCost | None:
    if not args:
        return None
    if name in SOFTMAX_OPS:
        return _softmax(name, args) if args[0].is_tensor else None
    if name in NORM_OPS:
        return NORM_OPS[name](name, args) if args[0].is_tensor and args[0].shape else None
    if not name.startswith("aten::"):
        return None
    base = _base(name)
    if base in _ELEMENTWISE:
        return _elementwise(base, args, fallback_dtype)
    if base in _COPIES:
        return _copy(base, args, fallback_dtype)
    if base in _JOINS:
        return _join(args, fallback_dtype)
    if base in _REDUCTIONS:
        return _reduction(base, args)
    if base in _UPSAMPLES:
        return _upsample(base, args) if args[0].is_tensor else None
    return None

"""FLOPs and ideal HBM bytes of one op call, from the shapes and dtypes a Kineto trace records.

Pure functions, no torch. Every figure is an estimate: ideal traffic is each input read once and
each output written once (L2 reuse and re-reads ignored); Nsight Compute's
``dram__bytes_read.sum`` / ``dram__bytes_write.sum`` are the measurement to check it against.
Formulas and their sources: docs/cost-model.md (``OpCost.formula`` names the row).

Ops nest in a trace (``aten::conv2d`` > ``aten::convolution`` > ``aten::_convolution`` >
``aten::cudnn_convolution``; ``aten::linear`` > ``aten::addmm``); each level is costed as the
whole op seen from that level, so a caller attributing a kernel should cost one level only,
normally the innermost op that launched it.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .costmodel_attention import estimate_attention, is_fused_attention
from .opargs import DTYPE_BYTES, Arg, broadcast, ints, parse_args, promote, scalar_type
from .opcost import AttentionShape, OpCost

__all__ = ["OpCost", "AttentionShape", "estimate_op", "estimate_from_args", "is_modeled"]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

def _tensors(args: Sequence[Arg]) -> list[Arg]:
    return [a for a in args if a.is_tensor]


def _tensor_engine(dtype: str | None, tf32: bool) -> tuple[str, str]:
    """(engine, dtype label) of a GEMM/conv: tensor cores for 16-bit and 8-bit floats, for fp32
    only when TF32 is allowed (then labelled "tf32"); CUDA cores otherwise."""
    if dtype in ("fp16", "bf16") or (dtype or "").startswith("fp8"):
        return "tensor", dtype
    if dtype == "fp32" and tf32:
        return "tensor", "tf32"
    return "cuda", dtype or "unknown"


def _nonzero(value: Any, default: float = 1.0) -> bool:
    """Is a beta/alpha concrete value non-zero? Unknown counts as the default."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    return default != 0


# --------------------------------------------------------------------------------------------
# GEMM family: FLOPs = 2·M·N·K (one multiply + one add per MAC), + M·N for a bias/beta add
# --------------------------------------------------------------------------------------------

def _gemm_cost(flops: float, byte_count: float, dtype: str | None, tf32: bool, formula: str) -> OpCost:
    engine, label = _tensor_engine(dtype, tf32)
    return OpCost(flops=float(flops), bytes=float(byte_count), engine=engine, dtype=label,
                  formula=formula, kind="gemm")


def _mm(args: Sequence[Arg], tf32: bool) -> OpCost | None:
    a, b = args[0], args[1]
    if len(a.shape) != 2 or len(b.shape) != 2:
        return None
    (m, k), n = a.shape, b.shape[1]
    out = m * n * a.itemsize
    return _gemm_cost(2 * m * n * k, a.nbytes + b.nbytes + out, a.dtype, tf32, "gemm.mm")


def _addmm(args: Sequence[Arg], tf32: bool) -> OpCost | None:
    # addmm(bias, mat1, mat2, beta, alpha)
    bias, a, b = args[0], args[1], args[2]
    if len(a.shape) != 2 or len(b.shape) != 2:
        return None
    (m, k), n = a.shape, b.shape[1]
    with_bias = _nonzero(args[3].concrete if len(args) > 3 else None)
    flops = 2 * m * n * k + (m * n if with_bias else 0)
    byte_count = a.nbytes + b.nbytes + m * n * a.itemsize + (bias.nbytes if with_bias else 0)
    return _gemm_cost(flops, byte_count, a.dtype, tf32, "gemm.addmm")


def _bmm(args: Sequence[Arg], tf32: bool) -> OpCost | None:
    a, b = args[0], args[1]
    if len(a.shape) != 3 or len(b.shape) != 3:
        return None
    batch, m, k = a.shape
    n = b.shape[2]
    out = batch * m * n * a.itemsize
    return _gemm_cost(2 * batch * m * n * k, a.nbytes + b.nbytes + out, a.dtype, tf32, "gemm.bmm")


def _baddbmm(args: Sequence[Arg], tf32: bool) -> OpCost | None:
    # baddbmm(input, batch1, batch2, beta, alpha). diffusers' vanilla attention passes an empty
    # input with beta=0: then the input is never read and only Q·Kᵀ's result is written.
    inp, a, b = args[0], args[1], args[2]
    if len(a.shape) != 3 or len(b.shape) != 3:
        return None
    batch, m, k = a.shape
    n = b.shape[2]
    with_input = _nonzero(args[3].concrete if len(args) > 3 else None)
    flops = 2 * batch * m * n * k + (batch * m * n if with_input else 0)
    byte_count = a.nbytes + b.nbytes + batch * m * n * a.itemsize + (inp.nbytes if with_input else 0)
    return _gemm_cost(flops, byte_count, a.dtype, tf32, "gemm.baddbmm")


def _matmul(args: Sequence[Arg], tf32: bool) -> OpCost | None:
    # torch.matmul's broadcasting rules: 1-D operands gain (and lose) a dim, leading dims broadcast.
    a, b = args[0], args[1]
    sa, sb = list(a.shape), list(b.shape)
    if not sa or not sb:
        return None
    if len(sa) == 1:
        sa = [1] + sa
    if len(sb) == 1:
        sb = sb + [1]
    m, k = sa[-2], sa[-1]
    n = sb[-1]
    batch = math.prod(broadcast([sa[:-2], sb[:-2]]))
    out = batch * m * n * a.itemsize
    return _gemm_cost(2 * batch * m * n * k, a.nbytes + b.nbytes + out, a.dtype, tf32, "gemm.matmul")


def _linear(args: Sequence[Arg], tf32: bool) -> OpCost | None:
    # linear(input[..., K], weight[N, K], bias[N]?)
    x, w = args[0], args[1]
    if len(w.shape) != 2 or not x.shape:
        return None
    n, k = w.shape
    m = math.prod(x.shape[:-1])
    bias = args[2] if len(args) > 2 and args[2].is_tensor else None
    flops = 2 * m * n * k + (m * n if bias else 0)
    byte_count = x.nbytes + w.nbytes + m * n * x.itemsize + (bias.nbytes if bias else 0)
    return _gemm_cost(flops, byte_count, x.dtype, tf32, "gemm.linear")


def _scaled_mm(args: Sequence[Arg], tf32: bool) -> OpCost | None:
    # _scaled_mm(mat1, mat2, scale_a, scale_b, bias, scale_result, out_dtype, use_fast_accum): FP8 GEMM
    a, b = args[0], args[1]
    if len(a.shape) != 2 or len(b.shape) != 2:
        return None
    (m, k), n = a.shape, b.shape[1]
    out_type = scalar_type(args[6].concrete) if len(args) > 6 else None
    out_size = out_type[1] if out_type else 2
    return _gemm_cost(2 * m * n * k, a.nbytes + b.nbytes + m * n * out_size, a.dtype, tf32, "gemm.scaled_mm")


# --------------------------------------------------------------------------------------------
# Convolution: FLOPs = 2 · N · Cout · prod(out spatial) · (Cin / groups) · prod(kernel)
# --------------------------------------------------------------------------------------------

# op -> (index of bias or None, stride, padding, dilation, transposed, output_padding, groups, allow_tf32)
_CONV_ARGS = {
    "aten::conv1d": (2, 3, 4, 5, None, None, 6, None),
    "aten::conv2d": (2, 3, 4, 5, None, None, 6, None),
    "aten::conv3d": (2, 3, 4, 5, None, None, 6, None),
    "aten::convolution": (2, 3, 4, 5, 6, 7, 8, None),
    "aten::_convolution": (2, 3, 4, 5, 6, 7, 8, 12),
    # cudnn_convolution(input, weight, padding, stride, dilation, groups, benchmark, deterministic, allow_tf32)
    "aten::cudnn_convolution": (None, 3, 2, 4, None, None, 5, 8),
    # cudnn_convolution_transpose(input, weight, padding, output_padding, stride, dilation, groups, ..., allow_tf32)
    "aten::cudnn_convolution_transpose": (None, 4, 2, 5, "always", 3, 6, 9),
    # miopen_convolution(input, weight, bias, padding, stride, dilation, groups, benchmark, deterministic)
    "aten::miopen_convolution": (2, 4, 3, 5, None, None, 6, None),
    # mkldnn_convolution(input, weight, bias, padding, stride, dilation, groups)
    "aten::mkldnn_convolution": (2, 4, 3, 5, None, None, 6, None),
    # conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation)
    "aten::conv_transpose1d": (2, 3, 4, 7, "always", 5, 6, None),
    "aten::conv_transpose2d": (2, 3, 4, 7, "always", 5, 6, None),
    "aten::conv_transpose3d": (2, 3, 4, 7, "always", 5, 6, None),
}

# cuDNN convolutions run TF32 on fp32 inputs unless torch.backends.cudnn.allow_tf32 is turned
# off (PyTorch's default is on); the lower ops record the flag, conv2d and friends do not.
_CUDNN_TF32_DEFAULT = True


def _conv_geometry(name: str, args: Sequence[Arg]):
    """(batch, out channels, out spatial dims, MACs, formula) of a convolution call, or None."""
    _, stride_i, pad_i, dil_i, trans_i, outpad_i, groups_i, _ = _CONV_ARGS[name]
    x, w = args[0], args[1]
    if not (x.is_tensor and w.is_tensor) or len(x.shape) < 3 or len(w.shape) != len(x.shape):
        return None
    conc = lambda i: args[i].concrete if i is not None and i < len(args) else None  # noqa: E731
    nd = len(x.shape) - 2
    stride = ints(conc(stride_i), nd, 1)
    dilation = ints(conc(dil_i), nd, 1)
    groups = conc(groups_i)
    groups = groups if isinstance(groups, int) and not isinstance(groups, bool) and groups > 0 else 1
    transposed = trans_i == "always" or bool(conc(trans_i))
    kernel = w.shape[2:]
    n, cin, spatial = x.shape[0], x.shape[1], x.shape[2:]

    padding_value = conc(pad_i)
    if padding_value == "valid":
        padding = (0,) * nd
    else:
        padding = ints(padding_value, nd, 0)

    if transposed:
        # weight: (Cin, Cout / groups, k...); out = (in - 1)·s - 2p + d·(k - 1) + output_padding + 1
        cout = w.shape[1] * groups
        outpad = ints(conc(outpad_i), nd, 0)
        out_spatial = tuple((i - 1) * s - 2 * p + d * (kk - 1) + op + 1
                            for i, s, p, d, kk, op in zip(spatial, stride, padding, dilation, kernel, outpad))
        macs = n * cin * math.prod(spatial) * (cout // groups) * math.prod(kernel)
        formula = "conv.transposed"
    else:
        # weight: (Cout, Cin / groups, k...); out = floor((in + 2p - d·(k - 1) - 1) / s) + 1
        cout = w.shape[0]
        if padding_value == "same":   # conv2d(padding="same") requires stride 1: out = in
            out_spatial = tuple(spatial)
        else:
            out_spatial = tuple((i + 2 * p - d * (kk - 1) - 1) // s + 1
                                for i, s, p, d, kk in zip(spatial, stride, padding, dilation, kernel))
        macs = n * cout * math.prod(out_spatial) * (cin // groups) * math.prod(kernel)
        formula = "conv.direct"
    if any(o <= 0 for o in out_spatial):
        return None
    return n, cout, out_spatial, macs, formula


def _conv(name: str, args: Sequence[Arg], allow_tf32: bool | None) -> OpCost | None:
    geometry = _conv_geometry(name, args)
    if geometry is None:
        return None
    n, cout, out_spatial, macs, formula = geometry
    bias_i, tf32_i = _CONV_ARGS[name][0], _CONV_ARGS[name][7]
    x, w = args[0], args[1]
    out_numel = n * cout * math.prod(out_spatial)
    bias = args[bias_i] if bias_i is not None and bias_i < len(args) and args[bias_i].is_tensor else None
    flops = 2 * macs + (out_numel if bias else 0)
    byte_count = x.nbytes + w.nbytes + out_numel * x.itemsize + (bias.nbytes if bias else 0)

    recorded = args[tf32_i].concrete if tf32_i is not None and tf32_i < len(args) else None
    tf32 = allow_tf32 if allow_tf32 is not None else (
        recorded if isinstance(recorded, bool) else _CUDNN_TF32_DEFAULT)
    engine, label = _tensor_engine(x.dtype, tf32 and name != "aten::mkldnn_convolution")
    return OpCost(flops=float(flops), bytes=float(byte_count), engine=engine, dtype=label,
                  formula=formula, kind="conv")


def conv_output_shape(name: str, input_dims: list, input_types: list,
                      concrete_inputs: list | None) -> tuple[int, ...] | None:
    """Output shape (N, Cout, spatial...) of a convolution op call, or None if not a conv."""
    if name not in _CONV_ARGS:
        return None
    args = parse_args(input_dims, input_types, concrete_inputs)
    geometry = _conv_geometry(name, args) if len(args) >= 2 else None
    if geometry is None:
        return None
    n, cout, out_spatial, _, _ = geometry
    return (n, cout, *out_spatial)


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


def _norm_cost(x: Arg, params: Sequence[Arg], rows: int, stats_written: bool,
               flops_per_elem: int, formula: str) -> OpCost:
    param_bytes = sum(p.nbytes for p in params if p.is_tensor)
    # native_* ops also return the per-row mean and rstd (fp32) for the backward pass.
    stats = 2 * rows * 4 if stats_written else 0
    return OpCost(flops=float(flops_per_elem * x.numel), bytes=float(2 * x.nbytes + param_bytes + stats),
                  engine="cuda", dtype=x.dtype or "unknown", formula=formula, kind="norm",
                  transcendentals=float(rows))


def _layer_norm(name: str, args: Sequence[Arg]) -> OpCost | None:
    # layer_norm(input, normalized_shape, weight, bias, eps, cudnn_enable); native_: no cudnn_enable
    x = args[0]
    normalized = args[1].concrete if len(args) > 1 else None
    inner = math.prod(normalized) if isinstance(normalized, (list, tuple)) and normalized else x.shape[-1]
    rows = x.numel // max(inner, 1)
    return _norm_cost(x, args[2:4], rows, name == "aten::native_layer_norm",
                      _NORM_FLOPS_PER_ELEM, "norm.layer")


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
    return _norm_cost(x, params, rows, name == "aten::native_group_norm",
                      _NORM_FLOPS_PER_ELEM, "norm.group")


def _batch_norm(name: str, args: Sequence[Arg]) -> OpCost | None:
    x = args[0]
    channels = x.shape[1] if len(x.shape) > 1 else 1
    return _norm_cost(x, [a for a in args[1:5] if a.is_tensor], channels, False,
                      _BATCHNORM_FLOPS_PER_ELEM, "norm.batch")


def _rms_norm(name: str, args: Sequence[Arg]) -> OpCost | None:
    x = args[0]
    normalized = args[1].concrete if len(args) > 1 else None
    inner = math.prod(normalized) if isinstance(normalized, (list, tuple)) and normalized else x.shape[-1]
    rows = x.numel // max(inner, 1)
    return _norm_cost(x, [a for a in args[2:3] if a.is_tensor], rows, False,
                      _RMSNORM_FLOPS_PER_ELEM, "norm.rms")


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


# --------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------

_GEMMS = {
    "aten::mm": _mm, "aten::addmm": _addmm, "aten::bmm": _bmm, "aten::baddbmm": _baddbmm,
    "aten::matmul": _matmul, "aten::linear": _linear, "aten::_scaled_mm": _scaled_mm,
}
_NORMS = {
    "aten::layer_norm": _layer_norm, "aten::native_layer_norm": _layer_norm,
    "aten::group_norm": _group_norm, "aten::native_group_norm": _group_norm,
    "aten::batch_norm": _batch_norm, "aten::_native_batch_norm_legit_no_training": _batch_norm,
    "aten::cudnn_batch_norm": _batch_norm, "aten::native_batch_norm": _batch_norm,
    "aten::rms_norm": _rms_norm, "aten::_fused_rms_norm": _rms_norm,
}
_SOFTMAXES = {"aten::softmax", "aten::_softmax", "aten::log_softmax", "aten::_log_softmax",
              "aten::_safe_softmax"}

# PyTorch's default for torch.backends.cuda.matmul.allow_tf32 (off since 1.12); the trace does
# not record it, so the caller passes allow_tf32=True when the run turned it on.
_MATMUL_TF32_DEFAULT = False


def is_modeled(name: str) -> bool:
    """Does :func:`estimate_op` have a formula for this op name (inputs permitting)?"""
    if name in _GEMMS or name in _CONV_ARGS or name in _NORMS or name in _SOFTMAXES:
        return True
    if is_fused_attention(name):
        return True
    if not name.startswith("aten::"):
        return False
    base = _base(name)
    return (base in _ELEMENTWISE or base in _COPIES or base in _JOINS or base in _REDUCTIONS
            or base in _UPSAMPLES)


def estimate_op(name: str, input_dims: list, input_types: list, concrete_inputs: list | None,
                *, allow_tf32: bool | None = None, fallback_dtype: str | None = None) -> OpCost | None:
    """Estimated FLOPs and ideal HBM bytes of one op call, or None for ops not modelled.

    ``input_dims``, ``input_types``, ``concrete_inputs``: the Kineto CPU-op event's ``args``
    fields "Input Dims", "Input type", "Concrete Inputs" (the last may be None in old traces).
    ``allow_tf32``: whether fp32 matmuls/convs ran as TF32; None = PyTorch's defaults
    (matmul off; cuDNN conv on, or the flag the conv op recorded).
    ``fallback_dtype``: dtype to assume where the trace records none (``aten::cat``'s
    TensorList); without it such ops return None.
    The caller records the time of a None op as ``unknown`` bound.
    """
    try:
        args = parse_args(input_dims, input_types, concrete_inputs)
    except (TypeError, ValueError):
        return None
    if name in _GEMMS:
        if len(args) < 2 or not all(a.is_tensor for a in args[:2]) or (
                name in ("aten::addmm", "aten::baddbmm") and (len(args) < 3 or not args[2].is_tensor)):
            return None
        tf32 = _MATMUL_TF32_DEFAULT if allow_tf32 is None else allow_tf32
        return _GEMMS[name](args, tf32)
    if name in _CONV_ARGS:
        return _conv(name, args, allow_tf32) if len(args) >= 2 else None
    if is_fused_attention(name):
        return estimate_attention(name, args)
    if not args:
        return None
    if name in _SOFTMAXES:
        return _softmax(name, args) if args[0].is_tensor else None
    if name in _NORMS:
        return _NORMS[name](name, args) if args[0].is_tensor and args[0].shape else None
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


def estimate_from_args(name: str, args: Mapping[str, Any], **kwargs: Any) -> OpCost | None:
    """:func:`estimate_op` on a Kineto event's ``args`` dict as it sits in the trace."""
    return estimate_op(name, args.get("Input Dims") or [], args.get("Input type") or [],
                       args.get("Concrete Inputs"), **kwargs)

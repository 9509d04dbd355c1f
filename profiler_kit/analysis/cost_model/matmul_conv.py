"""Cost of tensor-core-capable ops: the GEMM family and convolutions (see cost_model/__init__.py)."""

from __future__ import annotations

import math
from typing import Any, Sequence

from .op_args import Arg, broadcast, ints, parse_args, scalar_type
from .op_cost import HelperTraffic, OpCost, tensor_engine

# PyTorch's default for torch.backends.cuda.matmul.allow_tf32 (off since 1.12); the trace does
# not record it, so the caller passes allow_tf32=True when the run turned it on.
MATMUL_TF32_DEFAULT = False


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
    engine, label = tensor_engine(dtype, tf32)
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

GEMM_OPS = {
    "aten::mm": _mm, "aten::addmm": _addmm, "aten::bmm": _bmm, "aten::baddbmm": _baddbmm,
    "aten::matmul": _matmul, "aten::linear": _linear, "aten::_scaled_mm": _scaled_mm,
}


def estimate_gemm(name: str, args: Sequence[Arg], allow_tf32: bool | None) -> OpCost | None:
    if len(args) < 2 or not all(a.is_tensor for a in args[:2]) or (
            name in ("aten::addmm", "aten::baddbmm") and (len(args) < 3 or not args[2].is_tensor)):
        return None
    tf32 = MATMUL_TF32_DEFAULT if allow_tf32 is None else allow_tf32
    return GEMM_OPS[name](args, tf32)


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
    if len(args) < 2:
        return None
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


def estimate_conv(name: str, args: Sequence[Arg], allow_tf32: bool | None) -> OpCost | None:
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
    engine, label = tensor_engine(x.dtype, tf32 and name != "aten::mkldnn_convolution")
    # cuDNN's NCHW path (module docstring of op_cost.HelperTraffic): only where helper kernels run
    helper = HelperTraffic(before_bytes=(float(x.nbytes), float(w.nbytes)),
                           after_bytes=float(out_numel * x.itemsize),
                           bias_bytes=float(bias.nbytes) if bias else 0.0)
    return OpCost(flops=float(flops), bytes=float(byte_count), engine=engine, dtype=label,
                  formula=formula, kind="conv", helper=helper)


def conv_output_shape(name: str, input_dims: list, input_types: list,
                      concrete_inputs: list | None) -> tuple[int, ...] | None:
    """Output shape (N, Cout, spatial...) of a convolution op call, or None if not a conv."""
    if name not in _CONV_ARGS:
        return None
    args = parse_args(input_dims, input_types, concrete_inputs)
    geometry = _conv_geometry(name, args)
    if geometry is None:
        return None
    n, cout, out_spatial, _, _ = geometry
    return (n, cout, *out_spatial)


CONV_OPS = frozenset(_CONV_ARGS)

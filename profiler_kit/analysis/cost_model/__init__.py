"""FLOPs and ideal HBM bytes of one op call, from the shapes and dtypes a Kineto trace records.

Pure functions, no torch. Every figure is an estimate: ideal traffic is each input read once and
each output written once (L2 reuse and re-reads ignored); Nsight Compute's
``dram__bytes_read.sum`` / ``dram__bytes_write.sum`` are the measurement to check it against.
Formulas and their sources: docs/cost-model.md (``OpCost.formula`` names the row).

Ops nest in a trace (``aten::conv2d`` > ``aten::convolution`` > ``aten::_convolution`` >
``aten::cudnn_convolution``; ``aten::linear`` > ``aten::addmm``); each level is costed as the
whole op seen from that level, so a caller attributing a kernel should cost one level only
(analysis/kernel_costs.py takes the outermost op of the launching chain that has a cost).
"""

from __future__ import annotations

from typing import Any, Mapping

from .attention_ops import estimate_attention_op, is_attention_op
from .fused_attention import estimate_attention, is_fused_attention
from .inductor import estimate_inductor, is_inductor_kernel
from .matmul_conv import CONV_OPS, GEMM_OPS, conv_output_shape, estimate_conv, estimate_gemm
from .pointwise import estimate_pointwise, is_pointwise
from .serving_ops import estimate_serving_op, is_serving_op
from .op_args import parse_args
from .op_cost import AttentionShape, OpCost

__all__ = ["OpCost", "AttentionShape", "estimate_op", "estimate_from_args", "is_modeled",
           "conv_output_shape"]


def is_modeled(name: str) -> bool:
    """Does :func:`estimate_op` have a formula for this op name (inputs permitting)?"""
    return (name in GEMM_OPS or name in CONV_OPS or is_fused_attention(name) or is_pointwise(name)
            or is_inductor_kernel(name) or is_attention_op(name) or is_serving_op(name))


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
    if name in GEMM_OPS:
        return estimate_gemm(name, args, allow_tf32)
    if name in CONV_OPS:
        return estimate_conv(name, args, allow_tf32)
    if is_fused_attention(name):
        return estimate_attention(name, args)
    if is_attention_op(name):
        return estimate_attention_op(name, args)
    if is_serving_op(name):
        return estimate_serving_op(name, args)
    if is_inductor_kernel(name):
        return estimate_inductor(name, args, allow_tf32)
    return estimate_pointwise(name, args, fallback_dtype)


def estimate_from_args(name: str, args: Mapping[str, Any], **kwargs: Any) -> OpCost | None:
    """:func:`estimate_op` on a Kineto event's ``args`` dict as it sits in the trace."""
    return estimate_op(name, args.get("Input Dims") or [], args.get("Input type") or [],
                       args.get("Concrete Inputs"), **kwargs)

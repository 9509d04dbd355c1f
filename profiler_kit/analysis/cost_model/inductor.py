"""Inductor's generated Triton kernels (torch.compile), costed from the args their op records.

Why: under torch.compile most of a UNet's non-GEMM time runs in kernels Inductor generates and
fuses (``triton_poi_fused_add_convolution_silu_3``: pointwise; ``triton_per_`` / ``triton_red_``:
reductions, a group norm's statistics, a softmax). Each launch sits under a ``cpu_op`` named like
the kernel whose args hold every buffer the kernel touches: "Input Dims" / "Input type" list the
kernel's pointer arguments (inputs, outputs and in-place buffers alike) and its scalar sizes
(``xnumel``, "Scalar"). Without a cost they are 0 FLOPs, 0 bytes and bound ``unknown``: half of a
compiled SD UNet's kernel time on the H200 (docs/gpu-results.md, 2026-12-02).

The estimate (``formula`` "inductor triton: tensors once"):
- ideal HBM bytes: every tensor argument touched once, size x dtype. Outputs are among the
  arguments, so they count as written once. A kernel with a single tensor argument works in
  place (``in_out_ptr0``: Inductor's online softmax over the scores, a fused bias-add into a
  GEMM's output) and reads and writes it: counted twice. An in-place buffer among several
  arguments is counted once, one pass short: the trace does not say which argument it is, so
  that error (at most one buffer's size) is left, not guessed;
- FLOPs: the iteration size (the largest tensor argument's element count) times the number of
  aten ops fused into the kernel, as its name lists them (at least one): a handful of FLOPs per
  element, the right order for kernels that are memory-bound by construction;
- Triton GEMM/conv templates (``triton_tem_``) are not costed here: their M, N, K are not
  recorded apart from the buffers, and a guessed GEMM size would decide a bound on nothing.
"""

from __future__ import annotations

import re

from .op_args import Arg, promote
from .op_cost import OpCost

_TRITON = re.compile(r"^triton_(poi|per|red)_fused_(.+?)(_\d+)?$")
# Aten op names as Inductor spells them inside a kernel name (leading "_" kept: "_softmax").
_OPS = re.compile(r"_?[a-z0-9]+(?:_nd)?")


def is_inductor_kernel(name: str) -> bool:
    return _TRITON.match(name) is not None


def fused_ops(name: str) -> list[str]:
    """The aten ops a kernel name says it fuses: ``triton_poi_fused_add_mul_silu_3`` ->
    [add, mul, silu]. Multi-word ops (native_group_norm, _to_copy) split into their words, so
    the count is an upper bound of the ops and still a handful of FLOPs per element."""
    m = _TRITON.match(name)
    return [w for w in m.group(2).split("_") if w] if m else []


def _kind(name: str, family: str) -> str:
    if "softmax" in name:
        return "softmax"
    if "norm" in name:
        return "norm"
    return "reduction" if family in ("per", "red") else "elementwise"


def estimate_inductor(name: str, args: list[Arg]) -> OpCost | None:
    m = _TRITON.match(name)
    tensors = [a for a in args if a.is_tensor and a.itemsize]
    if m is None or not tensors:
        return None
    nbytes = float(sum(a.nbytes for a in tensors))
    if len(tensors) == 1:
        nbytes *= 2          # in place: read and written (module docstring)
    numel = max(a.numel for a in tensors)
    largest = max(tensors, key=lambda a: a.numel)
    ops = max(1, len(fused_ops(name)))
    return OpCost(flops=float(numel * ops), bytes=nbytes, engine="cuda",
                  dtype=largest.dtype or promote([a.dtype for a in tensors]) or "unknown",
                  formula="inductor triton: tensors once", kind=_kind(name, m.group(1)))

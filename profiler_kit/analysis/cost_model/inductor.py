"""Inductor's generated Triton kernels (torch.compile), costed from the args their op records.

Why: under torch.compile most of a UNet's non-GEMM time runs in kernels Inductor generates and
fuses (``triton_poi_fused_add_convolution_silu_3``: pointwise; ``triton_per_`` / ``triton_red_``:
reductions, a group norm's statistics, a softmax; ``triton_tem_``: GEMM/conv templates under
``max_autotune``). Each launch sits under a ``cpu_op`` named like the kernel whose args hold every
buffer the kernel touches: "Input Dims" / "Input type" list the kernel's pointer arguments
(inputs, outputs and in-place buffers alike) and its scalar sizes (``xnumel``, "Scalar"). Without
a cost they are 0 FLOPs, 0 bytes and bound ``unknown``: half of a compiled SD UNet's kernel time
on the H200 (docs/gpu-results.md, 2026-12-02).

The estimate for pointwise and reduction kernels (``formula`` "inductor triton: tensors once"):

- ideal HBM bytes: every tensor argument ("Input type" a tensor dtype, non-empty dims; "Scalar"
  and "" entries skipped) touched once, numel x dtype size. Outputs are among the arguments
  (``out_ptr0``), so they count as written once and nothing is added for them. A kernel with a
  single tensor argument works in place (``in_out_ptr0``: Inductor's online softmax over the
  scores) and reads and writes it: counted twice. An in-place buffer among several arguments (a
  fused bias + activation overwriting an extern GEMM's output) is counted once, one pass short:
  the trace does not say which argument it is, so that error is left, not guessed. Its bound:
  true ideal = sum |t| + sum of the in-place |t| <= 2 x the estimate, so the estimate is low by
  at most a factor 2 and by at most the largest buffer's size when, as usual, one buffer is in
  place. The other way, a kernel that reads a slice of a tensor counts the whole tensor, an
  over-count the recorded shapes cannot reveal. One such case they do reveal, an embedding
  fused in: an integer index of n elements, a table [V, D] with V > n and a tensor of n·D
  elements ending in D (the gathered rows). The table then counts n·D elements, the rows read,
  as ``copy.gather`` counts aten::embedding (formula "... tensors once, gathered rows"). Without
  it, vLLM's decode graph (MI300X, tests/data/third_party/tracelens/2026) counts its whole
  201,088 x 2,880 vocabulary table for 32 tokens: 1.2 GB in a 10.6 us kernel, 34x the HBM roof;
- FLOPs: the iteration size (the largest tensor argument's element count) times the number of
  aten ops fused into the kernel, as its name lists them (at least one): a handful of FLOPs per
  element, the right order for kernels that are memory-bound by construction (0.1-5 FLOP/byte
  against ridge points of 100+ FLOP/byte on every card in conf/gpu), so no plausible constant
  moves their verdict. Labelled an estimate like every figure of the cost model.

Triton templates (``formula`` "inductor triton: template gemm" / "... template conv"): bytes as
above (A, B, fused-epilogue inputs and the output, each once); FLOPs 2·b·M·N·K where the tensor
arguments hold A [(b,) M, K], B [(b,) K, N] and out [(b,) M, N] whose dims chain
(:func:`template_operands`), or a convolution's 4-D input, weight and output. A template whose
shapes do not chain is not costed (None): a guessed GEMM size would decide a bound on nothing.
"""

from __future__ import annotations

import math
import re
from typing import Sequence

from .op_args import Arg, promote
from .op_cost import OpCost, tensor_engine

# triton_<family>_fused_<ops>_<n>; "poi" pointwise, "per" persistent reduction (a row in one
# block), "red" looped reduction, "tem" template. The ops part is absent in "triton_poi_fused_0".
_TRITON = re.compile(r"^triton_(poi|per|red|tem)_fused_(.*?)(?:_?\d+)?$")
_GEMM_TEMPLATES = frozenset({"mm", "addmm", "bmm", "baddbmm"})


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


_INDEX_DTYPES = frozenset({"int32", "int64"})


def _gathered_table_bytes(tensors: list[Arg]) -> dict[int, float]:
    """{position in ``tensors`` -> bytes of the rows read} for tables an embedding gathers from
    (module docstring): index [n] (integer), table [V, D] with V > n, rows n·D elements, last
    dim D. The whole pattern is needed; anything else is counted whole."""
    capped: dict[int, float] = {}
    for index in (t for t in tensors if t.dtype in _INDEX_DTYPES):
        n = index.numel
        for i, table in enumerate(tensors):
            if len(table.shape) != 2 or table.dtype in _INDEX_DTYPES or table.shape[0] <= n:
                continue
            d = table.shape[1]
            if any(r is not table and r.shape[-1] == d and r.numel == n * d for r in tensors):
                capped[i] = min(capped.get(i, float("inf")), float(n * d * table.itemsize))
    return capped


def template_operands(shapes: Sequence) -> tuple[list, list, list] | None:
    """(A, B, out) of a GEMM template from its tensor arguments' shapes, in argument order: the
    first 2-D or 3-D A [(b,) M, K] and later B [(b,) K, N] of one rank and batch with a still later
    out [(b,) M, N]. Inductor passes a template's inputs first (``def_kernel("A", "B")``; addmm's
    bias before them), then fused-epilogue inputs, then its output, so the first chain is the
    GEMM's. None when nothing chains (a prologue-fused or unusual template)."""
    mats = [list(s) for s in shapes if isinstance(s, (list, tuple)) and 2 <= len(s) <= 3
            and all(type(d) is int for d in s)]
    for i, a in enumerate(mats):
        for j in range(i + 1, len(mats)):
            b = mats[j]
            if len(b) != len(a) or a[-1] != b[-2] or a[:-2] != b[:-2]:
                continue
            out = a[:-1] + [b[-1]]
            if any(o == out for o in mats[j + 1:]):
                return a, b, out
    return None


def _conv_flops(tensors: list[Arg]) -> tuple[float, Arg] | None:
    """2·N·Cout·Hout·Wout·(Cin/groups)·kh·kw from the first 4-D x [N, Cin, H, W], later weight
    [Cout, Cin/groups, kh, kw] and later out [N, Cout, Hout, Wout] that fit together."""
    quads = [t for t in tensors if len(t.shape) == 4]
    for i, x in enumerate(quads):
        for j in range(i + 1, len(quads)):
            w = quads[j]
            if w.shape[1] <= 0 or x.shape[1] % w.shape[1]:
                continue
            for out in quads[j + 1:]:
                if out.shape[0] == x.shape[0] and out.shape[1] == w.shape[0]:
                    return 2.0 * math.prod(out.shape) * math.prod(w.shape[1:]), x
    return None


def _template(name: str, tensors: list[Arg], nbytes: float, tf32: bool) -> OpCost | None:
    ops = set(fused_ops(name))
    if ops & _GEMM_TEMPLATES:
        found = template_operands([t.shape for t in tensors])
        if found is None:
            return None
        a, b, _ = found
        batch = a[0] if len(a) == 3 else 1
        flops, formula, kind = 2.0 * batch * a[-2] * b[-1] * a[-1], "inductor triton: template gemm", "gemm"
        dtype = next(t.dtype for t in tensors if list(t.shape) == a)
    elif "convolution" in ops:
        found = _conv_flops(tensors)
        if found is None:
            return None
        flops, formula, kind = found[0], "inductor triton: template conv", "conv"
        dtype = found[1].dtype
    else:
        return None
    engine, label = tensor_engine(dtype, tf32)
    return OpCost(flops=flops, bytes=nbytes, engine=engine, dtype=label, formula=formula, kind=kind)


def estimate_inductor(name: str, args: list[Arg], allow_tf32: bool | None = None) -> OpCost | None:
    """FLOPs and ideal bytes of one Inductor kernel launch, or None (no tensor argument, or a
    template whose GEMM/conv shape does not chain). ``allow_tf32``: as for aten GEMMs (an fp32
    template runs on tensor cores only as TF32; None = PyTorch's default, off)."""
    m = _TRITON.match(name)
    tensors = [a for a in args if a.is_tensor and a.shape and a.itemsize]
    if m is None or not tensors:
        return None
    if m.group(1) == "tem":
        return _template(name, tensors, float(sum(a.nbytes for a in tensors)), bool(allow_tf32))
    gathered = _gathered_table_bytes(tensors)
    nbytes = float(sum(gathered.get(i, a.nbytes) for i, a in enumerate(tensors)))
    if len(tensors) == 1:
        nbytes *= 2          # in place: read and written (module docstring)
    numel = max(a.numel for a in tensors)
    largest = max(tensors, key=lambda a: a.numel)
    ops = max(1, len(fused_ops(name)))
    return OpCost(flops=float(numel * ops), bytes=nbytes, engine="cuda",
                  dtype=largest.dtype or promote([a.dtype for a in tensors]) or "unknown",
                  formula="inductor triton: tensors once" + (", gathered rows" if gathered else ""),
                  kind=_kind(name, m.group(1)))

"""Unfused attention found by its op pattern, with or without module scopes.

Why: most people record plain ``torch.profiler`` traces (no ``module::`` scopes, no stacks).
Without a scope saying "this is an attention layer", the QK^T GEMM, the softmax and the PV GEMM of
an eager attention look like any other GEMM and softmax, and the attention share reads 0 %.
The op sequence itself is distinctive, so it is matched instead:

    matmul-family op with output [..., L, S]          (QK^T: bmm, baddbmm, matmul, also 4-D)
    -> within a few ops: softmax over that [..., L, S] (softmax, _softmax, _safe_softmax)
    -> within a few ops: matmul-family op with inputs [..., L, S] and [..., S, E]   (PV)

on one CPU thread, among the ops that launch GPU work. The ops in between (scale mul/div, mask
add, masked_fill, dropout, dtype casts) belong to the call. This covers diffusers'
``AttnProcessor`` (baddbmm -> softmax -> to -> bmm), Hugging Face "eager" attention (matmul ->
div/add -> softmax -> dropout -> matmul, 4-D) and SDPA's math decomposition.

Matching works on *unit ops*: the outermost aten op of a kernel's launching chain, below any
SDPA wrapper op. ``aten::matmul`` is one unit with the copies it makes of a transposed K and
the ``aten::bmm`` inside it; ``aten::linear`` (the q/k/v projections) is a unit of its own and
not in the matmul family, so projections never start a match.

Under torch.compile the softmax step is Inductor's Triton kernel (``triton_red_fused__softmax_*``,
``triton_per_fused__softmax_div_*``, ``triton_poi_fused__softmax_*`` for the normalizing half of
a split softmax; any scale, mask or cast fused in) over the scores, and ops Inductor schedules
between the softmax and PV that do not touch the scores (the V projection) are left out of the
call. The GEMMs stay extern ``aten::bmm`` / ``aten::baddbmm`` calls, or under ``max_autotune``
become Triton templates (``triton_tem_fused_bmm_*``, A, B and out read from its arguments by
``cost_model.inductor.template_operands``). A Triton kernel records buffers, not a softmax's
input: its scores are any tensor argument of rank >= 3 with the producer's [..., L, S], or a
rank-2 [b·L, S] (a graph that views the scores as rows, ``.view(-1, S)``, before its softmax:
Inductor hands the kernel that buffer as viewed; not seen in the compiled traces here, which all
pass [b, L, S]). The flattened form is accepted only after a batched QK^T producer: the guard
below is unchanged, the producer's scores must be rank >= 3, so a 2-D mm/linear never opens a
match.
``aten::mm`` stays out of the family under compile too: Inductor keeps attention's batched
GEMMs as bmm on the GPU, and the mm it runs between the softmax and PV is the V projection.

A classifier's softmax does not match: its logits are rank 2 (``[batch, classes]``), and there
is no QK^T-shaped producer and PV-shaped consumer around it. Scores must be rank >= 3 (a batch
or batch x heads dimension in front of [L, S]); a rank-2 [L, S] would also match an MLP
gating (x @ W -> softmax -> @ V), which is not attention.
"""

from __future__ import annotations

import math
import re

import numpy as np

from profiler_kit.analysis.cost_model.inductor import template_operands
from profiler_kit.analysis.spans import SpanTree
from profiler_kit.trace import Trace, decode_raw

# QK^T and PV. aten::mm is 2-D only (projections through aten::linear reach it), so it is not
# in the family: its output has no batch dimension and could never be rank-3 scores anyway.
# torch.compile under max_autotune: Triton bmm/baddbmm templates (their name lists the fused ops).
_MATMUL = re.compile(r"aten::(bmm|baddbmm|matmul)$|triton_tem_fused_\w*bmm")
# torch.compile: Inductor turns the softmax into one Triton reduction kernel over the scores
# (triton_red_fused__softmax_..., triton_per_fused__softmax_...), with the scale or mask fused in,
# or a reduction for the row max and sum and a pointwise kernel (triton_poi_fused__softmax_...)
# that normalizes; the GEMMs stay extern aten::bmm / baddbmm calls.
_SOFTMAX = re.compile(r"aten::(softmax|_softmax|_safe_softmax)$|triton_(poi|per|red)_fused_\w*softmax")
_TRITON = re.compile(r"triton_")
# Wrappers whose insides are the units: SDPA and its math decomposition.
# torch.compile's "Torch-Compiled Region: 0/0" op encloses every op of the compiled graph, and
# under cudagraph trees "CUDAGraphNode.record" (and its "(dynamo_timed)" twin) every op recorded.
_WRAPPER = re.compile(r"aten::(scaled_dot_product_attention|_scaled_dot_product_attention_math"
                      r"\w*)$|Torch-Compiled Region|CUDAGraphNode\.|.*\(dynamo_timed\)")
# Ops allowed between QK^T and softmax, and between softmax and PV: scale (mul/div), mask
# (add/masked_fill/where), cast (to), dropout, and in HF eager the max-subtract of some
# models. Four covers every implementation above with room for one extra op (diffusers: 0-1,
# HF eager: 2 before softmax (div, add mask) and 2 after (to, dropout)); a wider window starts
# to pair a softmax with an unrelated later GEMM of the next layer.
MAX_OPS_BETWEEN = 4
# Scores need a batch (or batch x heads) dimension in front of [L, S]: see module docstring.
MIN_SCORES_RANK = 3


def _batch(shape: list) -> int:
    return math.prod(shape[:-2]) if len(shape) > 2 else 1


def _as_shape(x) -> list | None:
    return x if isinstance(x, list) and x and all(type(d) is int for d in x) else None


def _matmul_operands(name: str, dims: list) -> tuple[list, list] | None:
    """(A, B) of the product A @ B, from the op's recorded input dims."""
    if _TRITON.match(name):
        found = template_operands(dims) if isinstance(dims, list) else None
        return (found[0], found[1]) if found else None
    try:
        a, b = (dims[1], dims[2]) if name.endswith("baddbmm") else (dims[0], dims[1])
    except (IndexError, TypeError):
        return None
    a, b = _as_shape(a), _as_shape(b)
    if a is None or b is None or len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
        return None
    return a, b


def _matmul_out(a: list, b: list) -> list:
    """Shape of A @ B (batch dims broadcast as torch.matmul does)."""
    batch_a, batch_b = a[:-2], b[:-2]
    n = max(len(batch_a), len(batch_b))
    batch_a = [1] * (n - len(batch_a)) + batch_a
    batch_b = [1] * (n - len(batch_b)) + batch_b
    return [max(x, y) for x, y in zip(batch_a, batch_b)] + [a[-2], b[-1]]


def _same_scores(x: list, scores: list) -> bool:
    # A view between the ops may fold heads into batch ([B,H,L,S] <-> [B*H,L,S]).
    return x[-2:] == scores[-2:] and _batch(x) == _batch(scores)


def unit_op(tree: SpanTree, names, span_names, op: int) -> int:
    """The op a kernel counts under for matching: outermost op of its chain below any SDPA
    wrapper (-1 for kernels no aten op launched)."""
    chain = tree.op_ancestors(op)
    for node in reversed(chain):
        if not _WRAPPER.match(names[span_names[node]]):
            return node
    return chain[0] if chain else -1


def unit_ops(tree: SpanTree, names, span_names: np.ndarray, ops: np.ndarray) -> np.ndarray:
    """:func:`unit_op` of each of ``ops`` (-1 stays -1), column-wise: over the chains'
    levels (SpanTree.op_levels), innermost first, each op not a wrapper replaces the unit, so
    the outermost one is left; a chain of wrappers only keeps its innermost op. A loop over
    the chains was 0.16 s for 248k ops on a 1 GB trace."""
    ops = np.asarray(ops, dtype=np.int64)
    unit = ops.copy()
    if not (ops >= 0).any():
        return unit
    wrappers = [i for i, nm in enumerate(names) if _WRAPPER.match(nm)]
    for level in tree.op_levels(ops):
        named = level >= 0
        named[named] = ~np.isin(span_names[level[named]], wrappers)
        unit = np.where(named, level, unit)
    return unit


def find_unfused_attention(trace: Trace, tree: SpanTree, units: np.ndarray) -> dict[int, int]:
    """{unit op span -> call id} for every op of an unfused attention call; the call id is the
    span index of the call's QK^T op. ``units``: unit op of each GPU activity (-1 none)."""
    spans, names, texts = trace.spans, trace.names, trace.arg_texts
    span_names = spans.name_id
    found = np.unique(units[units >= 0])
    if not len(found):
        return {}
    # Cheap pre-check: no softmax unit, no unfused attention (most fused-attention traces).
    softmax_ids = [i for i, nm in enumerate(names) if _SOFTMAX.match(nm)]
    if not np.isin(span_names[found], softmax_ids).any():
        return {}
    order = np.lexsort((spans.start_ns[found], spans.thread[found]))
    seq = found[order].tolist()
    threads = spans.thread[found][order].tolist()
    dims_cache: dict[int, object] = {}

    def dims(op: int):
        key = int(spans.input_dims[op])
        if key not in dims_cache:
            dims_cache[key] = decode_raw(texts[key]) if key else None
        return dims_cache[key]

    def name(op: int) -> str:
        return names[span_names[op]]

    def softmax_over(op: int, scores: list) -> bool:
        d = dims(op)
        if _TRITON.match(name(op)):
            # a Triton kernel lists its buffers, the scores among them; its "Concrete Inputs"
            # are its sizes (xnumel, rnumel), not a softmax dim
            return isinstance(d, list) and any(_scores_buffer(_as_shape(x), scores) for x in d)
        x = _as_shape(d[0]) if isinstance(d, list) and d else None
        if x is None or not _same_scores(x, scores):
            return False
        # softmax over the last dim (S); "Concrete Inputs" has it where recorded
        concrete = decode_raw(texts[spans.concrete_inputs[op]]) if spans.concrete_inputs[op] else None
        if isinstance(concrete, list) and len(concrete) > 1 and concrete[1] not in ("", None):
            try:
                dim = int(concrete[1])
            except ValueError:
                return True
            return dim in (-1, len(x) - 1)
        return True

    calls: dict[int, int] = {}
    # A call opens only at a matmul-family op: the others are skipped by one isin over the
    # name ids, not one regex match each (200k unit ops on a 1 GB trace).
    matmul_ids = [k for k, nm in enumerate(names) if _MATMUL.match(nm)]
    openers = np.flatnonzero(np.isin(span_names[found][order], matmul_ids)).tolist()
    free = 0                          # the first op not in a call found already
    for i in openers:
        if i < free:
            continue
        qk = seq[i]
        operands = _matmul_operands(name(qk), dims(qk) or [])
        scores = _matmul_out(*operands) if operands else None
        if scores is None or len(scores) < MIN_SCORES_RANK:
            continue
        end = _match_from(i, seq, threads, scores, name, dims, softmax_over)
        if end < 0:
            continue
        for op in seq[i:end + 1]:
            if op in (qk, seq[end]) or _touches_scores(dims(op), scores):
                calls[op] = qk
        free = end + 1
    return calls


def _touches_scores(d, scores: list) -> bool:
    """Does an op between QK^T and PV work on the scores ([..., L, S])? Inductor schedules other
    work there (the V projection's mm, its head split): that is no part of the call."""
    L, S = scores[-2], scores[-1]
    return isinstance(d, list) and any(
        (x := _as_shape(a)) is not None and len(x) >= 2 and (x[-2:] == [L, S] or _flat(x, scores))
        for a in d)


def _flat(x: list, scores: list) -> bool:
    """Is x the scores with their batch folded into the rows, [b·L, S]?"""
    return len(x) == 2 and x[1] == scores[-1] and x[0] == math.prod(scores[:-1])


def _scores_buffer(x: list | None, scores: list) -> bool:
    """Is a Triton kernel's tensor argument the scores: rank >= 3 with the producer's batch and
    [L, S], or flattened to [b·L, S] (module docstring)?"""
    if x is None:
        return False
    return (len(x) >= MIN_SCORES_RANK and _same_scores(x, scores)) or _flat(x, scores)


def _match_from(i: int, seq, threads, scores, name, dims, softmax_over) -> int:
    """Index of the PV op closing a call opened by seq[i], or -1."""
    thread, n = threads[i], len(seq)
    soft = -1
    for j in range(i + 1, min(n, i + 2 + MAX_OPS_BETWEEN)):
        if threads[j] != thread:
            return -1
        if _SOFTMAX.match(name(seq[j])) and softmax_over(seq[j], scores):
            soft = j
            break
        if _MATMUL.match(name(seq[j])):
            return -1       # another GEMM before the softmax: not this pattern
    if soft < 0:
        return -1
    L, S = scores[-2], scores[-1]
    for j in range(soft + 1, min(n, soft + 2 + MAX_OPS_BETWEEN)):
        if threads[j] != thread:
            return -1
        op = seq[j]
        if _MATMUL.match(name(op)):
            operands = _matmul_operands(name(op), dims(op) or [])
            if operands and operands[0][-2:] == [L, S] and _batch(operands[0]) == _batch(scores):
                return j
            return -1
    return -1

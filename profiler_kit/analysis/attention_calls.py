"""The attention view: every attention call with its time, cost, shape and the kernels that ran.

A call is one instance of an attention module scope (``...transformer_blocks.0.attn1``;
``attn1`` is self-attention, ``attn2`` cross-attention in diffusers), or, in traces without
module scopes, one instance of the outermost attention op (aten::scaled_dot_product_attention,
an xformers op). Its backend is the kernel family that actually ran (the one with most time in
the call); ``fallback`` flags a call that ran SDPA's math backend, ``mixed`` a trace whose calls
ran more than one backend.

Without a module scope (plain torch.profiler traces) a call is named by its position and shape:
``attention#3 self 4096x4096 e40`` is the fourth attention call of its profiler step (counted
from 0 in every step, so the n-th call of each step names the same layer and the report and
``compare`` line them up), self-attention over 4096 query and key tokens, head size 40.
``named_by`` says which: ``module`` or ``position``.

``heads`` is what the attention op saw: None for the vanilla chain (batch and heads are folded
into one dimension) and 1 for diffusers' xformers path (it folds heads into the batch too);
``batch_x_heads`` is comparable across all backends.
"""

from __future__ import annotations

import re

import numpy as np

from profiler_kit.analysis.categories import BACKENDS, CATEGORIES, is_attention_prologue
from profiler_kit.analysis.cost_model.attention_ops import SAGE_FWD
from profiler_kit.analysis.kernel_costs import BOUNDS, KernelCosts
from profiler_kit.analysis.kernels import KernelTable, block_of
from profiler_kit.trace import decode_raw

_ATTENTION = CATEGORIES.index("attention")
# Which op's "Input Dims" give the call's shape, and in which layout. First match wins.
_SHAPE_OPS = (
    (re.compile(r"aten::(scaled_dot_product_attention|_scaled_dot_product_\w+)$"), "BHLE"),
    (re.compile(r"aten::_(flash_attention|efficient_attention)_forward$"), "BLHE"),
    (re.compile(r"xformers|aiter::\w*(fmha|mha_)|flash_attn(_3)?::"), "BLHE"),
    (SAGE_FWD, "BHLE"),        # SageAttention's forward op, as the cost model names it
    (re.compile(r"aten::baddbmm$"), "baddbmm"),
    (re.compile(r"aten::(bmm|matmul)$"), "bmm"),
)


def _shape(layout: str, dims: list) -> dict | None:
    """q/kv tokens, heads, head_dim from an op's input dims, or None if they don't fit."""
    try:
        if layout == "BHLE":
            q, k = dims[0], dims[1]
            return {"q_tokens": q[2], "kv_tokens": k[2], "heads": q[1], "head_dim": q[3],
                    "batch_x_heads": q[0] * q[1]}
        if layout == "BLHE":
            q, k = dims[0], dims[1]
            return {"q_tokens": q[1], "kv_tokens": k[1], "heads": q[2], "head_dim": q[3],
                    "batch_x_heads": q[0] * q[2]}
        # vanilla: QK^T as baddbmm(scores, Q[BH,L,E], K^T[BH,E,S]) or bmm(Q, K^T); heads are
        # folded into the batch dimension and cannot be told apart from the batch size.
        # Hugging Face eager attention: matmul(Q[B,H,L,E], K^T[B,H,E,S]), heads visible.
        q, kt = (dims[1], dims[2]) if layout == "baddbmm" else (dims[0], dims[1])
        if len(q) == 3 and len(kt) == 3 and q[2] == kt[1]:
            return {"q_tokens": q[1], "kv_tokens": kt[2], "heads": None, "head_dim": q[2],
                    "batch_x_heads": q[0]}
        if len(q) == 4 and len(kt) == 4 and q[3] == kt[2]:
            return {"q_tokens": q[2], "kv_tokens": kt[3], "heads": q[1], "head_dim": q[3],
                    "batch_x_heads": q[0] * q[1]}
    except (IndexError, TypeError):
        pass
    return None


_NO_SHAPE = {"q_tokens": None, "kv_tokens": None, "heads": None, "head_dim": None,
             "batch_x_heads": None}


class _CallShapes:
    """The shape of each call (``of``): from the first op of its launching chains, in start
    order, whose name matches a pattern of _SHAPE_OPS (first pattern first) and whose recorded
    dims fit that pattern's layout. What repeats from call to call (which pattern an op name
    matches, the shape a dims text gives) is worked out once per name and per text: 7,680 calls
    on a 1 GB trace each matched and decoded the same few ops again (0.2 s)."""

    def __init__(self, table: KernelTable):
        self.table = table
        self._patterns: dict[int, tuple[bool, ...]] = {}     # op name id -> matches per pattern
        self._shapes: dict[tuple[int, str], dict | None] = {}  # (dims text id, layout) -> shape

    def _matches(self, name_id: int) -> tuple[bool, ...]:
        found = self._patterns.get(name_id)
        if found is None:
            name = self.table.trace.names[name_id]
            found = self._patterns[name_id] = tuple(bool(p.match(name)) for p, _ in _SHAPE_OPS)
        return found

    def _shape(self, dims_id: int, layout: str) -> dict | None:
        key = (dims_id, layout)
        if key not in self._shapes:
            dims = decode_raw(self.table.trace.arg_texts[dims_id])
            self._shapes[key] = _shape(layout, dims) if dims else None
        return self._shapes[key]

    def of(self, kernels: np.ndarray) -> dict:
        table = self.table
        trace, tree = table.trace, table.tree
        ops = []
        for k in kernels.tolist():
            for op in tree.op_ancestors(int(table.op_node[k])):
                if op not in ops:
                    ops.append(op)
        ops.sort(key=lambda o: int(trace.spans.start_ns[o]))
        name_ids = trace.spans.name_id[ops].tolist() if ops else []
        dims_ids = trace.spans.input_dims[ops].tolist() if ops else []
        matches = [self._matches(i) for i in name_ids]
        for at, (_, layout) in enumerate(_SHAPE_OPS):
            for m, dims_id in zip(matches, dims_ids):
                if m[at]:
                    found = self._shape(dims_id, layout)
                    if found:
                        return dict(found)
        return dict(_NO_SHAPE)


def _kind(scope: str, shape: dict) -> str | None:
    last = scope.rsplit(".", 1)[-1] if scope else ""
    if last == "attn1":
        return "self"
    if last == "attn2":
        return "cross"
    if shape["q_tokens"] is None:
        return None
    # Outside diffusers naming: equal token counts are taken as self-attention.
    return "self" if shape["q_tokens"] == shape["kv_tokens"] else "cross"


_STEP = re.compile(r"ProfilerStep#\d+$")


def _name_unscoped(table: KernelTable, calls: list[dict]) -> None:
    """Give calls without a module scope a name from their position in their profiler step
    and their shape (module docstring); drop the helper key."""
    trace = table.trace
    step_ids = [i for i, nm in enumerate(trace.names) if _STEP.match(nm)]
    steps = np.flatnonzero(np.isin(trace.spans.name_id, step_ids))
    starts = np.sort(trace.spans.start_ns[steps])
    position: dict[int, int] = {}
    for c in calls:
        launch = c.pop("_launch_ns")
        if c["scope"]:
            continue
        step = int(np.searchsorted(starts, launch, side="right")) - 1 if launch >= 0 else -1
        pos = position[step] = position.get(step, -1) + 1
        shape = (f" {c['q_tokens']}x{c['kv_tokens']} e{c['head_dim']}"
                 if c["q_tokens"] is not None else "")
        c["scope"] = f"attention#{pos} {c['kind'] or ''}{shape}".replace("  ", " ").strip()


def analyze_attention(table: KernelTable, costs: KernelCosts) -> dict:
    dur_us = table.dur_us
    is_attention = table.category == _ATTENTION
    backends = {name: float(dur_us[is_attention & (table.backend == b)].sum())
                for b, name in enumerate(BACKENDS, start=1)}
    calls = []
    call_of = table.attention_call
    linked = np.flatnonzero(is_attention & (call_of >= 0))
    if len(linked):
        order = linked[np.argsort(call_of[linked], kind="stable")]
        shapes = _CallShapes(table)
        # per kernel, as plain lists: its duration, backend and name (per call, Python sums
        # in the same order as before, so the same floats)
        names = table.trace.names
        dur_l = dur_us[order].tolist()
        backend_l = [BACKENDS[b - 1] if b else "" for b in table.backend[order].tolist()]
        name_l = table.trace.gpu.name_id[order].tolist()
        prologue = {i: is_attention_prologue(names[i]) for i in set(name_l)}
        a = 0                              # the call's kernels are order[a:b]
        for kernels in np.split(order, np.flatnonzero(np.diff(call_of[order])) + 1):
            b = a + len(kernels)
            node = int(call_of[kernels[0]])
            scope = table.scope_of_node(node) if node in table.tree.scope_names \
                else table.scope(int(kernels[0]))
            time_by_backend: dict[str, float] = {}
            prologue_us = 0.0
            for name, dur, name_id in zip(backend_l[a:b], dur_l[a:b], name_l[a:b]):
                time_by_backend[name] = time_by_backend.get(name, 0.0) + dur
                if prologue[name_id]:
                    prologue_us += dur
            shape = shapes.of(kernels)
            calls.append({
                "scope": scope, "kind": _kind(scope, shape), "level": block_of(scope),
                **shape,
                "backend": max(time_by_backend, key=time_by_backend.get),
                "kernels": sorted({names[i] for i in name_l[a:b]}),
                "time_us": float(dur_us[kernels].sum()),
                "prologue_us": prologue_us,
                "flops_estimate": float(costs.flops[kernels].sum()),
                "hbm_bytes_estimate": float(costs.hbm_bytes[kernels].sum()),
                "bound_us": {BOUNDS[b]: float(us) for b, us in enumerate(np.bincount(
                    costs.bound[kernels], weights=dur_us[kernels], minlength=len(BOUNDS))) if us},
                "start_us": float(table.trace.gpu.start_ns[kernels].min()) / 1000.0,
                "named_by": "module" if scope else "position",
                "_launch_ns": int(table.launch_ns[kernels].max()),
            })
            a = b
    calls.sort(key=lambda c: c["start_us"])
    _name_unscoped(table, calls)
    used = {c["backend"] for c in calls}
    return {
        "total_us": float(dur_us[is_attention].sum()),
        "prologue_us": float(sum(c["prologue_us"] for c in calls)),
        "backends": backends,
        "fallback": "math" in used,
        "mixed": len(used) > 1,
        "flops_estimate": float(costs.flops[is_attention].sum()),
        "hbm_bytes_estimate": float(costs.hbm_bytes[is_attention].sum()),
        "calls": calls,
    }

"""The kernel table: every GPU kernel, memcpy and memset linked to what launched it.

Link: kernel ``correlation`` -> the runtime call with the same id (cudaLaunchKernel,
cuLaunchKernel, hipLaunchKernel, cudaMemcpyAsync, ...) -> the innermost span on that CPU thread
enclosing the call -> its nearest aten op, that op's ancestors and the module scope. Traces
without runtime events fall back to the kernel's ``External id``, which Kineto copies from the
innermost op.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from profiler_kit.analysis.attention_pattern import find_unfused_attention, unit_ops
from profiler_kit.analysis.categories import (BACKENDS, CATEGORIES, classify,
                                              is_attention_prologue,
                                              is_attention_scope_component)
from profiler_kit.analysis.distinct import distinct_row_codes
from profiler_kit.analysis.graph_join import GraphJoin, join_graph_replays
from profiler_kit.analysis.spans import SpanTree, build_span_tree
from profiler_kit.trace import OP, Trace

OUTSIDE_MODULES = "(outside modules)"
# The op that stands for one attention call when no module scope says where calls begin.
_ATTENTION_CALL_OP = re.compile(r"aten::(scaled_dot_product|_scaled_dot_product)|xformers|"
                                r"flash_attn|.*attention", re.IGNORECASE)


@dataclass(frozen=True)
class KernelTable:
    """Columns aligned with ``trace.gpu`` (one row per GPU activity)."""
    trace: Trace
    tree: SpanTree
    launch_ns: np.ndarray       # start of the launching runtime call, -1 unknown
    launch_name: np.ndarray     # name id (trace.names) of the launching runtime call, -1 unknown
    op_node: np.ndarray         # innermost aten op (CpuSpans index), -1 none
    scope_node: np.ndarray      # nearest module-scope span, -1 none
    category: np.ndarray        # int8 index into CATEGORIES
    backend: np.ndarray         # int8: 0 none, else 1 + index into BACKENDS
    attention_call: np.ndarray  # span index standing for the attention call, -1 none
    graph_join: GraphJoin       # replayed activities joined to their capture's launch calls

    def __len__(self) -> int:
        return len(self.category)

    @property
    def graph_replayed(self) -> np.ndarray:
        """GPU activities launched by a CUDA/HIP graph replay (cudaGraphLaunch)."""
        return self.graph_join.replayed

    @property
    def graph_unjoined(self) -> np.ndarray:
        """Replayed activities the capture did not explain: no op or module for them, only their
        names and times (graph_join.py says why)."""
        return self.graph_join.replayed & ~self.graph_join.joined

    @functools.cached_property
    def dur_us(self) -> np.ndarray:
        """float64 duration of each GPU activity in µs (computed once, shared by the analyses)."""
        return self.trace.gpu.dur_ns / 1000.0

    def name(self, k: int) -> str:
        return self.trace.names[self.trace.gpu.name_id[k]]

    def scope(self, k: int) -> str:
        return self.scope_of_node(int(self.scope_node[k]))

    def scope_of_node(self, node: int) -> str:
        return self.tree.scope_names.get(node, "") if node >= 0 else ""

    def span_name(self, node: int) -> str:
        return self.trace.names[self.trace.spans.name_id[node]] if node >= 0 else ""

    def backend_name(self, k: int) -> str:
        b = int(self.backend[k])
        return BACKENDS[b - 1] if b else ""


def block_of(scope: str) -> str:
    """UNet level of a module path: ``down_blocks.0``, ``mid_block``, ``conv_in``; also works
    for ``layers.3.attn`` style paths."""
    if not scope:
        return OUTSIDE_MODULES
    parts = scope.split(".")
    if len(parts) > 1 and parts[1].isdigit():
        return f"{parts[0]}.{parts[1]}"
    return parts[0]


def _launching_spans(trace: Trace, tree: SpanTree) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(innermost enclosing span, launch start ns, launching call's name id) per GPU activity."""
    gpu, rt = trace.gpu, trace.runtime
    n = len(gpu)
    node = np.full(n, -1, dtype=np.int64)
    launch_ns = np.full(n, -1, dtype=np.int64)
    launch_name = np.full(n, -1, dtype=np.int64)
    if len(rt):
        order = np.argsort(rt.correlation, kind="stable")
        sorted_corr = rt.correlation[order]
        pos = np.clip(np.searchsorted(sorted_corr, gpu.correlation), 0, len(order) - 1)
        hit = (sorted_corr[pos] == gpu.correlation) & (gpu.correlation >= 0)
        rt_idx = np.where(hit, order[pos], -1)
        launch_ns = np.where(hit, rt.start_ns[np.maximum(rt_idx, 0)], -1)
        launch_name = np.where(hit, rt.name_id[np.maximum(rt_idx, 0)], -1)
        at = np.flatnonzero(hit)
        node[at] = tree.enclosing_many(rt.thread[rt_idx[at]], launch_ns[at])
    missing = node < 0
    if missing.any():
        spans = trace.spans
        ops = np.flatnonzero((spans.kind == OP) & (spans.external_id >= 0))
        by_external = dict(zip(spans.external_id[ops].tolist(), ops.tolist()))
        for k in np.flatnonzero(missing & (gpu.external_id >= 0)).tolist():
            node[k] = by_external.get(int(gpu.external_id[k]), -1)
    return node, launch_ns, launch_name


def build_kernel_table(trace: Trace) -> KernelTable:
    tree = build_span_tree(trace)
    gpu, names = trace.gpu, trace.names
    span_names = trace.spans.name_id
    node, launch_ns, launch_name = _launching_spans(trace, tree)
    # A replayed kernel is launched by the graph launch (launch_ns stays its time: that is when
    # the step issued it) but was recorded by its capture's launch call: the op, shapes and
    # module scope are the capture's.
    graph_join = join_graph_replays(trace, launch_name)
    rt = trace.runtime
    joined = np.flatnonzero(graph_join.joined)
    if len(joined):
        r = graph_join.runtime_index[joined]
        node[joined] = tree.enclosing_many(rt.thread[r], rt.start_ns[r])
    n = len(gpu)
    if len(tree.nearest_op):
        op_node = np.where(node >= 0, tree.nearest_op[np.maximum(node, 0)], -1)
        scope_node = np.where(node >= 0, tree.scope_node[np.maximum(node, 0)], -1)
    else:                       # no CPU spans at all (a GPU-only trace)
        op_node = np.full(n, -1, dtype=np.int64)
        scope_node = np.full(n, -1, dtype=np.int64)

    # Unfused attention by its op pattern (QK^T -> softmax -> PV), scopes or not: the kernels
    # of a matched call are attention whatever their name (see attention_pattern).
    # Per distinct op, then spread to the kernels: a trace repeats few ops per kernel, but
    # 300k kernels made 300k dict lookups and chain walks in Python.
    distinct_ops, op_inverse = np.unique(op_node, return_inverse=True)
    tree.prefill_ancestors(distinct_ops)
    units = unit_ops(tree, names, span_names, distinct_ops)[op_inverse.reshape(-1)]
    pattern_call = find_unfused_attention(trace, tree, units)
    # The class of a kernel depends on (its name, kind, the names of its launching ops, whether
    # an attention module encloses it): classified once per distinct such key, spread by codes.
    chain_names, op_chain_id = tree.op_name_chains(distinct_ops, span_names)
    scopes, scope_inverse = np.unique(scope_node, return_inverse=True)
    attn_of_scope = np.asarray([_attention_module(tree, sc) for sc in scopes.tolist()],
                               dtype=np.int64)
    attn = attn_of_scope[scope_inverse.reshape(-1)] if n else np.full(0, -1, dtype=np.int64)
    op_at = op_inverse.reshape(-1)
    keys, key_at = distinct_row_codes(np.stack([gpu.name_id.astype(np.int64), gpu.kind.astype(np.int64),
                                                op_chain_id[op_at],
                                                (attn >= 0).astype(np.int64)], axis=1))
    cat_index = {c: i for i, c in enumerate(CATEGORIES)}
    backend_index = {b: i + 1 for i, b in enumerate(BACKENDS)}
    classes = []
    for name_id, kind, chain_id, in_attention in keys.tolist():
        c, b = classify(names[name_id], kind, tuple(names[i] for i in chain_names[chain_id]),
                        bool(in_attention))
        classes.append((cat_index[c], backend_index.get(b, 0)))
    category = np.asarray([c for c, _ in classes], dtype=np.int8)[key_at]
    backend = np.asarray([b for _, b in classes], dtype=np.int8)[key_at]
    # an unfused attention call found by its op pattern makes its kernels attention
    call = np.full(n, -1, dtype=np.int64)
    if pattern_call:
        unit_values, unit_inverse = np.unique(units, return_inverse=True)
        call = np.asarray([pattern_call.get(u, -1) for u in unit_values.tolist()],
                          dtype=np.int64)[unit_inverse.reshape(-1)]
        promoted = (call >= 0) & (category != _ATTENTION_INDEX)
        category[promoted] = _ATTENTION_INDEX
        backend[promoted] = _VANILLA_INDEX
    attention_call = np.full(n, -1, dtype=np.int64)
    is_attention = category == _ATTENTION_INDEX
    in_module = is_attention & (attn >= 0)
    attention_call[in_module] = attn[in_module]
    by_op: dict[tuple[int, int], int] = {}           # (op, pattern call) -> the call's span
    rest = np.flatnonzero(is_attention & (attn < 0))
    for k, op, c in zip(rest.tolist(), op_node[rest].tolist(), call[rest].tolist()):
        found = by_op.get((op, c))
        if found is None:
            chain = tree.op_ancestors(op)
            found = by_op[(op, c)] = (c if c >= 0 and not _under_sdpa(trace, chain)
                                      else _attention_call_op(trace, chain))
        attention_call[k] = found
    _attach_prologues(trace, launch_ns, attention_call)
    return KernelTable(trace=trace, tree=tree, launch_ns=launch_ns, launch_name=launch_name, op_node=op_node,
                       scope_node=scope_node, category=category, backend=backend,
                       attention_call=attention_call, graph_join=graph_join)


_ATTENTION_INDEX = CATEGORIES.index("attention")
_VANILLA_INDEX = BACKENDS.index("vanilla") + 1
_SDPA_OP = re.compile(r"aten::(scaled_dot_product|_scaled_dot_product)")


def _under_sdpa(trace: Trace, chain: tuple[int, ...]) -> bool:
    """True when an SDPA op launched the kernel: that op, not the pattern, is the call."""
    names, span_names = trace.names, trace.spans.name_id
    return any(_SDPA_OP.match(names[span_names[op]]) for op in chain)


def _attention_module(tree: SpanTree, scope: int) -> int:
    """The nearest enclosing scope span that is an attention module (attn1, Attention_0)."""
    while scope >= 0:
        path = tree.scope_names.get(scope, "")
        if path and is_attention_scope_component(path.rsplit(".", 1)[-1]):
            return scope
        up = int(tree.parent[scope])
        scope = int(tree.scope_node[up]) if up >= 0 else -1
    return -1


def _attach_prologues(trace: Trace, launch_ns: np.ndarray, attention_call: np.ndarray) -> None:
    """Give each quantization prologue (Sage's INT8/FP8 quant, its own op) the call of the next
    attention kernel launched after it on the same device and stream: the prologue exists only
    for that call, and a call's time, bytes and bound include it (shown apart as prologue_us)."""
    gpu, names = trace.gpu, trace.names
    linked = np.flatnonzero(attention_call >= 0)
    if not len(linked):
        return
    prologue_ids = {i for i in np.unique(gpu.name_id[linked]).tolist()
                    if is_attention_prologue(names[i])}
    if not prologue_ids:
        return
    when = np.where(launch_ns[linked] >= 0, launch_ns[linked], gpu.start_ns[linked])
    order = linked[np.lexsort((when, gpu.stream[linked], gpu.device[linked]))]
    pending: list[int] = []
    lane = None
    for k in order.tolist():
        here = (int(gpu.device[k]), int(gpu.stream[k]))
        if here != lane:
            pending, lane = [], here
        if int(gpu.name_id[k]) in prologue_ids:
            pending.append(k)
        elif pending:
            attention_call[pending] = attention_call[k]
            pending = []


def _attention_call_op(trace: Trace, chain: tuple[int, ...]) -> int:
    """Outermost attention op of the chain (e.g. aten::scaled_dot_product_attention)."""
    names, span_names = trace.names, trace.spans.name_id
    for op in reversed(chain):
        if _ATTENTION_CALL_OP.match(names[span_names[op]]):
            return op
    return chain[0] if chain else -1

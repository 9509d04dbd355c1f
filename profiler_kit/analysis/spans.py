"""The nesting of CPU spans (aten ops, record_function scopes, nn.Module frames) per thread.

Spans on one thread nest like a call stack, so one sweep in (thread, start, longest-first) order
gives every span its parent, its nearest enclosing aten op and its nearest module scope. Lookups
("which span encloses this runtime call?") are then a binary search plus a short walk up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from profiler_kit.analysis.distinct import distinct_row_codes
from profiler_kit.trace import ANNOTATION, MODULE, NN_MODULE_PREFIX, OP, CpuSpans, Trace

MODULE_ANNOTATION_PREFIX = "module::"   # record_function names our capture puts on modules


@dataclass(frozen=True)
class SpanTree:
    parent: np.ndarray        # int64 span index, -1 at the root
    nearest_op: np.ndarray    # the span itself if an aten op, else its nearest op ancestor
    scope_node: np.ndarray    # nearest module-scope span (itself included), -1 outside
    scope_names: dict         # scope span index -> dotted module path
    scope_source: str         # "record_function" | "nn.Module" | "none"
    end_ns: np.ndarray
    # per thread: (span indices sorted by start, their starts) for enclosing-span lookups
    by_thread: dict
    # scope span -> the model it runs in: the outermost nn.Module frame's class
    # ("CLIPTextModel_0", "T5EncoderModel_0", "AutoencoderKL_0"): a pipeline trace's text
    # encoders, denoiser and VAE apart. Empty for record_function scopes (one model per capture).
    model_names: dict = field(default_factory=dict)
    # op -> its ancestor chain: asked for by the kernel table, the cost walk, the attention
    # view and kernels.csv, for the same ops; computed once each
    _ancestors: dict = field(default_factory=dict, repr=False, compare=False)

    def enclosing(self, thread: int, ts_ns: int) -> int:
        """Innermost span on `thread` whose interval contains ts_ns, or -1."""
        entry = self.by_thread.get(thread)
        if entry is None:
            return -1
        order, starts = entry
        pos = int(np.searchsorted(starts, ts_ns, side="right")) - 1
        if pos < 0:
            return -1
        node = int(order[pos])
        end, parent = self.end_ns, self.parent
        while node >= 0 and end[node] < ts_ns:
            node = int(parent[node])
        return node

    def enclosing_many(self, threads: np.ndarray, ts_ns: np.ndarray) -> np.ndarray:
        """:meth:`enclosing` of every (thread, ts) pair, as an int64 array (-1 none).

        Why not a loop over :meth:`enclosing`: a trace of 300k kernels made 300k binary
        searches and walks, a second of Python. Here each thread's lookups are one
        searchsorted, and the walk up (past spans that ended before ts) advances every
        unfinished lookup one parent per numpy pass: few passes, as spans nest shallowly."""
        threads = np.asarray(threads, dtype=np.int64)
        ts_ns = np.asarray(ts_ns, dtype=np.int64)
        node = np.full(len(ts_ns), -1, dtype=np.int64)
        if not len(ts_ns):
            return node
        for thread in np.unique(threads).tolist():
            entry = self.by_thread.get(thread)
            if entry is None:
                continue
            order, starts = entry
            at = np.flatnonzero(threads == thread)
            pos = np.searchsorted(starts, ts_ns[at], side="right") - 1
            found = pos >= 0
            node[at[found]] = order[pos[found]]
        end, parent = self.end_ns, self.parent
        walking = np.flatnonzero(node >= 0)
        while len(walking):
            walking = walking[end[node[walking]] < ts_ns[walking]]
            node[walking] = parent[node[walking]]
            walking = walking[node[walking] >= 0]
        return node

    def op_levels(self, ops: np.ndarray) -> list[np.ndarray]:
        """The chains of :meth:`op_ancestors` of ``ops`` as columns, innermost first: level 0
        the ops themselves, level k each one's k-th enclosing op (-1 past its chain's end), as
        many levels as the longest chain. Every chain climbs one level per numpy pass: ops nest
        a few deep, and a walk per op was seconds of Python on 300k ops."""
        levels = [np.asarray(ops, dtype=np.int64)]
        if not len(self.parent):
            return levels
        up = np.where(self.parent >= 0, self.nearest_op[np.maximum(self.parent, 0)], -1)
        while True:
            here = levels[-1]
            outer = np.where(here >= 0, up[np.maximum(here, 0)], -1)
            if not (outer >= 0).any():
                return levels
            levels.append(outer)

    def prefill_ancestors(self, ops: np.ndarray) -> None:
        """Compute :meth:`op_ancestors` of all of ``ops`` (distinct op spans) at once, from
        :meth:`op_levels`, instead of a walk of numpy scalar lookups per op (300k ops on a 1 GB
        trace)."""
        ops = np.asarray(ops, dtype=np.int64)
        ops = ops[ops >= 0]
        if not len(ops):
            return
        levels = self.op_levels(ops)
        depth = (np.stack(levels) >= 0).sum(axis=0).tolist()
        rows = np.stack(levels, axis=1).tolist()
        found = self._ancestors
        for op, row, d in zip(ops.tolist(), rows, depth):
            found[op] = tuple(row[:d])

    def op_name_chains(self, ops: np.ndarray, name_id: np.ndarray) -> tuple[list[tuple[int, ...]], np.ndarray]:
        """(the distinct chains of op names, as name ids, of ``ops``' :meth:`op_ancestors`,
        innermost first, () for -1; each op's index into them). Column-wise: the chains from
        :meth:`op_levels`, told apart by their rows of name ids, not built as a tuple per op (a
        1 GB trace: 248k ops, a few hundred chains)."""
        ops = np.asarray(ops, dtype=np.int64)
        if not (ops >= 0).any():
            return [()], np.zeros(len(ops), dtype=np.int64)
        rows, at = distinct_row_codes(np.stack(
            [np.where(lv >= 0, name_id[np.maximum(lv, 0)], -1) for lv in self.op_levels(ops)],
            axis=1).astype(np.int64))
        chains = [tuple(r[:r.index(-1)] if -1 in r else r) for r in rows.tolist()]
        return chains, at

    def op_ancestors(self, op: int) -> tuple[int, ...]:
        """The aten op `op` and the aten ops enclosing it, innermost first."""
        found = self._ancestors.get(op)
        if found is not None:
            return found
        start, chain = op, []
        parent, nearest = self.parent, self.nearest_op
        while op >= 0:
            chain.append(op)
            up = int(parent[op])
            op = int(nearest[up]) if up >= 0 else -1
        found = self._ancestors[start] = tuple(chain)
        return found


def build_span_tree(trace: Trace) -> SpanTree:
    spans: CpuSpans = trace.spans
    n = len(spans)
    names = trace.names
    start = spans.start_ns
    end = start + spans.dur_ns
    # Parents must come before children: by thread, then start, then the longer span first.
    order = np.lexsort((-spans.dur_ns, start, spans.thread))

    kinds = spans.kind
    name_ids = spans.name_id
    annotation_scope = {i for i, nm in enumerate(names) if nm.startswith(MODULE_ANNOTATION_PREFIX)}
    has_annotations = bool(annotation_scope) and bool(
        np.isin(name_ids[kinds == ANNOTATION], list(annotation_scope)).any())
    if has_annotations:
        is_scope = (kinds == ANNOTATION) & np.isin(name_ids, list(annotation_scope))
        scope_source = "record_function"
    else:
        is_scope = kinds == MODULE
        scope_source = "nn.Module" if is_scope.any() else "none"

    # The parents, what a stack sweep per thread gives, found column-wise (_stack_parents);
    # nearest op and scope then follow the parents column-wise too: a loop body per span doing
    # all three took 1.5 s on a trace of 1.3M spans, the stack sweep alone 0.35 s.
    threads_sorted = spans.thread[order]
    first = np.ones(n, dtype=bool)
    first[1:] = threads_sorted[1:] != threads_sorted[:-1]
    parent_at = _stack_parents(start[order], end[order], first)
    parent = np.full(n, -1, dtype=np.int64)
    parent[order] = np.where(parent_at >= 0, order[np.maximum(parent_at, 0)], -1)
    nearest_op = _nearest_marked(parent, kinds == OP)
    scope_node = _nearest_marked(parent, is_scope)

    scope_names: dict[int, str] = {}
    model_names: dict[int, str] = {}
    prefix_len = len(MODULE_ANNOTATION_PREFIX)
    scopes = order[is_scope[order]]            # parents before children
    scope_parent = parent[scopes]
    outer_l = np.where(scope_parent >= 0, scope_node[np.maximum(scope_parent, 0)], -1).tolist()
    for i, name_id, outer in zip(scopes.tolist(), name_ids[scopes].tolist(), outer_l):
        if has_annotations:
            # Our capture names each scope with the module's full dotted path already.
            scope_names[i] = names[name_id][prefix_len:]
        elif outer < 0:
            # nn.Module frames carry only the class: join them into a path, leaving out
            # the outermost module (the model itself), as named_modules() paths do.
            scope_names[i] = ""
            model_names[i] = names[name_id][len(NN_MODULE_PREFIX):]
        else:
            short = names[name_id][len(NN_MODULE_PREFIX):]
            up = scope_names[outer]
            scope_names[i] = f"{up}.{short}" if up else short
            model_names[i] = model_names.get(outer, "")

    by_thread = {}
    bounds = np.flatnonzero(np.diff(threads_sorted)) + 1
    for chunk in np.split(order, bounds):
        if len(chunk):
            by_thread[int(spans.thread[chunk[0]])] = (chunk, start[chunk])
    return SpanTree(parent=parent, nearest_op=nearest_op, scope_node=scope_node,
                    scope_names=scope_names, scope_source=scope_source, end_ns=end,
                    by_thread=by_thread, model_names=model_names)


def _stack_parents(starts: np.ndarray, ends: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Parent position of each span in (thread, start, longest-first) order, -1 at a root;
    ``first`` marks each thread's first span. The parent is what a stack sweep gives (push each
    span; before pushing, pop the spans that ended at or before its start; the one left on top
    encloses it), i.e. the nearest earlier span of the thread still open at the start, found
    here by pointer jumping instead of a Python loop over every span.

    Why the jumps are exact: the stack before span p is the chain p-1, parent(p-1), ... and
    p's parent is the first span of that chain with end > start[p]. Each unresolved span
    points at a candidate (first p-1); a candidate c that ended by start[p] is replaced by c's
    own candidate: every span c's walk passes over ended by start[c] <= start[p], so p would
    pass over it too, and c's walk reaches parent(c), where p's chain goes on. Walks along runs
    of siblings halve each pass (25 passes on a trace of 1.3M spans), and nested spans resolve
    in the first. Not-nested overlaps (a span that ends inside a later one) get what the stack
    gives, as the tests check against the sweep."""
    ptr = np.arange(-1, len(starts) - 1, dtype=np.int64)
    ptr[first] = -1
    todo = np.flatnonzero(ptr >= 0)
    while len(todo):
        cand = ptr[todo]
        ended = ends[cand] <= starts[todo]
        todo, cand = todo[ended], cand[ended]
        ptr[todo] = ptr[cand]          # resolved spans keep their candidate: the parent
        todo = todo[ptr[todo] >= 0]
    return ptr


def _nearest_marked(parent: np.ndarray, marked: np.ndarray) -> np.ndarray:
    """Per span: itself if marked, else its nearest marked ancestor, -1 none. By pointer
    doubling: each pass, a span not yet at a marked one (or the root) takes its pointee's
    pointer, skipping only unmarked spans, so a few passes reach any depth."""
    up = np.where(marked, np.arange(len(parent)), parent)
    while True:
        safe = np.maximum(up, 0)
        pending = np.flatnonzero((up >= 0) & ~marked[safe])
        if not len(pending):
            return up
        up[pending] = up[safe[pending]]

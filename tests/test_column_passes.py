"""The column-wise analysis passes (issue 24) against the one-at-a-time code they replaced:
same spans, same chains, same roofline points, same distinct rows. The traces' outputs are
compared whole by benchmarks/check_same_outputs.py; these pin the building blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from profiler_kit.analysis.cost_model import OpCost
from profiler_kit.analysis.distinct import distinct_row_codes, distinct_rows
from profiler_kit.analysis.kernels import build_kernel_table
from profiler_kit.analysis.roofline import roofline, roofline_many
from profiler_kit.analysis.spans import SpanTree, _nearest_marked, _stack_parents
from profiler_kit.hardware.specs import load_spec
from profiler_kit.trace import OP, read_trace

TRACE = Path(__file__).parent / "data" / "sd" / "trace_vanilla.json.gz"


@pytest.fixture(scope="module")
def table():
    return build_kernel_table(read_trace(TRACE))


def _walk_ancestors(tree: SpanTree, op: int) -> tuple[int, ...]:
    chain = []
    while op >= 0:
        chain.append(op)
        up = int(tree.parent[op])
        op = int(tree.nearest_op[up]) if up >= 0 else -1
    return tuple(chain)


def test_enclosing_many_is_enclosing_of_each(table):
    spans = table.trace.spans
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(spans), 2000)
    threads = spans.thread[pick]
    # inside a span, at its edges, and just outside it
    ts = spans.start_ns[pick] + rng.integers(-2, 3, len(pick)) * (spans.dur_ns[pick] // 2 + 1)
    got = table.tree.enclosing_many(threads, ts)
    want = [table.tree.enclosing(int(th), int(t)) for th, t in zip(threads.tolist(), ts.tolist())]
    assert got.tolist() == want
    assert table.tree.enclosing_many(np.empty(0, np.int64), np.empty(0, np.int64)).tolist() == []


def test_prefilled_chains_are_the_walked_ones(table):
    tree = table.tree
    ops = np.flatnonzero(table.trace.spans.kind == OP)[:500]
    fresh = SpanTree(parent=tree.parent, nearest_op=tree.nearest_op, scope_node=tree.scope_node,
                     scope_names=tree.scope_names, scope_source=tree.scope_source,
                     end_ns=tree.end_ns, by_thread=tree.by_thread)
    fresh.prefill_ancestors(np.r_[-1, ops])
    assert [fresh.op_ancestors(int(o)) for o in ops] == [_walk_ancestors(tree, int(o)) for o in ops]


def _swept_parents(starts: list, ends: list, cuts: list) -> list[int]:
    """The stack sweep _stack_parents replaced (a Python loop over every span)."""
    out = [-1] * len(starts)
    for a, b in zip(cuts, cuts[1:]):
        stack: list[int] = []
        stack_end: list[int] = []
        for p in range(a, b):
            s = starts[p]
            while stack_end and stack_end[-1] <= s:
                stack.pop()
                stack_end.pop()
            if stack:
                out[p] = stack[-1]
            stack.append(p)
            stack_end.append(ends[p])
    return out


def _both_parents(thread, start, dur):
    thread, start, dur = (np.asarray(x, dtype=np.int64) for x in (thread, start, dur))
    order = np.lexsort((-dur, start, thread))
    t, s, e = thread[order], start[order], (start + dur)[order]
    first = np.ones(len(t), dtype=bool)
    first[1:] = t[1:] != t[:-1]
    cuts = [0, *(np.flatnonzero(np.diff(t)) + 1).tolist(), len(t)]
    return _stack_parents(s, e, first).tolist(), _swept_parents(s.tolist(), e.tolist(), cuts)


@pytest.mark.parametrize("trace", [
    TRACE, Path(__file__).parent / "data" / "sd_plain" / "sd15-512-vanilla-plain.json.gz",
    Path(__file__).parent / "data" / "third_party" / "hta" / "benchmark_result_924719_1679055439_trace.json.gz",
], ids=lambda p: p.name[:24])
def test_stack_parents_are_the_sweeps(trace):
    spans = read_trace(trace).spans
    got, want = _both_parents(spans.thread, spans.start_ns, spans.dur_ns)
    assert got == want and max(want) >= 0


def test_stack_parents_of_spans_that_do_not_nest():
    """Overlaps that are not nesting, zero-length spans, equal starts, spans ending where the
    next begins, several threads, long runs of siblings: whatever the sweep gives."""
    rng = np.random.default_rng(1)
    for _ in range(50):
        n = int(rng.integers(1, 400))
        thread = rng.integers(0, 3, n)
        start = rng.integers(0, 200, n)
        dur = rng.integers(0, 40, n) * rng.integers(0, 2, n)
        got, want = _both_parents(thread, start, dur)
        assert got == want
    siblings = np.arange(5000)
    got, want = _both_parents(np.zeros(5001), np.r_[0, siblings * 2], np.r_[10_001, np.ones(5000)])
    assert got == want == [-1] + [0] * 5000
    assert _both_parents([], [], []) == ([], [])


def test_op_name_chains_are_the_walked_chains_names(table):
    tree, names = table.tree, table.trace.spans.name_id
    ops = np.r_[-1, table.op_node, np.flatnonzero(table.trace.spans.kind == OP)[:500]]
    chains, at = tree.op_name_chains(ops, names)
    assert len(set(chains)) == len(chains)
    assert [chains[i] for i in at.tolist()] == [
        tuple(int(names[a]) for a in _walk_ancestors(tree, int(o))) for o in ops.tolist()]


@pytest.mark.parametrize("trace", ["trace_vanilla.json.gz", "trace_sdpa.json.gz"])
def test_unit_ops_are_unit_op_of_each(trace):
    """Column-wise units against the walk per op, on a trace whose chains hold SDPA wrappers."""
    from profiler_kit.analysis.attention_pattern import unit_op, unit_ops
    t = build_kernel_table(read_trace(TRACE.parent / trace))
    names, span_names = t.trace.names, t.trace.spans.name_id
    ops = np.r_[-1, np.unique(t.op_node), np.flatnonzero(t.trace.spans.kind == OP)]
    got = unit_ops(t.tree, names, span_names, ops).tolist()
    assert got == [unit_op(t.tree, names, span_names, int(o)) if o >= 0 else -1 for o in ops.tolist()]
    assert got != ops.tolist()                   # some unit is not the op itself


def test_nearest_marked_follows_the_parents():
    # 0 <- 1 <- 2 <- 3, 0 <- 4, 5 a root; 1 and 5 marked
    parent = np.array([-1, 0, 1, 2, 0, -1])
    marked = np.array([False, True, False, False, False, True])
    assert _nearest_marked(parent, marked).tolist() == [-1, 1, 1, 1, -1, 5]


def test_distinct_rows_index_back_to_every_row():
    rng = np.random.default_rng(1)
    table = rng.integers(0, 4, (1000, 3)) * np.array([1, 10**12, 7])
    rows, at = distinct_rows(table)
    assert len(set(rows)) == len(rows) == len({tuple(r) for r in table.tolist()})
    assert [rows[i] for i in at] == [tuple(r) for r in table.tolist()]
    empty, codes = distinct_row_codes(np.empty((0, 2), np.int64))
    assert empty.shape == (0, 2) and codes.tolist() == []


@pytest.mark.parametrize("distinct_per_column", [3, 100_000])
def test_distinct_row_codes_are_np_uniques(distinct_per_column):
    """Same rows, same order, same codes as np.unique(axis=0), also where the folded radix
    would pass 2**62 (5 columns of up to 100k values each) and the codes are renumbered."""
    rng = np.random.default_rng(2)
    table = rng.integers(-distinct_per_column, distinct_per_column, (200_000, 5))
    rows, codes = distinct_row_codes(table)
    want_rows, want_codes = np.unique(table, axis=0, return_inverse=True)
    assert np.array_equal(rows, want_rows) and np.array_equal(codes, want_codes.reshape(-1))


def test_roofline_many_is_roofline_of_each():
    spec = load_spec("h100-sxm")
    costs = [OpCost(flops=2e12, bytes=1e9, engine="tensor", dtype="fp16", formula="gemm"),
             OpCost(flops=10, bytes=4e9, engine="cuda", dtype="fp32", formula="elementwise"),
             OpCost(flops=5e9, bytes=2e6, engine="tensor", dtype="fp8_e4m3", formula="gemm"),
             OpCost(flops=0, bytes=0, engine="cuda", dtype="int64", formula="copy")]
    calls = [costs[i % len(costs)] for i in range(40)]
    durations = [0.0, 1.0, 4.99, 5.0, 12.5, 300.0, 2e4, -1.0] * 5
    assert roofline_many(calls, durations, spec) == [roofline(c, d, spec) for c, d in zip(calls, durations)]
    assert roofline_many([], [], spec) == []

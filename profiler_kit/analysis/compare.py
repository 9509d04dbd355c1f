"""Compare two analyses (e.g. vanilla vs memory-efficient attention of the same model).

Figures are aligned by name: categories, UNet blocks and bounds by key; attention calls by
module scope and occurrence (the n-th call of ``...attn1`` in a meets the n-th in b), so
several profiled steps line up call for call. Deltas are b - a (``records.Pair.delta``).
"""

from __future__ import annotations

from collections import defaultdict

from profiler_kit.analysis.findings import trace_findings
from profiler_kit.records import Analysis, AttentionCall, CallPair, Comparison, Pair


def _pairs(a: dict, b: dict) -> dict[str, Pair]:
    return {k: Pair.of(a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b])}


def _block_totals(blocks: dict) -> dict[str, float]:
    return {block: sum(row.values()) for block, row in blocks.items()}


def _keyed_calls(calls: list[AttentionCall]) -> dict[tuple[str, int], AttentionCall]:
    seen: dict[str, int] = defaultdict(int)
    out = {}
    for call in calls:
        scope = call.scope or "(no scope)"
        out[(scope, seen[scope])] = call
        seen[scope] += 1
    return out


def compare(a: Analysis, b: Analysis) -> Comparison:
    """b against a; the labels are the analyses' own ("a" / "b" where they have none)."""
    label_a, label_b = a.label or "a", b.label or "b"
    calls_a, calls_b = _keyed_calls(a.attention.calls_or_empty), _keyed_calls(b.attention.calls_or_empty)
    attention_calls = []
    for key in dict.fromkeys([*calls_a, *calls_b]):
        ca, cb = calls_a.get(key), calls_b.get(key)
        either = ca or cb
        attention_calls.append(CallPair(
            scope=key[0], occurrence=key[1], kind=either.kind, level=either.level,
            a_us=ca.time_us if ca else None, b_us=cb.time_us if cb else None,
            a_bytes_estimate=ca.hbm_bytes_estimate if ca else None,
            b_bytes_estimate=cb.hbm_bytes_estimate if cb else None,
            a_flops_estimate=ca.flops_estimate if ca else None,
            b_flops_estimate=cb.flops_estimate if cb else None,
            a_backend=ca.backend if ca else None, b_backend=cb.backend if cb else None))
    return Comparison(
        a=label_a, b=label_b,
        total_us=Pair.of(a.kernels.total_us, b.kernels.total_us),
        busy_us=Pair.of(a.timeline.busy_us, b.timeline.busy_us),
        window_us=Pair.of(a.timeline.window_us, b.timeline.window_us),
        categories_us=_pairs(a.categories_us, b.categories_us),
        blocks_us=_pairs(_block_totals(a.blocks_us), _block_totals(b.blocks_us)),
        blocks_categories_us={block: _pairs(a.blocks_us.get(block, {}), b.blocks_us.get(block, {}))
                              for block in dict.fromkeys([*a.blocks_us, *b.blocks_us])},
        bound_us=_pairs(a.bound_us, b.bound_us),
        flops_estimate=Pair.of(a.flops_estimate, b.flops_estimate),
        hbm_bytes_estimate=Pair.of(a.hbm_bytes_estimate, b.hbm_bytes_estimate),
        attention_us=Pair.of(a.attention.total_us, b.attention.total_us),
        attention_hbm_bytes_estimate=Pair.of(a.attention.hbm_bytes_estimate, b.attention.hbm_bytes_estimate),
        peak_allocated_bytes=Pair.of(a.memory.peak_allocated_bytes, b.memory.peak_allocated_bytes),
        attention_calls=attention_calls,
        findings=trace_findings({label_a: a, label_b: b} if label_a != label_b else {label_a: a}))

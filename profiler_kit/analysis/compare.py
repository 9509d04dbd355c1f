"""Compare two analyses (e.g. vanilla vs memory-efficient attention of the same model).

Figures are aligned by name: categories, UNet blocks and bounds by key; attention calls by
module scope and occurrence (the n-th call of ``...attn1`` in a meets the n-th in b), so
several profiled steps line up call for call. ``delta`` is always b - a.
"""

from __future__ import annotations

from collections import defaultdict


def _pair(a: float | None, b: float | None) -> dict:
    a = a or 0.0
    b = b or 0.0
    return {"a": a, "b": b, "delta": b - a}


def _pairs(a: dict, b: dict) -> dict:
    return {k: _pair(a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b])}


def _block_totals(blocks: dict) -> dict:
    return {block: sum(row.values()) for block, row in blocks.items()}


def _keyed_calls(calls: list) -> dict:
    seen: dict[str, int] = defaultdict(int)
    out = {}
    for call in calls:
        scope = call["scope"] or "(no scope)"
        out[(scope, seen[scope])] = call
        seen[scope] += 1
    return out


def compare(a, b) -> dict:
    """a, b: TraceAnalysis objects or their to_dict() dicts."""
    da = a.to_dict() if hasattr(a, "to_dict") else a
    db = b.to_dict() if hasattr(b, "to_dict") else b
    label_a = da.get("label") or "a"        # a TraceAnalysis keeps its label in the dict too
    label_b = db.get("label") or "b"
    calls_a, calls_b = _keyed_calls(da["attention"]["calls"]), _keyed_calls(db["attention"]["calls"])
    attention_calls = []
    for key in dict.fromkeys([*calls_a, *calls_b]):
        ca, cb = calls_a.get(key, {}), calls_b.get(key, {})
        attention_calls.append({
            "scope": key[0], "occurrence": key[1], "kind": ca.get("kind") or cb.get("kind"),
            "level": ca.get("level") or cb.get("level"),
            "a_us": ca.get("time_us"), "b_us": cb.get("time_us"),
            "a_bytes_estimate": ca.get("hbm_bytes_estimate"),
            "b_bytes_estimate": cb.get("hbm_bytes_estimate"),
            "a_flops_estimate": ca.get("flops_estimate"),
            "b_flops_estimate": cb.get("flops_estimate"),
            "a_backend": ca.get("backend"), "b_backend": cb.get("backend"),
        })
    return {
        "a": label_a, "b": label_b,
        "total_us": _pair(da["kernels"]["total_us"], db["kernels"]["total_us"]),
        "busy_us": _pair(da["timeline"]["busy_us"], db["timeline"]["busy_us"]),
        "window_us": _pair(da["timeline"]["window_us"], db["timeline"]["window_us"]),
        "categories_us": _pairs(da["categories_us"], db["categories_us"]),
        "blocks_us": _pairs(_block_totals(da["blocks_us"]), _block_totals(db["blocks_us"])),
        "blocks_categories_us": {
            block: _pairs(da["blocks_us"].get(block, {}), db["blocks_us"].get(block, {}))
            for block in dict.fromkeys([*da["blocks_us"], *db["blocks_us"]])},
        "bound_us": _pairs(da["bound_us"], db["bound_us"]),
        "flops_estimate": _pair(da["flops_estimate"], db["flops_estimate"]),
        "hbm_bytes_estimate": _pair(da["hbm_bytes_estimate"], db["hbm_bytes_estimate"]),
        "attention_us": _pair(da["attention"]["total_us"], db["attention"]["total_us"]),
        "attention_hbm_bytes_estimate": _pair(da["attention"].get("hbm_bytes_estimate"),
                                              db["attention"].get("hbm_bytes_estimate")),
        "peak_allocated_bytes": _pair(da["memory"]["peak_allocated_bytes"],
                                      db["memory"]["peak_allocated_bytes"]),
        "attention_calls": attention_calls,
    }

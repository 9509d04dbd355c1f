"""comparison.json: two traces' figures side by side (``Comparison``)."""

from __future__ import annotations

import os

import msgspec

from profiler_kit.records.analysis import Finding
from profiler_kit.records.base import SCHEMA_VERSION, Record, _convert, _load

class Pair(Record, kw_only=True):
    """One figure in a and in b; ``delta`` (b - a) is derived on construction and on read."""

    a: float
    b: float
    delta: float = 0.0

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "delta", self.b - self.a)

    @staticmethod
    def of(a: float | None, b: float | None) -> "Pair":
        return Pair(a=a or 0.0, b=b or 0.0)


class CallPair(Record, kw_only=True):
    """The n-th call of one attention layer in a and in b (None where absent)."""

    scope: str
    occurrence: int
    kind: str | None = None
    level: str | None = None
    a_us: float | None = None
    b_us: float | None = None
    a_bytes_estimate: float | None = None
    b_bytes_estimate: float | None = None
    a_flops_estimate: float | None = None
    b_flops_estimate: float | None = None
    a_backend: str | None = None
    b_backend: str | None = None


class Comparison(Record, kw_only=True):
    """comparison.json: b against a, aligned by name. Deltas are b - a (``Pair.delta``)."""

    schema_version: int = SCHEMA_VERSION
    a: str
    b: str
    total_us: Pair
    busy_us: Pair
    window_us: Pair
    categories_us: dict[str, Pair] = {}
    blocks_us: dict[str, Pair] = {}
    blocks_categories_us: dict[str, dict[str, Pair]] = {}
    bound_us: dict[str, Pair] = {}
    flops_estimate: Pair
    hbm_bytes_estimate: Pair
    attention_us: Pair
    attention_hbm_bytes_estimate: Pair
    peak_allocated_bytes: Pair
    attention_calls: list[CallPair] = []
    findings: list[Finding] = []

def comparison_from_builtins(data: dict, where: str = "comparison") -> Comparison:
    if data.get("schema_version", 1) == 1:
        data = _migrate_v1_comparison(data)
    return _convert(data, Comparison, where)

def read_comparison(path: str | os.PathLike) -> Comparison:
    return comparison_from_builtins(_load(path), str(path))

def _migrate_v1_comparison(c: dict) -> dict:
    """v1 comparisons had no schema_version and no findings; their figures kept their names."""
    return {**c, "schema_version": SCHEMA_VERSION}

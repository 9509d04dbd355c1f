"""Which op carries each kernel's cost: the walk of kernel_costs.py, done column-wise.

From the kernel's innermost aten op outwards, the OUTERMOST op the cost model gives a cost
for, the walk stopping below a decomposition op (kernel_costs' module docstring says why).
Done per op one chain at a time, that was a second of Python on a trace of 300k kernels;
here every launching op's chain advances one level per numpy pass (ops nest a few deep), the
ops met are estimated once per distinct (name, shapes, dtypes, concrete inputs), and the
outermost costed op of each chain is picked level by level.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from profiler_kit.analysis.distinct import distinct_row_codes
from profiler_kit.analysis.kernels import KernelTable


def cost_bearing_ops(table: KernelTable, decompositions: frozenset,
                     estimate: Callable[[tuple], object]) -> tuple[np.ndarray, dict]:
    """(cost-bearing op per kernel, -1 none; {cost-bearing op: its cost}).

    ``estimate(key)``: the cost (or None) of an op whose key is (name id, input dims id,
    input types id, concrete inputs id); called once per distinct key of the ops the walk
    meets, exactly the ops a chain-by-chain walk asks about."""
    trace, tree = table.trace, table.tree
    spans, names = trace.spans, trace.names
    op_node = table.op_node
    ops, op_at = np.unique(op_node, return_inverse=True)
    op_at = op_at.reshape(-1)
    launching = ops >= 0
    if not launching.any():
        return np.full(len(op_node), -1, dtype=np.int64), {}
    # the op enclosing each span's op: SpanTree.op_ancestors one step at a time
    outer_op = np.where(tree.parent >= 0, tree.nearest_op[np.maximum(tree.parent, 0)], -1)
    cut_ids = np.asarray([i for i, nm in enumerate(names) if nm in decompositions], dtype=np.int64)
    levels, walked = [], []              # per level: the chain's op there, and whether it counts
    here = np.where(launching, ops, -1)
    counts = launching.copy()
    while True:
        counts &= here >= 0
        counts &= ~np.isin(spans.name_id[np.maximum(here, 0)], cut_ids)
        if not counts.any():
            break
        levels.append(here)
        walked.append(counts.copy())
        here = np.where(here >= 0, outer_op[np.maximum(here, 0)], -1)
    if not levels:
        return np.full(len(op_node), -1, dtype=np.int64), {}
    met = np.unique(np.concatenate([lv[w] for lv, w in zip(levels, walked)]))
    keys, key_at = distinct_row_codes(np.stack([spans.name_id[met], spans.input_dims[met],
                                                spans.input_types[met],
                                                spans.concrete_inputs[met]], axis=1).astype(np.int64))
    costs = [estimate(key) for key in map(tuple, keys.tolist())]
    costed = np.asarray([c is not None for c in costs], dtype=bool)[key_at]
    top = np.full(len(ops), -1, dtype=np.int64)
    for lv, w in zip(levels, walked):          # innermost first: the outermost costed op wins
        at = np.searchsorted(met, np.maximum(lv, 0))
        known = w & costed[np.minimum(at, len(met) - 1)]
        top[known] = lv[known]
    cost_node = top[op_at]
    chosen = np.unique(top[top >= 0])
    chosen_keys = key_at[np.searchsorted(met, chosen)]
    return cost_node, dict(zip(chosen.tolist(), [costs[k] for k in chosen_keys.tolist()]))

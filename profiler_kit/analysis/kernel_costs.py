"""FLOPs, HBM bytes and roofline bound per kernel, from the cost model and the GPU spec.

Which op carries the cost: walk from the kernel's innermost aten op outwards and take the
OUTERMOST op the cost model returns a cost for (aten::conv2d rather than
aten::cudnn_convolution; aten::scaled_dot_product_attention rather than
aten::_flash_attention_forward). Each op instance is then costed exactly once, however many
kernels it launches. The walk stops below a DECOMPOSITIONS op (SDPA's math backend).

How an op's cost is split over its kernels: over its WORK kernels, those of the op's leading
category (attention > conv > gemm > norm > softmax > embedding > optimizer > moe_routing >
communication >
elementwise > other > copy > layout), in
proportion to their time. Inside aten::conv2d the convolution kernels are the work; cuDNN's
NCHW<->NHWC conversions, workspace memsets and the bias add are helpers: they carry no share of
the conv's FLOPs or bytes. A helper that does (next to) no arithmetic (layout, copy, elementwise)
cannot be compute-bound: its bound is memory, or latency when shorter than the roofline's latency
threshold; other helpers stay unknown. An op made only of such kernels (aten::copy_) is costed
normally. The roofline is judged per op instance, its cost against the summed time of its work
kernels, and every work kernel shares that bound. The sums per op and per trace stay exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import numpy as np

from profiler_kit.analysis.categories import CATEGORIES
from profiler_kit.analysis.cost_model import OpCost, estimate_op
from profiler_kit.analysis.cost_model.op_args import DTYPES, FLOAT_DTYPES
from profiler_kit.analysis.cost_walk import cost_bearing_ops
from profiler_kit.analysis.kernels import KernelTable
from profiler_kit.analysis.links import apply_link_bounds
from profiler_kit.analysis.roofline import (BOUNDS, LATENCY_THRESHOLD_US, RooflinePoint, judging_spec,
                                            roofline_many, roofs_used)
from profiler_kit.records import RoofCalibration, Roofs
from profiler_kit.trace import compact_raw, decode_raw

# Ops that run as a chain of ordinary aten ops: their kernels are costed by those ops (the walk
# outwards stops below them). SDPA's math backend materialises the N x N scores like vanilla
# attention; costing it as one fused attention would hide exactly that traffic.
DECOMPOSITIONS = frozenset({"aten::_scaled_dot_product_attention_math"})
UNKNOWN = BOUNDS.index("unknown")
# aten::cat / stack record their inputs as one TensorList: shapes, but no dtype. They are
# costed from those input shapes with the dtype most op inputs of the trace have (a model's
# activations share one dtype: fp16 for our UNet runs, bf16 or fp32 for others), instead of
# leaving their time unjudged.
_TENSORLIST_OPS = frozenset({"aten::cat", "aten::_cat", "aten::stack"})

# Which kernels of an op do its work (lowest rank present); see the module docstring.
_RANK = np.asarray([("attention", "conv", "gemm", "norm", "softmax", "embedding", "optimizer",
                     "moe_routing", "communication", "elementwise", "other", "copy", "layout").index(c)
                    for c in CATEGORIES])
_LOW_INTENSITY = [CATEGORIES.index(c) for c in ("elementwise", "copy", "layout")]


class OpPoint(msgspec.Struct, frozen=True, gc=False):
    """One costed op instance and its roofline judgement. A Struct, as RooflinePoint is: 220k
    of them on a 1 GB trace were 0.25 s of dataclass __init__. gc=False: it refers to an
    OpCost and a RooflinePoint, which never refer back."""
    node: int                 # CpuSpans index of the op
    op: str
    shapes: str               # "Input Dims" as recorded, compact JSON
    dtypes: str
    cost: OpCost
    time_us: float            # summed duration of the op's kernels
    point: RooflinePoint | None   # None without a GPU spec
    main_kernel: int          # longest kernel of the op (GpuActivities index)


@dataclass(frozen=True)
class KernelCosts:
    cost_node: np.ndarray     # cost-bearing op per kernel, -1 none
    flops: np.ndarray         # float64 estimate per kernel (0 where unknown)
    hbm_bytes: np.ndarray     # float64 estimate per kernel (0 where unknown)
    bound: np.ndarray         # int8 index into BOUNDS
    points: tuple[OpPoint, ...]
    roofs: Roofs | None       # the roofs the points were judged against; None without a spec
    judge: object = None      # the GpuSpec the points were judged against (roofline.judging_spec)
    is_work: np.ndarray | None = None   # bool per kernel: a work kernel of its costed op (not a helper)

    @property
    def roofline_floor_us(self) -> float:
        return float(sum(p.point.roofline_us for p in self.points if p.point is not None))


def _dominant_float_dtype(trace) -> str | None:
    """The floating dtype (cost-model label: "fp16", "bf16", ...) named most often in the
    trace's recorded op input types."""
    texts = trace.arg_texts
    ids, counts = np.unique(trace.spans.input_types[trace.spans.input_types > 0],
                            return_counts=True)
    tally: dict[str, int] = {}
    for i, c in zip(ids.tolist(), counts.tolist()):
        types = decode_raw(texts[i])
        for t in types if isinstance(types, list) else ():
            label = DTYPES.get(t, (None, 0))[0] if isinstance(t, str) else None
            if label in FLOAT_DTYPES:
                tally[label] = tally.get(label, 0) + c
    return max(tally, key=tally.get) if tally else None


_MOVERS = frozenset(CATEGORIES.index(c) for c in ("layout", "copy"))
_ELEMENTWISE = CATEGORIES.index("elementwise")


def _helper_traffic(table: KernelTable, costed: np.ndarray, group: np.ndarray, work: np.ndarray,
                    nodes: np.ndarray, op_cost: dict, hbm: np.ndarray) -> None:
    """Give an op's helper kernels the bytes its cost says they move (OpCost.helper), in launch
    order: layout/copy kernels before the first work kernel take the ``before`` tensors in turn
    (a conv: the input, then the weights), one after the work converts the output back, and an
    elementwise kernel after it adds the bias (reads the output and the bias, writes the output).
    Each moved tensor is read once and written once. Helpers beyond those keep no bytes. Their
    time is still judged as before (memory, or latency when short): only the bytes are added."""
    start = table.trace.gpu.start_ns[costed]
    has_helper = np.asarray([op_cost[int(nd)].helper is not None for nd in nodes.tolist()], dtype=bool)
    chosen = np.flatnonzero(has_helper[group])
    if not len(chosen) or work[chosen].all():
        return
    order = chosen[np.lexsort((start[chosen], group[chosen]))]      # by op, then launch order
    # One segment per op: only those with work and helper kernels both are walked, over plain
    # lists (numpy calls per segment were 0.3 s for 35k ops on a 1 GB trace).
    lo = np.r_[0, np.flatnonzero(np.diff(group[order])) + 1]
    hi = np.r_[lo[1:], len(order)]
    work_o = work[order]
    n_work = np.add.reduceat(work_o.astype(np.int64), lo)
    first_work = np.minimum.reduceat(np.where(work_o, start[order], np.iinfo(np.int64).max), lo)
    mixed = (n_work > 0) & (n_work < hi - lo)
    work_l, start_l = work_o.tolist(), start[order].tolist()
    kernel_l = costed[order].tolist()
    category_l = table.category[costed[order]].tolist()
    node_of = nodes[group[order[lo[mixed]]]].tolist()
    for a, b, first, node in zip(lo[mixed].tolist(), hi[mixed].tolist(),
                                 first_work[mixed].tolist(), node_of):
        helper = op_cost[node].helper
        before = list(helper.before_bytes)
        converted_back = bias_added = False
        for i in range(a, b):
            if work_l[i]:
                continue
            k, cat = kernel_l[i], category_l[i]
            if start_l[i] < first:
                if cat in _MOVERS and before:
                    hbm[k] = 2.0 * before.pop(0)
            elif cat in _MOVERS and not converted_back and helper.after_bytes:
                hbm[k] = 2.0 * helper.after_bytes
                converted_back = True
            elif cat == _ELEMENTWISE and not bias_added and helper.bias_bytes:
                hbm[k] = 2.0 * helper.after_bytes + helper.bias_bytes
                bias_added = True


# FlashAttention-2's split-KV path (flash_api.cpp, set_params_splitkv): when batch x heads x
# query blocks would leave SMs idle, the keys are split over grid.y and each split writes its
# partial output and log-sum-exp in fp32; a combine kernel reads them back and writes O. That
# round trip is traffic beyond Q, K, V and O read or written once.
_SPLIT_KV = "splitkv_kernel"
_SPLIT_KV_COMBINE = "splitkv_combine_kernel"
_ACCUM_BYTES = 4            # fp32 partial outputs and log-sum-exp


def _split_kv_traffic(table: KernelTable, costed: np.ndarray, group: np.ndarray, nodes: np.ndarray,
                      op_cost: dict, hbm: np.ndarray) -> None:
    """Add the partials of a split-KV FlashAttention call: splits x batch x heads x Nq x
    (head_dim_v + 1) fp32 values (O and log-sum-exp per split), written by the split kernel and
    read by the combine kernel. The number of splits is the split kernel's grid.y (FA2 launches
    grid (query blocks, splits, batch x heads)). Checked on an H200 with Nsight Compute: SD 1.5
    at 512 px, 256 tokens, head dim 160, 4 splits: 10.55 MB estimated, 10.56 MB written by the
    split kernel and 10.57 MB read by the combine kernel (docs/cost-model.md). One pass over the
    kernels: the names are matched once per distinct name, not once per op."""
    names, gpu = table.trace.names, table.trace.gpu
    ids = gpu.name_id[costed]
    distinct = np.unique(ids).tolist()
    split_ids = [i for i in distinct if _SPLIT_KV in names[i]]
    if not split_ids:
        return
    combine_ids = [i for i in distinct if _SPLIT_KV_COMBINE in names[i]]
    by_group: dict[int, tuple[list[int], list[int]]] = {}
    for at in np.flatnonzero(np.isin(ids, split_ids)).tolist():
        by_group.setdefault(int(group[at]), ([], []))[0].append(int(costed[at]))
    for at in np.flatnonzero(np.isin(ids, combine_ids)).tolist():
        if int(group[at]) in by_group:
            by_group[int(group[at])][1].append(int(costed[at]))
    for g, (split, combine) in by_group.items():
        shape = op_cost[int(nodes[g])].attention
        if shape is None or len(split) != 1 or len(combine) != 1:
            continue
        splits = int(gpu.grid[split[0]][1])
        if splits < 2:
            continue
        partials = (splits * shape.batch * shape.heads * shape.q_tokens * (shape.head_dim_v + 1)
                    * _ACCUM_BYTES)
        hbm[split[0]] += partials
        hbm[combine[0]] += partials


def cost_kernels(table: KernelTable, spec=None, allow_tf32: bool | None = None,
                 calibration: RoofCalibration | None = None, roof_basis: str = "datasheet") -> KernelCosts:
    """Cost and judge every kernel of ``table`` against ``spec`` (a GpuSpec, or None: no bounds).

    ``allow_tf32``: whether fp32 matmuls and convolutions ran as TF32 (the run's ``tf32=``); None
    for PyTorch's defaults, which is all a trace of unknown origin tells (see cost_model).
    ``calibration`` / ``roof_basis``: the card's measured roofs and whether they judge ("measured")
    or are only recorded beside the datasheet's ("datasheet"); see roofline.judging_spec."""
    datasheet = spec
    spec = judging_spec(spec, calibration, roof_basis) if spec is not None else None
    trace = table.trace
    spans, names, texts = trace.spans, trace.names, trace.arg_texts
    n = len(table)
    dtype_cache: list[str | None] = []

    def trace_dtype() -> str | None:
        if not dtype_cache:
            dtype_cache.append(_dominant_float_dtype(trace))
        return dtype_cache[0]

    def estimate(key: tuple) -> OpCost | None:
        """The cost of an op keyed (name, dims, types, concrete ids), from its recorded texts."""
        dims, types, concrete = (decode_raw(texts[i]) for i in key[1:])
        name = names[key[0]]
        return estimate_op(name, dims or [], types or [], concrete, allow_tf32=allow_tf32,
                           fallback_dtype=trace_dtype() if name in _TENSORLIST_OPS else None)

    cost_node, op_cost = cost_bearing_ops(table, DECOMPOSITIONS, estimate)
    dur_us = table.dur_us

    flops = np.zeros(n)
    hbm = np.zeros(n)
    is_work = np.zeros(n, dtype=bool)
    bound = np.full(n, UNKNOWN, dtype=np.int8)
    points = []
    costed = np.flatnonzero(cost_node >= 0)
    if len(costed):
        # one group per costed op instance; shares of the op's work time per kernel
        nodes, group = np.unique(cost_node[costed], return_inverse=True)
        dur = dur_us[costed]
        rank = _RANK[table.category[costed]]
        lead = np.full(len(nodes), len(_RANK))
        np.minimum.at(lead, group, rank)
        work = rank == lead[group]
        time_us = np.bincount(group, weights=dur * work, minlength=len(nodes))
        count = np.bincount(group, weights=work, minlength=len(nodes))
        share = np.where(time_us[group] > 0, dur / np.maximum(time_us[group], 1e-300),
                         1.0 / count[group]) * work
        op_flops = np.asarray([op_cost[nd].flops for nd in nodes.tolist()])
        op_bytes = np.asarray([op_cost[nd].bytes for nd in nodes.tolist()])
        flops[costed] = op_flops[group] * share
        hbm[costed] = op_bytes[group] * share
        # the longest work kernel of each op: sort by (group, work, duration), take the last
        order = np.lexsort((dur, work, group))
        main = costed[order[np.r_[np.flatnonzero(np.diff(group[order])), len(order) - 1]]]
        bound_index = {b: i for i, b in enumerate(BOUNDS)}
        op_bound = np.full(len(nodes), UNKNOWN, dtype=np.int8)
        node_l, time_l = nodes.tolist(), time_us.tolist()
        op_costs = [op_cost[node] for node in node_l]
        judged = roofline_many(op_costs, time_l, spec) if spec is not None else [None] * len(node_l)
        if spec is not None:
            op_bound[:] = [bound_index[p.bound] for p in judged]
        # the recorded texts made compact once per distinct text, not once per call
        compact: dict[int, str] = {}
        dims_ids = spans.input_dims[nodes].tolist()
        types_ids = spans.input_types[nodes].tolist()
        for i in dict.fromkeys(dims_ids + types_ids):
            compact[i] = compact_raw(texts[i])
        points = list(map(OpPoint, node_l, map(names.__getitem__, spans.name_id[nodes].tolist()),
                          map(compact.__getitem__, dims_ids), map(compact.__getitem__, types_ids),
                          op_costs, time_l, judged, main.tolist()))
        is_work[costed] = work
        _helper_traffic(table, costed, group, work, nodes, op_cost, hbm)
        _split_kv_traffic(table, costed, group, nodes, op_cost, hbm)
        bound[costed] = np.where(work, op_bound[group], UNKNOWN)
        if spec is not None:
            helpers = costed[~work & np.isin(table.category[costed], _LOW_INTENSITY)]
            bound[helpers] = np.where(dur_us[helpers] < LATENCY_THRESHOLD_US,
                                      BOUNDS.index("latency"), BOUNDS.index("memory"))
    apply_link_bounds(table, bound)
    roofs = (roofs_used((p.point for p in points if p.point is not None), datasheet, allow_tf32,
                        calibration, roof_basis) if spec is not None else None)
    return KernelCosts(cost_node=cost_node, flops=flops, hbm_bytes=hbm, bound=bound,
                       points=tuple(points), roofs=roofs, judge=spec, is_work=is_work)

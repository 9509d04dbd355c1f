"""Kernel time summed by category, UNet block, roofline bound and kernel name; roofline points
per op shape. Pure aggregation of the kernel table and its costs."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from profiler_kit.analysis.categories import CATEGORIES
from profiler_kit.analysis.kernel_costs import BOUNDS, KernelCosts
from profiler_kit.analysis.kernels import KernelTable, block_of

TOP_KERNELS = 100


def _sum_by(codes: np.ndarray, weights: np.ndarray, labels) -> dict[str, float]:
    sums = np.bincount(codes, weights=weights, minlength=len(labels))
    return {label: float(sums[i]) for i, label in enumerate(labels)}


def categories_us(table: KernelTable) -> dict[str, float]:
    return _sum_by(table.category, table.dur_us, CATEGORIES)


def bound_us(table: KernelTable, costs: KernelCosts) -> dict[str, float]:
    return _sum_by(costs.bound, table.dur_us, BOUNDS)


def bound_by_category_us(table: KernelTable, costs: KernelCosts) -> dict[str, dict]:
    dur_us = table.dur_us
    out = {}
    for c, name in enumerate(CATEGORIES):
        mine = table.category == c
        out[name] = _sum_by(costs.bound[mine], dur_us[mine], BOUNDS)
    return out


def blocks_us(table: KernelTable) -> dict[str, dict[str, float]]:
    """Kernel time by block and category. In a pipeline trace (more than one model) a block is
    named under its model, ``Decoder_0/UpDecoderBlock2D_2``: module paths leave the model out,
    and the VAE's blocks would otherwise sit beside the text encoder's as if one model's."""
    dur_us = table.dur_us
    models = table.tree.model_names
    several = len(set(models.values()) - {""}) > 1
    block_cache: dict[int, str] = {}
    out: dict[str, dict[str, float]] = {}
    for k, scope in enumerate(table.scope_node.tolist()):
        block = block_cache.get(scope)
        if block is None:
            block = block_of(table.scope_of_node(scope))
            model = models.get(scope, "") if several else ""
            block = block_cache[scope] = f"{model}/{block}" if model else block
        row = out.get(block)
        if row is None:
            row = out[block] = {c: 0.0 for c in CATEGORIES}
        row[CATEGORIES[table.category[k]]] += float(dur_us[k])
    return out


def models_us(table: KernelTable) -> dict[str, float]:
    """Kernel time per model of a pipeline trace (text encoders, denoiser, VAE): the outermost
    nn.Module frame around each kernel's launch (spans.SpanTree.model_names). Empty when the
    trace names no models (no with_modules frames, or record_function scopes of one model)."""
    names = table.tree.model_names
    if not names:
        return {}
    dur_us = table.dur_us
    out: dict[str, float] = {}
    for scope, us in zip(table.scope_node.tolist(), dur_us.tolist()):
        model = names.get(scope, "") if scope >= 0 else ""
        key = model or OUTSIDE_MODELS
        out[key] = out.get(key, 0.0) + us
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


OUTSIDE_MODELS = "(outside models)"


def top_kernels(table: KernelTable, costs: KernelCosts) -> list[dict]:
    gpu = table.trace.gpu
    dur_us = table.dur_us
    ids, inverse = np.unique(gpu.name_id, return_inverse=True)
    total = np.bincount(inverse, weights=dur_us)
    count = np.bincount(inverse)
    flops = np.bincount(inverse, weights=costs.flops)
    hbm = np.bincount(inverse, weights=costs.hbm_bytes)
    rows = []
    for i in np.argsort(-total)[:TOP_KERNELS].tolist():
        mine = inverse == i
        by_bound = np.bincount(costs.bound[mine], weights=dur_us[mine], minlength=len(BOUNDS))
        by_cat = np.bincount(table.category[mine], weights=dur_us[mine],
                             minlength=len(CATEGORIES))
        seconds = total[i] / 1e6
        rows.append({
            "name": table.trace.names[ids[i]],
            "category": CATEGORIES[int(np.argmax(by_cat))],
            "count": int(count[i]),
            "total_us": float(total[i]),
            "mean_us": float(total[i] / count[i]),
            "flops_estimate": float(flops[i]),
            "hbm_bytes_estimate": float(hbm[i]),
            "bound": BOUNDS[int(np.argmax(by_bound))],
            "achieved_tflops": float(flops[i] / seconds / 1e12) if seconds > 0 else 0.0,
            "achieved_gbps": float(hbm[i] / seconds / 1e9) if seconds > 0 else 0.0,
        })
    return rows


def roofline_points(table: KernelTable, costs: KernelCosts) -> list[dict]:
    """One point per (op, shapes, category of its main kernel): summed over instances."""
    groups: dict[tuple, dict] = defaultdict(lambda: {"count": 0, "time_us": 0.0, "flops": 0.0,
                                                     "bytes": 0.0, "roofline_us": 0.0,
                                                     "bound_us": defaultdict(float)})
    for p in costs.points:
        category = CATEGORIES[table.category[p.main_kernel]]
        g = groups[(p.op, p.shapes, category)]
        g["count"] += 1
        g["time_us"] += p.time_us
        g["flops"] += p.cost.flops
        g["bytes"] += p.cost.bytes
        g["engine"], g["dtype"], g["formula"] = p.cost.engine, p.cost.dtype, p.cost.formula
        if p.point is not None:
            g["roofline_us"] += p.point.roofline_us
            g["bound_us"][p.point.bound] += p.time_us
    out = []
    for (op, shapes, category), g in sorted(groups.items(), key=lambda kv: -kv[1]["time_us"]):
        judged = bool(g["bound_us"])
        out.append({
            "op": op, "shapes": shapes, "category": category, "count": g["count"],
            "time_us": g["time_us"], "flops_estimate": g["flops"],
            "hbm_bytes_estimate": g["bytes"],
            "intensity": g["flops"] / g["bytes"] if g["bytes"] else None,
            "bound": max(g["bound_us"], key=g["bound_us"].get) if judged else "unknown",
            "attainment": g["roofline_us"] / g["time_us"] if judged and g["time_us"] else None,
            "roofline_us": g["roofline_us"] if judged else None,
            "engine": g["engine"], "dtype": g["dtype"], "formula": g["formula"],
        })
    return out

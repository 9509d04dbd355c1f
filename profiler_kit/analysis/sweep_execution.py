"""Eager and replayed worlds side by side in a sweep (``records.ExecutionPair``).

Why: an eager UNet step at 512 px is partly host-bound, so the eager speed-up of a fused
attention understates what it buys; under CUDA graphs (or torch.compile) the host is gone and
the step is kernel-bound. A sweep running both (``+sweep=standard`` does) shows, per resolution
and mode, the eager step, the replayed step and the speed-up over the reference in each world,
with the why of the replayed kernels (attention's share, memory-bound share), which the graph
join (analysis/graph_join.py) makes as complete as an eager profile's.

Pairs match rows of the same model, card, dtype, batch, resolution and mode whose executions
differ. The eager side is the eager job's row where the sweep has one; otherwise the replayed
job's own interleaved eager timing (its ``eager_step_median_ms``), without an eager profile.
"""

from __future__ import annotations

from profiler_kit import units as fmt
from profiler_kit.records import ExecutionPair, Finding, SweepJob, SweepRow


def _key(r: SweepRow) -> tuple:
    return (r.model, r.card, r.dtype, r.batch, r.resolution, r.mode)


def _group(r: SweepRow) -> str:
    return " · ".join(str(x) for x in (r.model or "?", r.card or "?", r.dtype or "?",
                                       f"batch {r.batch}" if r.batch else "batch ?"))


def _share(part: float | None, whole: float | None) -> float | None:
    return part / whole if part is not None and whole else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def execution_pairs(rows: list[SweepRow]) -> list[ExecutionPair]:
    ok = [r for r in rows if r.status == "ok" and r.step_median_ms]
    eager = {_key(r): r for r in ok if r.execution == "eager"}
    out = []
    for r in ok:
        if r.execution == "eager":
            continue
        e = eager.get(_key(r))
        eager_ms = e.step_median_ms if e else r.eager_step_median_ms
        out.append(ExecutionPair(
            group=_group(r), resolution=r.resolution, mode=r.mode, execution=r.execution,
            eager_job=e.job if e else None, replayed_job=r.job,
            eager_step_median_ms=eager_ms, replayed_step_median_ms=r.step_median_ms,
            replay_gain=_ratio(eager_ms, r.step_median_ms),
            eager_speedup=e.speedup if e else r.eager_speedup, replayed_speedup=r.speedup,
            replayed_kernel_ms_per_step=r.kernel_ms_per_step,
            replayed_attention_share=_share(r.attention_ms_per_step, r.kernel_ms_per_step),
            replayed_memory_bound_share=_share(r.memory_bound_ms_per_step, r.kernel_ms_per_step),
            replayed_unknown_bound_share=_share(r.unknown_bound_ms_per_step, r.kernel_ms_per_step),
            eager_host_ms_per_step=e.host_ms_per_step if e else None))
    return sorted(out, key=lambda p: (p.group, p.execution, p.resolution or 0, p.mode))


_WORLD = {"cuda_graphs": "CUDA-graph replay", "compile": "torch.compile"}


def execution_findings(jobs: list[SweepJob], pairs: list[ExecutionPair]) -> list[Finding]:
    """Per group and replayed world: the fastest mode's speed-up eagerly and replayed, by
    resolution, and the reference mode's attention share and memory-bound share replayed."""
    reference = {j.job: j.reference_mode for j in jobs}
    out = []
    for (group, world) in dict.fromkeys((p.group, p.execution) for p in pairs):
        mine = [p for p in pairs if p.group == group and p.execution == world]
        # per resolution, the fastest replayed mode other than the reference
        best: dict = {}
        for p in mine:
            if p.mode == reference.get(p.replayed_job) or p.replayed_speedup is None:
                continue
            if p.resolution not in best or p.replayed_speedup > best[p.resolution].replayed_speedup:
                best[p.resolution] = p
        fast = [best[r] for r in sorted(best, key=lambda r: r or 0)]
        if not fast:
            continue
        refs = {p.resolution: p for p in mine if p.mode == reference.get(p.replayed_job)}
        name = _WORLD.get(world, world)
        parts, figures = [], {}
        for p in fast:
            ref = refs.get(p.resolution)
            why = ""
            if ref is not None and ref.replayed_attention_share is not None:
                why = (f"; {ref.mode} attention {fmt.percent(ref.replayed_attention_share)} of "
                       f"replayed kernel time, {fmt.percent(ref.replayed_memory_bound_share)} "
                       "memory-bound")
            eager_text = fmt.speedup(p.eager_speedup) if p.eager_speedup else "–"
            parts.append(f"{p.resolution} px: {p.mode} {fmt.speedup(p.replayed_speedup)} replayed, "
                         f"{eager_text} eagerly{why}")
            figures[f"replayed_speedup_{p.resolution}px"] = p.replayed_speedup
            if p.eager_speedup:
                figures[f"eager_speedup_{p.resolution}px"] = p.eager_speedup
        top = max(fast, key=lambda p: p.replayed_speedup)
        out.append(Finding(
            rule="sweep_execution_worlds", level="key", subject=f"{group} · {world}",
            figures=figures,
            title=(f"{group}: {top.mode} is {fmt.speedup(top.replayed_speedup)} faster under {name} "
                   f"at {top.resolution} px"
                   + (f", {fmt.speedup(top.eager_speedup)} eagerly" if top.eager_speedup else "")),
            detail=("Speed-up over the reference mode, replayed and eager, by resolution: "
                    + "; ".join(parts) + ". The eager step hides part of the kernel gain behind "
                    "the host's launches; the replayed step is what the kernels give."),
            remedy=f"run the pipeline under {name} to get the replayed figure"))
    return out

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
from profiler_kit.records import PREDICTION_TOLERANCE, ExecutionPair, prediction_within, Finding, SweepJob, SweepRow


def _key(r: SweepRow) -> tuple:
    return (r.model, r.card, r.dtype, r.batch, r.resolution, r.mode)


def _group(r: SweepRow) -> str:
    return " · ".join(str(x) for x in (r.model or "?", r.card or "?", r.dtype or "?",
                                       f"batch {r.batch}" if r.batch else "batch ?"))


def _share(part: float | None, whole: float | None) -> float | None:
    return part / whole if part is not None and whole else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def execution_pairs(rows: list[SweepRow], reference: dict[str, str] | None = None) -> list[ExecutionPair]:
    """reference: job -> its reference mode (whose eager profile, re-timed with each mode's
    attention, predicts that mode's replayed step)."""
    reference = reference or {}
    ok = [r for r in rows if r.status == "ok" and r.step_median_ms]
    eager = {_key(r): r for r in ok if r.execution == "eager"}
    out = []
    for r in ok:
        if r.execution == "eager":
            continue
        e = eager.get(_key(r))
        eager_ms = e.step_median_ms if e else r.eager_step_median_ms
        ref_mode = reference.get(e.job) if e else None
        ref = eager.get((*_key(r)[:-1], ref_mode)) if ref_mode else None
        from_ref = (ref.what_if_ms.get(f"launches_free+attention_as:{r.mode}") if ref_mode != r.mode
                    else ref.what_if_ms.get("launches_free")) if ref is not None else None
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
            eager_host_ms_per_step=e.host_ms_per_step if e else None,
            predicted_replayed_ms=e.what_if_ms.get("launches_free") if e else None,
            predicted_from_reference_ms=from_ref, reference_mode=ref_mode))
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
                    + "; ".join(parts) + ". "
                    + ("The eager step hides part of the kernel gain behind the host's launches; "
                       if any(p.host_hides_gain for p in fast) else
                       "Eager and replayed speed-ups agree within the noise: the GPU sets the eager step; ")
                    + "the replayed step is what the kernels give."),
            remedy=f"run the pipeline under {name} to get the replayed figure"))
    return out


def prediction_findings(pairs: list[ExecutionPair]) -> list[Finding]:
    """Per group and replayed world: how close the eager profiles' what-ifs came to the replayed
    steps measured in the same sweep (the check the what-ifs are trusted on)."""
    out = []
    for (group, world) in dict.fromkeys((p.group, p.execution) for p in pairs):
        mine = [p for p in pairs if p.group == group and p.execution == world]
        checks = [(p, "own", p.prediction_error) for p in mine if p.prediction_error is not None]
        checks += [(p, "reference", p.reference_prediction_error) for p in mine
                   if p.reference_prediction_error is not None and p.mode != p.reference_mode]
        if not checks:
            continue
        worst = max(abs(e) for _, _, e in checks)
        within = prediction_within(worst)
        parts = [f"{p.resolution} px {p.mode}: "
                 + (f"launches free {fmt.duration_ms(p.predicted_replayed_ms)}" if kind == "own" else
                    f"{p.reference_mode} with its attention, launches free {fmt.duration_ms(p.predicted_from_reference_ms)}")
                 + f" against {fmt.duration_ms(p.replayed_step_median_ms)} ({e * 100:+.1f} %)"
                 for p, kind, e in checks]
        name = _WORLD.get(world, world)
        out.append(Finding(
            rule="what_if_checked", level="info" if within else "warn", subject=f"{group} · {world}",
            figures={"checks": float(len(checks)), "worst_error": worst,
                     "tolerance": PREDICTION_TOLERANCE},
            title=(f"{group}: the eager profiles' what-ifs predict the {name} steps within "
                   f"{fmt.percent(worst)} ({len(checks)} checks)" if within else
                   f"{group}: a what-if from the eager profiles missed the {name} step by "
                   f"{fmt.percent(worst)} (tolerance {fmt.percent(PREDICTION_TOLERANCE, 0)})"),
            detail=("Predicted from the eager profile's critical path, re-timed, against the step "
                    "measured replayed in the same sweep: " + "; ".join(parts) + "."),
            remedy=None if within else "read the what-ifs of this group as rough"))
    return out

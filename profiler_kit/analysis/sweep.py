"""The analysis of a sweep: many run summaries -> one records.Sweep (no torch, no files).

Rows are one job × mode, with the per-step figures each run's own analysis computed; the fits,
the OOM frontier and the findings judge those rows. A "group" is what stays fixed while the
resolution varies (model, card, dtype, batch), so a sweep over models or cards gives one curve
per group and no fit mixes two models.
"""

from __future__ import annotations

import math

import numpy as np

from profiler_kit import units as fmt
from profiler_kit.records import (AttentionFit, Finding, OomFrontier, Summary, Sweep, SweepJob, SweepRow)
from profiler_kit.analysis.sweep_execution import execution_findings, execution_pairs, prediction_findings

# A fit needs at least this many resolutions of one group (two points always fit exactly).
MIN_FIT_POINTS = 2
# "Pays off" needs the speed-up from the median AND from the fastest steps above 1 by more than
# this margin: on the lent H200 host-bound steps move by 20-40 % between runs, so a smaller
# margin on one noisy figure would call noise a gain.
PAYOFF_MARGIN = 0.05


def group_of(row: SweepRow | SweepJob) -> str:
    return " · ".join(str(x) for x in (row.model or "?", row.card or "?", row.dtype or "?",
                                       f"batch {row.batch}" if row.batch else "batch ?", row.execution))


def _tokens(summary: Summary) -> int | None:
    """The image tokens the run recorded (a transformer's are patches, not latent pixels), else
    the latent pixels of a run recorded before (the UNet's top-level tokens)."""
    if summary.run and summary.run.image_tokens:
        return int(summary.run.image_tokens)
    shape = summary.run.latent_shape if summary.run else None
    return int(shape[-1] * shape[-2]) if shape and len(shape) >= 2 else None


def job_record(job: str, summary: Summary, overrides: list[str], report: str | None) -> SweepJob:
    cfg = summary.config
    model = (cfg.get("model") or {}).get("name") if isinstance(cfg.get("model"), dict) else cfg.get("model")
    return SweepJob(job=job, status=summary.status, reason=summary.reason, overrides=overrides, model=model,
                    resolution=cfg.get("resolution"),
                    card=summary.card or ("CPU" if summary.run and summary.run.device == "cpu" else None),
                    dtype=summary.run.dtype if summary.run else cfg.get("dtype"),
                    batch=summary.run.batch if summary.run else None,
                    execution=summary.run.execution if summary.run else str(cfg.get("execution", "eager")),
                    reference_mode=summary.reference_mode, efficient_mode=summary.efficient_mode, report=report)


def mode_rows(job: SweepJob, summary: Summary) -> list[SweepRow]:
    rows = []
    for mode, rec in summary.modes.items():
        cmp = summary.comparison.get(mode)
        row = dict(job=job.job, model=job.model, resolution=job.resolution, card=job.card, dtype=job.dtype,
                   batch=job.batch, execution=job.execution, tokens=_tokens(summary), mode=mode,
                   status=rec.status, reason=rec.note, setup_s=rec.setup_s,
                   eager_step_median_ms=rec.eager_step_ms.median_ms if rec.eager_step_ms else None,
                   peak_allocated_bytes=rec.peak_allocated_bytes, oom_requested_bytes=rec.oom_requested_bytes)
        if rec.step_ms is not None:
            row.update(step_median_ms=rec.step_ms.median_ms, step_iqr_ms=rec.step_ms.iqr_ms,
                       step_min_ms=rec.step_ms.min_ms, noisy=rec.step_ms.noisy)
        if mode == summary.reference_mode and rec.ok:
            row.update(speedup=1.0, min_speedup=1.0,
                       kernel_speedup=1.0 if rec.analysis and rec.analysis.kernels.total_us else None)
        elif cmp is not None:
            row.update(speedup=cmp.speedup, min_speedup=cmp.min_speedup, kernel_speedup=cmp.kernel_speedup,
                       eager_speedup=cmp.eager_speedup)
        a = rec.analysis
        if a is not None and a.kernels.total_us:
            per_step = a.steps * 1e3
            row.update(kernel_ms_per_step=a.kernels.total_us / per_step,
                       attention_ms_per_step=a.attention.total_us / per_step,
                       hbm_bytes_estimate_per_step=a.hbm_bytes_estimate / a.steps,
                       **{f"{b}_bound_ms_per_step": a.bound_us.get(b, 0.0) / per_step
                          for b in ("compute", "memory", "latency", "unknown")})
            if rec.step_ms is not None:
                row["host_ms_per_step"] = max(0.0, rec.step_ms.median_ms - a.kernels.total_us / per_step)
            if a.critical_path is not None and a.critical_path.steps:
                row.update(path_ms_per_step=a.critical_path.length_us / 1e3,
                           what_if_ms={w.scenario: w.predicted_step_us / 1e3 for w in a.critical_path.what_if})
            m = a.measured
            if m is not None and m.conclusive and m.total is not None:      # the join's own verdict
                row.update(hbm_bytes_measured_per_call=m.total.hbm_bytes_measured, hbm_bytes_error=m.total.error,
                           attention_hbm_bytes_error=m.attention.error if m.attention is not None else None)
        rows.append(SweepRow(**row))
    return rows


def _loglog_fit(x: list[float], y: list[float]) -> tuple[float, float, float]:
    """(exponent, constant, r²) of y = constant · x^exponent."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    exponent, intercept = np.polyfit(lx, ly, 1)
    residual = ly - (exponent * lx + intercept)
    total = ((ly - ly.mean()) ** 2).sum()
    r2 = 1.0 - (residual ** 2).sum() / total if total > 0 else 1.0
    return float(exponent), float(math.exp(intercept)), float(r2)


def attention_fits(rows: list[SweepRow]) -> list[AttentionFit]:
    fits = []
    by_key: dict[tuple[str, str], list[SweepRow]] = {}
    for r in rows:
        if r.status == "ok" and r.tokens and r.attention_ms_per_step and r.kernel_ms_per_step:
            by_key.setdefault((group_of(r), r.mode), []).append(r)
    for (group, mode), rs in sorted(by_key.items()):
        tokens = sorted({r.tokens for r in rs})
        if len(tokens) < MIN_FIT_POINTS:
            continue
        x = [r.tokens for r in rs]
        exponent, constant, r2 = _loglog_fit(x, [r.attention_ms_per_step for r in rs])
        crossing, inside = None, False
        rest = [r.kernel_ms_per_step - r.attention_ms_per_step for r in rs]
        if all(v > 0 for v in rest):
            rest_exp, rest_const, _ = _loglog_fit(x, rest)
            if abs(exponent - rest_exp) > 1e-6:
                crossing = (rest_const / constant) ** (1.0 / (exponent - rest_exp))
                inside = tokens[0] <= crossing <= tokens[-1]
        fits.append(AttentionFit(group=group, mode=mode, points=len(rs), exponent=exponent, constant_ms=constant,
                                 r2=r2, crosses_rest_at_tokens=crossing, crossing_in_range=inside))
    return fits


def oom_frontier(rows: list[SweepRow]) -> list[OomFrontier]:
    out = []
    by_key: dict[tuple[str, str], list[SweepRow]] = {}
    for r in rows:
        by_key.setdefault((group_of(r), r.mode), []).append(r)
    for (group, mode), rs in sorted(by_key.items()):
        rs = sorted(rs, key=lambda r: r.resolution or 0)
        first = next((r for r in rs if r.status == "oom"), None)
        if first is None:
            continue
        ok = [r.resolution for r in rs if r.status == "ok" and (r.resolution or 0) < (first.resolution or 0)]
        out.append(OomFrontier(group=group, mode=mode, job=first.job, resolution=first.resolution,
                               requested_bytes=first.oom_requested_bytes, last_ok_resolution=max(ok) if ok else None))
    return out


# --------------------------------------------------------------------------------------------
# Findings of a sweep
# --------------------------------------------------------------------------------------------

def payoff(jobs: list[SweepJob], rows: list[SweepRow]) -> list[Finding]:
    """Per group: from which resolution the run's memory-efficient mode is faster than the
    reference by more than PAYOFF_MARGIN (median and fastest step alike), and how the gain grows."""
    out = []
    # a job whose reference is its efficient mode (modes=[xformers] reference_mode=xformers)
    # compared nothing: its 1.00x is the mode against itself, not a verdict
    efficient = {j.job: j.efficient_mode for j in jobs if j.efficient_mode != j.reference_mode}
    by_group: dict[str, list[SweepRow]] = {}
    for r in rows:
        if r.mode == efficient.get(r.job) and r.status == "ok" and r.speedup is not None:
            by_group.setdefault(group_of(r), []).append(r)
    for group, rs in sorted(by_group.items()):
        rs = sorted(rs, key=lambda r: r.resolution or 0)
        pays = [r for r in rs if r.speedup > 1 + PAYOFF_MARGIN and (r.min_speedup or 0) > 1 + PAYOFF_MARGIN]
        trend = ", ".join(f"{r.resolution} px {fmt.speedup(r.speedup)}"
                          + (f" (kernels {fmt.speedup(r.kernel_speedup)})" if r.kernel_speedup else "")
                          + (" noisy" if r.noisy else "") for r in rs)
        figures = {f"speedup_{r.resolution}px": r.speedup for r in rs}
        if pays:
            title = (f"{group}: {rs[0].mode} pays off from {pays[0].resolution} px "
                     f"({fmt.speedup(pays[0].speedup)} step speed-up)")
        else:
            title = f"{group}: no resolution where {rs[0].mode} is reliably faster than the reference"
        out.append(Finding(rule="sweep_payoff", level="key", subject=group, figures=figures, title=title,
                           detail=f"Step speed-up of {rs[0].mode} over the reference, by resolution: {trend}. "
                                  f"'Pays off' asks both the median and the fastest step to gain more than "
                                  f"{fmt.percent(PAYOFF_MARGIN, 0)}; kernel speed-ups are what the step would gain "
                                  "without host overhead."))
    return out


def frontier_findings(frontier: list[OomFrontier]) -> list[Finding]:
    return [Finding(rule="sweep_oom_frontier", level="key", subject=f"{f.group} · {f.mode}",
                    figures={"resolution": f.resolution or 0, **({"requested_bytes": f.requested_bytes}
                                                                 if f.requested_bytes else {})},
                    title=f"{f.mode} runs out of memory from {f.resolution} px ({f.group})",
                    detail=(f"First out-of-memory job: {f.job}"
                            + (f", asking for {fmt.bytes_binary(f.requested_bytes)}" if f.requested_bytes else "")
                            + (f"; it last ran at {f.last_ok_resolution} px" if f.last_ok_resolution else "") + "."),
                    remedy="a fused attention mode (the N×N scores are never stored)") for f in frontier]


def fit_findings(fits: list[AttentionFit]) -> list[Finding]:
    """One finding per group: each mode's exponent, and where unfused attention meets the rest."""
    out = []
    for group in dict.fromkeys(f.group for f in fits):
        mine = [f for f in fits if f.group == group]
        exps = ", ".join(f"{f.mode} N^{f.exponent:.2f}" for f in mine)
        crossings = [f for f in mine if f.crosses_rest_at_tokens and f.crossing_in_range]
        detail = (f"Attention kernel time per step against latent tokens N, least squares in log-log over "
                  f"{max(f.points for f in mine)} resolutions: {exps} (R² ≥ {min(f.r2 for f in mine):.3f}). Every "
                  "exact attention does O(N²) work, so each exponent approaches 2 as N grows (smaller: fixed costs "
                  "still count at small N); what differs between the modes is the constant.")
        if crossings:
            detail += " Attention takes over from the rest of the UNet's kernel time at about " + ", ".join(
                f"{f.crosses_rest_at_tokens:,.0f} tokens for {f.mode}" for f in crossings) + "."
        figures = {f"{f.mode}_exponent": f.exponent for f in mine}
        lo = min(mine, key=lambda f: f.exponent)
        hi = max(mine, key=lambda f: f.exponent)
        out.append(Finding(rule="sweep_attention_scaling", level="info", subject=group, figures=figures,
                           title=f"Attention time grows as N^{lo.exponent:.2f} ({lo.mode}) to N^{hi.exponent:.2f} "
                                 f"({hi.mode}) with the token count ({group})", detail=detail))
    return out


def failed_jobs(jobs: list[SweepJob]) -> list[Finding]:
    bad = [j for j in jobs if j.status != "complete"]
    if not bad:
        return []
    return [Finding(rule="sweep_failed_jobs", level="warn", subject=None, figures={"jobs": len(bad)},
                    title=f"{len(bad)} of {len(jobs)} jobs did not complete",
                    detail="; ".join(f"{j.job}: {j.status} ({j.reason or 'no reason recorded'})" for j in bad),
                    remedy="see each job's summary.json and profiler_kit.log")]


def analyze_sweep(runs: list[tuple[str, Summary | None, list[str], str | None, str | None]]) -> Sweep:
    """runs: (job folder, its summary or None if unreadable, overrides, report path, why unreadable)."""
    jobs, rows, warnings = [], [], []
    for job, summary, overrides, report, problem in runs:
        if summary is None:
            jobs.append(SweepJob(job=job, status="unreadable", reason=problem, overrides=overrides))
            continue
        record = job_record(job, summary, overrides, report)
        jobs.append(record)
        rows += mode_rows(record, summary)
        if summary.status == "complete" and not summary.analyzed:
            warnings.append(f"{job}: its traces were not analysed: python -m profiler_kit.analyze {job}")
    fits, frontier = attention_fits(rows), oom_frontier(rows)
    pairs = execution_pairs(rows, {j.job: j.reference_mode for j in jobs if j.reference_mode})
    findings = (failed_jobs(jobs) + payoff(jobs, rows) + execution_findings(jobs, pairs)
                + prediction_findings(pairs)
                + frontier_findings(frontier) + fit_findings(fits))
    return Sweep(jobs=jobs, rows=rows, attention_fits=fits, oom_frontier=frontier,
                 execution_pairs=pairs, findings=findings, warnings=warnings)

"""What the sweep report shows, laid out from records.Sweep (the report decides nothing)."""

from __future__ import annotations

from profiler_kit import units as fmt
from profiler_kit.records import Sweep, prediction_within

from . import sweep_figures
from .context import figure_divs


def sweep_context(sweep: Sweep) -> dict:
    figs = {"speedup": sweep_figures.speedup(sweep), "time": sweep_figures.step_and_kernel_time(sweep),
            "memory": sweep_figures.peak_memory(sweep), "bounds": sweep_figures.bound_shares(sweep),
            "scaling": sweep_figures.attention_scaling(sweep),
            "predicted": sweep_figures.predicted_vs_measured(sweep)}
    rows_by_job: dict[str, list[dict]] = {}
    for r in sweep.rows:
        rows_by_job.setdefault(r.job, []).append({
            **{f: getattr(r, f) for f in r.__struct_fields__}, "speedup_text": fmt.speedup(r.speedup),
            "bytes_error_text": (f"{r.hbm_bytes_error:+.1%}" + (f" (attention {r.attention_hbm_bytes_error:+.1%})"
                                 if r.attention_hbm_bytes_error is not None else ""))
            if r.hbm_bytes_error is not None else "–"})
    job_rows = [{"job": j.job, "report": j.report, "model": j.model, "resolution": j.resolution,
                 "status": j.status, "reason": j.reason, "overrides": j.overrides,
                 "rows": rows_by_job.get(j.job, [])} for j in sweep.jobs]
    models = sorted({j.model for j in sweep.jobs if j.model})
    resolutions = sorted({j.resolution for j in sweep.jobs if j.resolution})
    cards = sorted({j.card for j in sweep.jobs if j.card})
    warnings = list(sweep.warnings) + [f"{j.job}: {j.status}: {j.reason or 'no reason recorded'}"
                                       for j in sweep.jobs if j.status != "complete"]
    def _predicted(text: str, error: float | None) -> str:
        if error is None:
            return text
        return f"{text} ({error * 100:+.1f} %{'' if prediction_within(error) else ', off'})"

    def ms(v):
        return f"{v:.2f}" if v is not None else "–"

    pairs = [{"group": p.group, "execution": p.execution, "resolution": p.resolution, "mode": p.mode,
              "eager_ms": ms(p.eager_step_median_ms) + ("" if p.eager_job else " (run's own)"),
              "replayed_ms": ms(p.replayed_step_median_ms), "gain": fmt.speedup(p.replay_gain),
              "eager_speedup": fmt.speedup(p.eager_speedup), "replayed_speedup": fmt.speedup(p.replayed_speedup),
              "attention": fmt.percent(p.replayed_attention_share), "memory": fmt.percent(p.replayed_memory_bound_share),
              "unknown": fmt.percent(p.replayed_unknown_bound_share),
              "predicted": _predicted(ms(p.predicted_replayed_ms), p.prediction_error),
              "from_reference": (_predicted(ms(p.predicted_from_reference_ms), p.reference_prediction_error)
                                 + (f" ({p.reference_mode})" if p.predicted_from_reference_ms else ""))}
             for p in sweep.execution_pairs]
    return {"kind": "sweep", "pairs": pairs, "title": f"Sweep: {', '.join(models) or 'UNet'} on {', '.join(cards) or '?'}",
            "jobs": sweep.jobs, "complete": sum(j.status == "complete" for j in sweep.jobs),
            "models": models, "resolutions": resolutions, "cards": cards, "findings": sweep.findings,
            "figs": figure_divs(figs), "frontier": sweep.oom_frontier, "fits": sweep.attention_fits,
            "job_rows": job_rows, "warnings": warnings,
            "measured": any(r.hbm_bytes_error is not None for r in sweep.rows)}

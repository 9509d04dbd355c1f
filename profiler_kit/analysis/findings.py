"""The short list of verdicts at the top of a report, decided here, in the analysis.

Each finding judges figures the analysis computed, with the bounds and roofs it recorded (per
kernel bound, ``Analysis.roofs``, ``StepStats.noisy``); it is stored in analysis.json,
comparison.json and summary.json, so the report only narrates and other tools (the sweep
aggregator) read the same verdicts. Each states a figure that appears further down the same
report and, where there is one, the usual remedy. Thresholds are simple and named here, so a
reader can check why a finding fired.
"""

from __future__ import annotations

from profiler_kit import units as fmt
from profiler_kit.hardware.nsight import base_name
from profiler_kit.analysis.path_findings import path_findings
from profiler_kit.records import MIN_JOIN_COVERAGE, Analysis, Finding, ModeRecord, Summary

IDLE_SHARE_MIN = 0.15        # GPU idle share of the profiled window worth calling host-bound
LAYOUT_SHARE_MIN = 0.05      # layout-conversion share of kernel time worth naming
# Spilling kernels' share of the joined kernel time worth a finding: like the layout conversions,
# under 5 % of the step a better kernel could not buy back enough to act on.
SPILL_SHARE_MIN = 0.05
SOFTMAX_RANK_MAX = 3         # name the softmax when it is among this many largest kernels
# GPU kernels fill less of the measured step than this: the step is host-bound. Below 70 % the
# host's share (30 %+) is larger than any attention speed-up seen at small resolutions.
HOST_BOUND_GPU_SHARE = 0.7
UNFUSED_BACKENDS = ("vanilla", "math")   # attention that materialises the N×N scores
DEFAULT_SDPA_MODE = "sdpa"               # the mode in which PyTorch picks the SDPA backend


def _unfused_calls(a: Analysis):
    return [c for c in a.attention.calls_or_empty if c.backend in UNFUSED_BACKENDS]


def _attention_roof(a: Analysis):
    """The tensor roof the analysis judged the attention's matmuls against (most time first)."""
    if a.roofs is None:
        return None
    time: dict[tuple[str, str], float] = {}
    for p in a.roofline_points or []:
        if p.category == "attention" and p.engine == "tensor":
            time[(p.engine, p.dtype)] = time.get((p.engine, p.dtype), 0.0) + p.time_us
    return a.roofs.roof(*max(time, key=time.get)) if time else None


def memory_bound_attention(analyses: dict[str, Analysis], prefer: str | None = None) -> list[Finding]:
    """Unfused attention whose time the roofline judged mostly memory-bound; compared with the
    fused mode `prefer` (the run's memory-efficient mode), else the fused one moving fewest bytes."""
    fused_bytes = {label: a.attention.hbm_bytes_estimate for label, a in analyses.items()
                   if a.attention.calls_or_empty and not _unfused_calls(a) and a.attention.hbm_bytes_estimate}
    out = []
    for label, a in analyses.items():
        calls = _unfused_calls(a)
        t = sum(c.time_us for c in calls)
        f = sum(c.flops_estimate for c in calls)
        b = sum(c.hbm_bytes_estimate for c in calls)
        bound: dict[str, float] = {}
        for c in calls:
            for k, us in c.bound_us.items():
                bound[k] = bound.get(k, 0.0) + us
        if not (t and f and b and bound) or max(bound, key=bound.get) != "memory":
            continue
        memory_share = bound["memory"] / t
        roof = _attention_roof(a)
        detail = (f"The roofline judges {fmt.percent(memory_share)} of its unfused attention time memory-bound. "
                  f"Its attention calls do an estimated {fmt.flops(f)} on {fmt.bytes_decimal(b)} of HBM traffic, "
                  f"{f / b:.0f} FLOP/byte")
        if roof is not None:
            detail += (f", below the {roof.ridge_flops_per_byte:.0f} FLOP/byte where the {roof.label} roof "
                       f"({fmt.tflops_per_s(roof.peak_flops_per_s / 1e12)}) starts")
        detail += (". The N×N scores are written by one GEMM, read and written by the softmax and read "
                   "again by the next GEMM.")
        figures = {"attention_us": t, "flops_estimate": f, "hbm_bytes_estimate": b,
                   "memory_bound_fraction": memory_share}
        if roof is not None:
            figures["ridge_flops_per_byte"] = roof.ridge_flops_per_byte
        if fused_bytes:
            other = prefer if prefer in fused_bytes else min(fused_bytes, key=fused_bytes.get)
            detail += (f" The fused kernels of {other} move {fmt.percent(fused_bytes[other] / b)} of those "
                       "bytes (estimated).")
            figures["fused_hbm_bytes_estimate"] = fused_bytes[other]
        out.append(Finding(rule="memory_bound_attention", level="key", subject=label, figures=figures,
                           title=f"Attention in {label} is memory-bound: {fmt.duration_us(t)} of GPU time "
                                 f"at {f / b:.0f} FLOP/byte (estimated)", detail=detail))
    return out


def softmax_on_top(analyses: dict[str, Analysis]) -> list[Finding]:
    """The softmax among the largest kernels: one finding, for the mode where it weighs most."""
    hits = []
    for label, a in analyses.items():
        for rank, k in enumerate((a.top_kernels or [])[:SOFTMAX_RANK_MAX], start=1):
            if k.category == "softmax" or "softmax" in k.name.lower():
                hits.append((fmt.share(k.total_us, a.kernels.total_us) or 0.0, rank, label, k))
                break
    if not hits:
        return []
    share, rank, label, k = max(hits, key=lambda h: h[0])
    where = "the largest kernel" if rank == 1 else f"kernel #{rank} by time"
    others = [f"{m} (#{r})" for _, r, m, _ in hits if m != label]
    detail = (f"{fmt.short_kernel_name(k.name)}: {k.count} launches, {fmt.duration_us(k.total_us)} in the "
              "profiled window. It reads and writes the full N×N score matrix, which fused attention never stores.")
    if others:
        detail += " Also among the top kernels in " + ", ".join(others) + "."
    return [Finding(rule="softmax_on_top", level="key", subject=label,
                    figures={"kernel_us": k.total_us, "share_of_kernel_time": share, "rank": rank},
                    title=f"In {label}, the softmax is {where}: {fmt.percent(share)} of GPU kernel time",
                    detail=detail, remedy="use a fused attention mode (SDPA flash / memory-efficient, xformers)")]


def idle_gpu(analyses: dict[str, Analysis]) -> list[Finding]:
    """One finding for the most idle trace; the others' shares go in its detail. (Runs use
    host_bound_steps instead: the profiler's own overhead stretches the profiled window.)"""
    shares = {label: a.timeline.idle_us / a.timeline.window_us for label, a in analyses.items()
              if a.timeline.window_us and a.timeline.idle_us / a.timeline.window_us >= IDLE_SHARE_MIN}
    if not shares:
        return []
    label = max(shares, key=shares.get)
    tl = analyses[label].timeline
    launch = fmt.share(tl.idle_breakdown_us.get("host_launch"), tl.idle_us)
    detail = (f"In {label} the GPU ran kernels for {fmt.duration_us(tl.busy_us)} of a "
              f"{fmt.duration_us(tl.window_us)} window and waited for the host the rest")
    detail += f" ({fmt.percent(launch)} of it waiting for kernel launches)." if launch else "."
    others = [f"{m} {fmt.percent(v)}" for m, v in shares.items() if m != label]
    if others:
        detail += " Idle share elsewhere: " + ", ".join(others) + "."
    detail += (" A faster kernel shortens only the busy part of the step. The profiler slows the host"
               " too (shapes, memory, stacks), so this share is an upper bound: time the step unprofiled"
               " to size it.")
    return [Finding(rule="idle_gpu", level="warn", subject=label,
                    figures={"idle_us": tl.idle_us, "window_us": tl.window_us, "idle_fraction": shares[label]},
                    title=f"The GPU sits idle {fmt.percent(shares[label])} of the profiled time in {label}: "
                          "the step is partly host-bound", detail=detail,
                    remedy="capture the step in CUDA graphs, or torch.compile(mode=\"reduce-overhead\")")]


def layout_conversions(analyses: dict[str, Analysis]) -> list[Finding]:
    shares = {label: fmt.share(a.categories_us.get("layout"), a.kernels.total_us) for label, a in analyses.items()}
    shares = {k: v for k, v in shares.items() if v is not None and v >= LAYOUT_SHARE_MIN}
    if not shares:
        return []
    label = max(shares, key=shares.get)
    us = analyses[label].categories_us["layout"]
    return [Finding(rule="layout_conversions", level="warn", subject=label,
                    figures={"layout_us": us, "share_of_kernel_time": shares[label]},
                    title=f"Layout conversions (NCHW↔NHWC) take {fmt.percent(shares[label])} of GPU kernel time "
                          f"in {label}",
                    detail=f"{fmt.duration_us(us)} in the profiled window spent transposing activations around "
                           "cuDNN's NHWC convolution kernels: pure memory traffic with no arithmetic.",
                    remedy="keep the UNet and its inputs in channels_last "
                           "(model.to(memory_format=torch.channels_last))")]


def unexpected_fallback(label: str, analysis: Analysis) -> bool:
    """Some attention calls ran SDPA's math path, and the mode did not ask for it."""
    return analysis.attention.fallback and "math" not in label.lower()


def fallback_backends(analyses: dict[str, Analysis]) -> list[Finding]:
    out = []
    for label, a in analyses.items():
        if unexpected_fallback(label, a):
            out.append(Finding(rule="unexpected_fallback", level="warn", subject=label,
                               figures={"math_us": a.attention.backends.get("math", 0.0)},
                               title=f"{label} fell back to a slower attention backend",
                               detail="Some attention calls ran the math (unfused) path although a fused "
                                      "backend was requested; see the attention table for which.",
                               remedy="check head size / dtype / mask support of the requested backend"))
        elif a.attention.mixed:
            out.append(Finding(rule="mixed_backends", level="info", subject=label,
                               title=f"{label} ran more than one attention backend",
                               detail="Different attention layers used different kernels; see the attention table."))
    return out


def _error_text(check) -> str:
    return f"{check.label} {check.error:+.0%}" if check.error is not None else f"{check.label} (nothing measured)"


def estimate_vs_measured(analyses: dict[str, Analysis]) -> list[Finding]:
    """How far the cost model's byte estimates are from what Nsight Compute counted, for each
    trace joined to a measurement: the verdicts are MeasuredTraffic's / BytesCheck's own."""
    out = []
    for label, a in analyses.items():
        m = a.measured
        if m is None or m.total is None:
            continue
        figures = {"coverage": m.coverage, "joined_time_fraction": m.joined_time_fraction}
        if m.total.error is not None:     # NaN would be written as null, which figures cannot read back
            figures["total_error"] = m.total.error
        if m.attention is not None and m.attention.error is not None:
            figures["attention_error"] = m.attention.error
        head = (f"total {fmt.bytes_decimal(m.total.hbm_bytes_estimate)} estimated against "
                f"{fmt.bytes_decimal(m.total.hbm_bytes_measured)} measured ({m.total.error:+.1%})"
                if m.total.error is not None else "no bytes measured")
        if m.attention is not None and m.attention.error is not None:
            head += f", attention {m.attention.error:+.1%}"
        where = (f"{m.joined_kernels} of {m.trace_kernels} kernels joined "
                 f"({fmt.percent(m.joined_time_fraction)} of their time) to {m.measurement}")
        if not m.conclusive:
            if m.coverage < MIN_JOIN_COVERAGE:
                title = (f"Only {fmt.percent(m.coverage)} of {label}'s kernels joined the Nsight Compute "
                         "measurement: no verdict on the estimates")
            elif m.costed_time_fraction < MIN_JOIN_COVERAGE:
                title = (f"Only {fmt.percent(m.costed_time_fraction)} of {label}'s joined kernel time has byte "
                         "estimates (kernels replayed from a CUDA graph, or a trace without shapes): no verdict "
                         "on the estimates")
            else:
                title = (f"{m.shape_mismatches} of the {m.joined_kernels} kernels of {label} joined to the Nsight "
                         "Compute measurement ran with another grid or block: no verdict on the estimates")
            out.append(Finding(rule="measurement_join_incomplete", level="warn", subject=label, figures=figures,
                               title=title,
                               detail=f"{where}. The measurement may be of another call, model or configuration.",
                               remedy="measure the same call as the trace (measure=ncu does)"))
            continue
        misses = m.misses
        spills = ""
        if m.total.spilling_kernels:
            where_spilling = [c.label for c in m.by_category if c.spilling_kernels]
            spills = (f" {m.total.spilling_kernels} kernels ({', '.join(where_spilling)}) stored "
                      f"{fmt.bytes_decimal(m.total.local_store_bytes)} to local memory (register spills): "
                      "L2 traffic, left out of the measured bytes.")
        if not misses:
            out.append(Finding(rule="estimate_vs_measured", level="info", subject=label, figures=figures,
                               title=f"{label}: byte estimates hold against Nsight Compute ({head})",
                               detail=f"{where}; every kernel class above {fmt.percent(0.01, 0)} of GPU time is "
                                      f"within its tolerance.{spills}"))
            continue
        # kernels that provably rewrote L2 lines: named once, with the classes they fall in
        where_rewriting = [c.label for c in m.by_category if c.rewriting_kernels]
        why = (f" {m.total.rewriting_kernels} kernels ({', '.join(where_rewriting)}) wrote "
               f"{fmt.bytes_decimal(m.total.rewriting_written_bytes)} into L2, more than it holds, while little "
               "reached DRAM: they rewrote lines (register spills, in-place accumulation), so their counted "
               "writes overstate their HBM traffic." if any(g.rewriting_kernels for g in misses) else "")
        out.append(Finding(rule="estimate_vs_measured", level="warn", subject=label, figures=figures,
                           title=f"{label}: byte estimates miss Nsight Compute's count in "
                                 f"{', '.join(_error_text(g) for g in misses[:4])}",
                           detail=f"{head}; {where}. A miss means the cost model's traffic is not what "
                                  f"these kernels move (see 'Measured HBM traffic').{why}{spills}",
                           remedy="judge those kernels by their measured bytes (the measured bound column)"))
    return out


def register_spills(analyses: dict[str, Analysis]) -> list[Finding]:
    """Kernels that spill registers to local memory (MeasuredKernel.spilled, from Nsight
    Compute's local-store counter) and hold a real share of the GPU time: the spills are on-chip
    L2 traffic, not HBM, but cost the kernel time (on the H200, xformers' FlashAttention-2 kernel
    stores 74 MB a call at 4,096 tokens and takes 1.8x cuDNN's time on the same shape)."""
    out = []
    for label, a in analyses.items():
        m = a.measured
        if m is None or not m.kernels:
            continue
        joined_us = sum(k.dur_us for k in m.kernels)
        by_name: dict[str, list] = {}
        for k in m.kernels:
            if k.spilled:
                by_name.setdefault(base_name(k.name), []).append(k)
        spill_us = sum(k.dur_us for ks in by_name.values() for k in ks)
        share = fmt.share(spill_us, joined_us)
        if share is None or share < SPILL_SHARE_MIN:
            continue
        names = sorted(by_name, key=lambda n: -sum(k.dur_us for k in by_name[n]))
        stored = sum(k.local_store_bytes for ks in by_name.values() for k in ks)
        parts = [f"{n} ({fmt.plural(len(by_name[n]), 'call')}, {fmt.duration_us(sum(k.dur_us for k in by_name[n]))}, "
                 f"{fmt.bytes_decimal(sum(k.local_store_bytes for k in by_name[n]))} stored)" for n in names[:3]]
        out.append(Finding(
            rule="register_spills", level="warn", subject=label,
            figures={"spill_us": spill_us, "share_of_kernel_time": share, "local_store_bytes": stored,
                     "kernels": float(sum(len(ks) for ks in by_name.values()))},
            title=f"{label}: kernels that spill registers take {fmt.percent(share)} of GPU kernel time",
            detail=f"Nsight Compute counted {fmt.bytes_decimal(stored)} of stores to local memory in one call: "
                   + "; ".join(parts) + ". Spilled registers go to L2 and back (not HBM: they are left out of "
                   "the measured bytes) and stall the kernel while they do.",
            remedy="compare another attention backend on the same shapes (e.g. modes=[...,sdpa_cudnn]), or a "
                   "build of the kernel for this GPU's architecture"))
    return out


def trace_findings(analyses: dict[str, Analysis]) -> list[Finding]:
    """Findings of one or two traces of unknown origin (analysis.json, comparison.json)."""
    return (memory_bound_attention(analyses) + softmax_on_top(analyses) + idle_gpu(analyses)
            + layout_conversions(analyses) + fallback_backends(analyses) + estimate_vs_measured(analyses)
            + register_spills(analyses) + path_findings(analyses))


# --------------------------------------------------------------------------------------------
# Run findings: the timed modes of one experiment run
# --------------------------------------------------------------------------------------------

def host_bound_steps(summary: Summary) -> list[Finding]:
    """Measured step time against GPU kernel time per step: what the GPU does not fill is host
    overhead, which no attention kernel can remove."""
    rows = {m: (r.analysis.kernel_us_per_step / 1e3, r.step_ms.median_ms) for m, r in summary.ok_modes().items()
            if r.analysis is not None and r.step_ms is not None and r.step_ms.median_ms and r.analysis.kernels.total_us}
    if not rows:
        return []
    eff = summary.efficient_mode if summary.efficient_mode in rows else min(rows, key=lambda m: rows[m][0])
    kernel_ms, step_ms = rows[eff]
    if kernel_ms / step_ms >= HOST_BOUND_GPU_SHARE:
        return []
    detail = (f"GPU kernels take {fmt.duration_ms(kernel_ms)} of the {fmt.duration_ms(step_ms)} median step of "
              f"{eff} ({fmt.percent(kernel_ms / step_ms)}); the GPU waits on Python and kernel launches for the rest.")
    ref = summary.reference_mode
    figures = {"kernel_ms_per_step": kernel_ms, "step_median_ms": step_ms, "gpu_fraction": kernel_ms / step_ms}
    if ref in rows and ref != eff:
        rk, rs = rows[ref]
        detail += (f" Against {ref}, {eff} cuts GPU kernel time {fmt.speedup(rk / kernel_ms)} but the measured "
                   f"step {fmt.speedup(rs / step_ms)}.")
        figures.update(kernel_speedup=rk / kernel_ms, step_speedup=rs / step_ms)
    return [Finding(rule="host_bound_step", level="warn", subject=eff, figures=figures,
                    title=f"The step is host-bound: GPU kernels fill only {fmt.percent(kernel_ms / step_ms)} of "
                          f"the measured step in {eff}", detail=detail,
                    remedy="capture the UNet step in CUDA graphs, or torch.compile(mode=\"reduce-overhead\"), "
                           "to remove launch overhead that attention fusion cannot")]


def execution_gain(summary: Summary) -> list[Finding]:
    """Outside eager, each mode was also timed eagerly: what replay/compile buys per step, and
    which speed-up the run reports (the one of its own execution: the kernel-bound figure)."""
    execution = summary.run.execution if summary.run else "eager"
    if execution == "eager":
        return []
    name = fmt.EXECUTION_LABELS.get(execution, execution)
    rows = {m: r for m, r in summary.ok_modes().items() if r.step_ms and r.eager_step_ms}
    if not rows:
        return []
    parts, figures = [], {}
    for m, r in rows.items():
        kernel = r.analysis.kernel_us_per_step / 1e3 if r.analysis and r.analysis.kernels.total_us else None
        parts.append(f"{m}: eager {fmt.duration_ms(r.eager_step_ms.median_ms)}, {name} "
                     f"{fmt.duration_ms(r.step_ms.median_ms)}" + (f", GPU kernels {fmt.duration_ms(kernel)}" if kernel else ""))
        figures[f"{m}_eager_ms"] = r.eager_step_ms.median_ms
        figures[f"{m}_step_ms"] = r.step_ms.median_ms
    ref = summary.reference_mode
    # the run's memory-efficient mode, else (when it did not run) the compared mode that gains most
    eff = summary.efficient_mode if summary.efficient_mode in summary.comparison else max(
        summary.comparison, key=lambda m: summary.comparison[m].speedup, default=None)
    cmp = summary.comparison.get(eff or "")
    title = f"Under {name} the step is what the GPU does"
    if cmp is not None and cmp.eager_speedup:
        title = (f"{eff} over {ref}: {fmt.speedup(cmp.speedup)} under {name}, {fmt.speedup(cmp.eager_speedup)} "
                 + ("eagerly: the host hides part of the kernel speed-up in eager mode" if cmp.host_hides_gain
                    else "eagerly: the same within the noise: the GPU, not the host, sets the eager step"))
        figures.update(speedup=cmp.speedup, eager_speedup=cmp.eager_speedup)
    detail = ("Median steps, each mode timed in its execution and eagerly, interleaved: " + "; ".join(parts)
              + f". The speed-ups of this report are taken from the {name} steps: host overhead (Python, kernel "
              "launches) is gone from them, so they measure the kernels, as a deployed pipeline would run them.")
    return [Finding(rule="execution_gain", level="key", subject=eff, figures=figures, title=title, detail=detail)]


def noisy_timings(modes: dict[str, ModeRecord]) -> list[Finding]:
    """Reads StepStats.noisy, the one owner of the noise rule."""
    noisy = {m: r.step_ms.iqr_fraction for m, r in modes.items() if r.ok and r.step_ms and r.step_ms.noisy}
    if not noisy:
        return []
    worst = max(noisy, key=noisy.get)
    return [Finding(rule="noisy_timing", level="warn", subject=worst,
                    figures={f"{m}_iqr_fraction": v for m, v in noisy.items()},
                    title=f"Timings are noisy: step-time IQR up to {fmt.percent(noisy[worst])} of the median ({worst})",
                    detail="Noisy modes: " + ", ".join(f"{m} {fmt.percent(v)}" for m, v in noisy.items())
                           + ". Speed-ups smaller than that spread are not resolved; the minimum step times in the "
                           "timing table are the least disturbed figures.",
                    remedy="rerun on an otherwise idle machine (no other GPU jobs, fixed clocks)")]


def _main_backend(record: ModeRecord) -> str | None:
    used = {b: t for b, t in (record.analysis.attention.backends if record.analysis else {}).items() if t}
    return max(used, key=used.get) if used else None


def fastest_mode(modes: dict[str, ModeRecord], card: str, on_cpu: bool = False) -> list[Finding]:
    """Which attention mode gave the shortest measured step, against PyTorch's default SDPA.
    `card` names where it ran ("this CPU" for a CPU run, which records no GPU kernel to name)."""
    timed = {m: r for m, r in modes.items() if r.ok and r.step_ms and r.step_ms.median_ms}
    if len(timed) < 2:
        return []
    best = min(timed, key=lambda m: timed[m].step_ms.median_ms)
    best_ms = timed[best].step_ms.median_ms
    figures = {"best_median_ms": best_ms}
    if DEFAULT_SDPA_MODE in timed and DEFAULT_SDPA_MODE != best:
        d_ms = timed[DEFAULT_SDPA_MODE].step_ms.median_ms
        backend = _main_backend(timed[DEFAULT_SDPA_MODE])
        figures["default_sdpa_median_ms"] = d_ms
        title = (f"Fastest on {card}: {best} at {fmt.duration_ms(best_ms)} per step; PyTorch's default "
                 f"SDPA ({DEFAULT_SDPA_MODE}{', which picked ' + backend if backend else ''}) takes "
                 f"{fmt.duration_ms(d_ms)}, {fmt.percent(d_ms / best_ms - 1)} longer")
    elif DEFAULT_SDPA_MODE in timed:
        title = (f"PyTorch's default SDPA ({DEFAULT_SDPA_MODE}) was the fastest mode on {card}: "
                 f"{fmt.duration_ms(best_ms)} per step")
    else:
        title = f"Fastest on {card}: {best} at {fmt.duration_ms(best_ms)} per step"
    ranking = "; ".join(f"{m} {fmt.duration_ms(r.step_ms.median_ms)} (min {fmt.duration_ms(r.step_ms.min_ms)})"
                        for m, r in sorted(timed.items(), key=lambda kv: kv[1].step_ms.median_ms))
    kernels = timed[best].attention_kernels
    ran = (f"{best} ran {fmt.attention_kernel_names(kernels)}. " if kernels else
           f"{best}'s attention kernels are not known ({'a CPU run launches no GPU kernel' if on_cpu else 'no trace recorded them'}). ")
    detail = (f"{ran}"
              f"Median step of every mode, fastest first: {ranking}.")
    if any(r.step_ms.noisy for r in timed.values()):
        detail += " Some timings are noisy (see below): the ranking of close modes is not resolved."
    return [Finding(rule="fastest_mode", level="key", subject=best, figures=figures, title=title, detail=detail)]


def peak_memory(summary: Summary) -> list[Finding]:
    out = []
    modes, reference, efficient = summary.modes, summary.reference_mode, summary.efficient_mode
    ref, eff = modes.get(reference), modes.get(efficient or "")
    if ref is not None and eff is not None and ref.ok and eff.ok and ref.peak_allocated_bytes:
        r, e = ref.peak_allocated_bytes, eff.peak_allocated_bytes or 0
        detail = f"Peak allocated: {reference} {fmt.bytes_binary(r)}, {efficient} {fmt.bytes_binary(e)}."
        live = ref.analysis.memory.live_at_peak if ref.analysis else []
        if live:
            big = max(live, key=lambda x: x.bytes)
            detail += (f" At {reference}'s peak the largest live allocation came from {big.op} in "
                       f"{big.scope or 'no module'} ({fmt.bytes_binary(big.bytes)}).")
        out.append(Finding(rule="peak_memory", level="key", subject=efficient,
                           figures={"reference_peak_allocated_bytes": r, "peak_allocated_bytes": e},
                           title=f"{efficient} needs {fmt.bytes_binary(r - e)} less peak memory than {reference} "
                                 f"({fmt.percent(fmt.share(r - e, r))} saved)", detail=detail))
    for m, rec in modes.items():
        if rec.status == "oom":
            out.append(Finding(rule="out_of_memory", level="key", subject=m,
                               figures={"requested_bytes": rec.oom_requested_bytes} if rec.oom_requested_bytes else {},
                               title=f"{m} ran out of GPU memory", detail=rec.reason or "no reason recorded",
                               remedy="a fused attention mode, a smaller batch or resolution"))
    return out


def run_findings(summary: Summary) -> list[Finding]:
    """Findings of an experiment run. Idle time comes from the timed steps (host_bound_steps), not
    the trace: the profiler's own overhead stretches the profiled window."""
    analyses = summary.analyses()
    on_cpu = summary.run is not None and summary.run.device.startswith("cpu")
    where = summary.card or ("this CPU" if on_cpu else "this GPU")
    return (peak_memory(summary) + fastest_mode(summary.modes, where, on_cpu)
            + memory_bound_attention(analyses, summary.efficient_mode) + softmax_on_top(analyses)
            + execution_gain(summary) + host_bound_steps(summary) + layout_conversions(analyses)
            + fallback_backends(analyses) + estimate_vs_measured(analyses)
            + path_findings(analyses) + noisy_timings(summary.modes))

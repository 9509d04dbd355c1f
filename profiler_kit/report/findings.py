"""The short list of findings at the top of a report.

Each finding states a figure that appears further down the same report and, where there is one,
the usual remedy. Thresholds are deliberately simple and named here, so a reader can check why a
finding fired. Inputs are analysis dicts (docs/data-contracts.md) keyed by mode or trace label,
plus, for experiment runs, the per-mode records of summary.json.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import format as fmt
from .figures import steps_in

IDLE_SHARE_MIN = 0.15        # GPU idle share of the profiled window worth calling host-bound
LAYOUT_SHARE_MIN = 0.05      # layout-conversion share of kernel time worth naming
SOFTMAX_RANK_MAX = 3         # name the softmax when it is among this many largest kernels
VANILLA_BACKENDS = ("vanilla", "math")   # attention that materialises the N×N scores


@dataclass(frozen=True)
class Finding:
    title: str
    detail: str
    remedy: str | None = None
    level: str = "info"        # "key": a headline result; "warn": something to fix or distrust


def _kernel_total(a: dict) -> float:
    return (a.get("kernels") or {}).get("total_us") or sum((a.get("categories_us") or {}).values())


def _ridge(spec: dict | None) -> float | None:
    """FLOP/byte where the fp16 tensor roof meets the memory roof."""
    if not spec or not spec.get("memory_bandwidth_gbps") or not spec.get("fp16_tensor_tflops"):
        return None
    return spec["fp16_tensor_tflops"] * 1e12 / (spec["memory_bandwidth_gbps"] * 1e9)


def _attention_cost(a: dict, backends: tuple[str, ...] | None = None) -> tuple[float, float, float]:
    """(time µs, FLOPs, bytes) of the attention calls, optionally of some backends only."""
    t = f = b = 0.0
    for call in (a.get("attention") or {}).get("calls") or []:
        if backends is None or call.get("backend") in backends:
            t += call.get("time_us") or 0.0
            f += call.get("flops_estimate") or 0.0
            b += call.get("hbm_bytes_estimate") or 0.0
    return t, f, b


def memory_bound_attention(analyses: dict[str, dict], prefer: str | None = None) -> list[Finding]:
    """Unfused attention below the ridge point; compared with the fused mode `prefer` (the run's
    memory-efficient mode) or else the fused mode that moves the fewest bytes."""
    out = []
    fused = {label: _attention_cost(a) for label, a in analyses.items()
             if not any(c.get("backend") in VANILLA_BACKENDS
                        for c in (a.get("attention") or {}).get("calls") or [])}
    for label, a in analyses.items():
        t, f, b = _attention_cost(a, VANILLA_BACKENDS)
        ridge = _ridge(a.get("gpu_spec"))
        if not (t and f and b and ridge) or f / b >= ridge:
            continue
        detail = (f"Its attention calls do an estimated {fmt.flops(f)} on {fmt.bytes_decimal(b)} of HBM "
                  f"traffic: {f / b:.0f} FLOP/byte, below the {ridge:.0f} FLOP/byte where "
                  f"{a['gpu_spec'].get('name', 'this card')}'s fp16 tensor roof starts. The N×N scores are "
                  "written by one GEMM, read and written by the softmax and read again by the next GEMM.")
        fused_bytes = {other: fb for other, (_, _, fb) in fused.items() if fb}
        if fused_bytes:
            other = prefer if prefer in fused_bytes else min(fused_bytes, key=fused_bytes.get)
            fb = fused_bytes[other]
            detail += f" The fused kernels of {other} move {fmt.percent(fb / b)} of those bytes (estimated)."
        out.append(Finding(f"Attention in {label} is memory-bound: {fmt.duration_us(t)} of GPU time "
                           f"at {f / b:.0f} FLOP/byte (estimated)", detail, None, "key"))
    return out


def softmax_on_top(analyses: dict[str, dict]) -> list[Finding]:
    """The softmax among the largest kernels: one finding, for the mode where it weighs most."""
    hits = []
    for label, a in analyses.items():
        for rank, k in enumerate((a.get("top_kernels") or [])[:SOFTMAX_RANK_MAX], start=1):
            if k.get("category") == "softmax" or "softmax" in (k.get("name") or "").lower():
                hits.append((fmt.share(k.get("total_us"), _kernel_total(a)) or 0.0, rank, label, k))
                break
    if not hits:
        return []
    share, rank, label, k = max(hits, key=lambda h: h[0])
    where = "the largest kernel" if rank == 1 else f"kernel #{rank} by time"
    others = [f"{m} (#{r})" for _, r, m, _ in hits if m != label]
    detail = (f"{fmt.short_kernel_name(k.get('name'))}: {k.get('count', 0)} launches, "
              f"{fmt.duration_us(k.get('total_us'))} in the profiled window. It reads and writes the "
              "full N×N score matrix, which fused attention never stores.")
    if others:
        detail += " Also among the top kernels in " + ", ".join(others) + "."
    return [Finding(f"In {label}, the softmax is {where}: {fmt.percent(share)} of GPU kernel time",
                    detail, "use a fused attention mode (SDPA flash / memory-efficient, xformers)", "key")]


def idle_gpu(analyses: dict[str, dict]) -> list[Finding]:
    """One finding for the most idle mode or trace; the others' shares go in its detail."""
    shares = {}
    for label, a in analyses.items():
        tl = a.get("timeline") or {}
        share = fmt.share(tl.get("idle_us"), tl.get("window_us"))
        if share is not None and share >= IDLE_SHARE_MIN:
            shares[label] = share
    if not shares:
        return []
    label = max(shares, key=shares.get)
    tl = analyses[label]["timeline"]
    launch = fmt.share((tl.get("idle_breakdown_us") or {}).get("host_launch"), tl.get("idle_us"))
    detail = (f"In {label} the GPU ran kernels for {fmt.duration_us(tl.get('busy_us'))} of a "
              f"{fmt.duration_us(tl.get('window_us'))} window and waited for the host the rest")
    detail += f" ({fmt.percent(launch)} of it waiting for kernel launches)." if launch else "."
    others = [f"{m} {fmt.percent(v)}" for m, v in shares.items() if m != label]
    if others:
        detail += " Idle share elsewhere: " + ", ".join(others) + "."
    detail += (" A faster kernel shortens only the busy part of the step. The profiler slows the host"
               " too (shapes, memory, stacks), so this share is an upper bound: time the step unprofiled"
               " to size it.")
    return [Finding(f"The GPU sits idle {fmt.percent(shares[label])} of the profiled time in {label}: "
                    "the step is partly host-bound", detail,
                    "capture the step in CUDA graphs, or torch.compile(mode=\"reduce-overhead\")", "warn")]


HOST_BOUND_GPU_SHARE = 0.7   # GPU kernels fill less of the measured step than this: host-bound


def _kernel_ms_per_step(a: dict) -> float:
    return _kernel_total(a) / steps_in(a) / 1e3


def host_bound_steps(summary: dict) -> list[Finding]:
    """Measured step time against GPU kernel time per step: what the GPU does not fill is host
    overhead, which no attention kernel can remove."""
    modes = summary.get("modes") or {}
    rows = {m: (_kernel_ms_per_step(r["analysis"]), r["step_ms"]["median"]) for m, r in modes.items()
            if r.get("status") == "ok" and r.get("analysis") and (r.get("step_ms") or {}).get("median")
            and _kernel_total(r["analysis"])}
    if not rows:
        return []
    eff = summary.get("efficient_mode") if summary.get("efficient_mode") in rows else min(rows, key=lambda m: rows[m][0])
    kernel_ms, step_ms = rows[eff]
    if kernel_ms / step_ms >= HOST_BOUND_GPU_SHARE:
        return []
    detail = (f"GPU kernels take {fmt.duration_ms(kernel_ms)} of the {fmt.duration_ms(step_ms)} median step of "
              f"{eff} ({fmt.percent(kernel_ms / step_ms)}); the GPU waits on Python and kernel launches for the rest.")
    ref = summary.get("reference_mode")
    if ref in rows and ref != eff:
        rk, rs = rows[ref]
        detail += (f" Against {ref}, {eff} cuts GPU kernel time {fmt.speedup(rk / kernel_ms)} but the measured "
                   f"step {fmt.speedup(rs / step_ms)}.")
    return [Finding(f"The step is host-bound: GPU kernels fill only {fmt.percent(kernel_ms / step_ms)} of "
                    f"the measured step in {eff}", detail,
                    "capture the UNet step in CUDA graphs, or torch.compile(mode=\"reduce-overhead\"), "
                    "to remove launch overhead that attention fusion cannot", "warn")]


NOISY_IQR_SHARE = 0.05       # IQR above 5 % of the median: the timing cannot resolve small speed-ups


def is_noisy(step: dict | None) -> bool:
    """The capture's own flag, or an IQR above NOISY_IQR_SHARE of the median."""
    if not step or not step.get("median"):
        return False
    return bool(step.get("noisy")) or (step.get("iqr") or 0) / step["median"] > NOISY_IQR_SHARE


def noisy_timings(modes: dict[str, dict]) -> list[Finding]:
    noisy = {m: (r["step_ms"].get("iqr") or 0) / r["step_ms"]["median"] for m, r in modes.items()
             if r.get("status") == "ok" and is_noisy(r.get("step_ms"))}
    if not noisy:
        return []
    worst = max(noisy, key=noisy.get)
    return [Finding(f"Timings are noisy: step-time IQR up to {fmt.percent(noisy[worst])} of the median ({worst})",
                    "Noisy modes: " + ", ".join(f"{m} {fmt.percent(v)}" for m, v in noisy.items())
                    + ". Speed-ups smaller than that spread are not resolved; the minimum step times in the "
                    "timing table are the least disturbed figures.",
                    "rerun on an otherwise idle machine (no other GPU jobs, fixed clocks)", "warn")]


def layout_conversions(analyses: dict[str, dict]) -> list[Finding]:
    shares = {label: fmt.share((a.get("categories_us") or {}).get("layout"), _kernel_total(a))
              for label, a in analyses.items()}
    shares = {k: v for k, v in shares.items() if v is not None and v >= LAYOUT_SHARE_MIN}
    if not shares:
        return []
    label = max(shares, key=shares.get)
    us = analyses[label]["categories_us"]["layout"]
    return [Finding(f"Layout conversions (NCHW↔NHWC) take {fmt.percent(shares[label])} of GPU kernel time "
                    f"in {label}",
                    f"{fmt.duration_us(us)} in the profiled window spent transposing activations around "
                    "cuDNN's NHWC convolution kernels: pure memory traffic with no arithmetic.",
                    "keep the UNet and its inputs in channels_last "
                    "(model.to(memory_format=torch.channels_last))", "warn")]


def unexpected_fallback(label: str, analysis: dict) -> bool:
    """Some attention calls ran SDPA's math path, and the mode did not ask for it."""
    return bool((analysis.get("attention") or {}).get("fallback")) and "math" not in label.lower()


def fallback_backends(analyses: dict[str, dict]) -> list[Finding]:
    out = []
    for label, a in analyses.items():
        if unexpected_fallback(label, a):
            out.append(Finding(f"{label} fell back to a slower attention backend",
                               "Some attention calls ran the math (unfused) path although a fused "
                               "backend was requested; see the attention table for which.",
                               "check head size / dtype / mask support of the requested backend",
                               "warn"))
        elif (a.get("attention") or {}).get("mixed"):
            out.append(Finding(f"{label} ran more than one attention backend",
                               "Different attention layers used different kernels; see the attention table.",
                               None, "info"))
    return out


_ATTENTION_KERNEL_WORDS = ("flash", "fmha", "attention", "sdpa", "softmax", "attn", "cutlass")


def attention_kernel_names(names: list[str], limit: int = 4) -> str:
    """Short, de-duplicated names of the attention kernels in a mode's list (the list also holds
    the q/k/v projection GEMMs of the attention modules)."""
    short = list(dict.fromkeys(fmt.short_kernel_name(n) for n in names
                               if any(w in n.lower() for w in _ATTENTION_KERNEL_WORDS)))
    short = short or list(dict.fromkeys(fmt.short_kernel_name(n) for n in names))
    return ", ".join(short[:limit]) + (f" and {len(short) - limit} more" if len(short) > limit else "") or "not recorded"


def _main_backend(record: dict) -> str | None:
    backends = ((record.get("analysis") or {}).get("attention") or {}).get("backends") or {}
    used = {b: t for b, t in backends.items() if t}
    return max(used, key=used.get) if used else None


def fastest_mode(modes: dict[str, dict], card: str) -> list[Finding]:
    """Which attention mode gave the shortest measured step, against PyTorch's default SDPA."""
    timed = {m: r for m, r in modes.items() if r.get("status") == "ok" and (r.get("step_ms") or {}).get("median")}
    if len(timed) < 2:
        return []
    best = min(timed, key=lambda m: timed[m]["step_ms"]["median"])
    best_ms = timed[best]["step_ms"]["median"]
    default = next((m for m in ("sdpa", "sdpa_default") if m in timed), None)
    if default and default != best:
        d_ms = timed[default]["step_ms"]["median"]
        backend = _main_backend(timed[default])
        title = (f"Fastest on {card}: {best} at {fmt.duration_ms(best_ms)} per step; PyTorch's default "
                 f"SDPA ({default}{', which picked ' + backend if backend else ''}) takes "
                 f"{fmt.duration_ms(d_ms)}, {fmt.percent(d_ms / best_ms - 1)} longer")
    elif default:
        title = f"PyTorch's default SDPA ({default}) was the fastest mode on {card}: {fmt.duration_ms(best_ms)} per step"
    else:
        title = f"Fastest on {card}: {best} at {fmt.duration_ms(best_ms)} per step"
    ranking = "; ".join(f"{m} {fmt.duration_ms(r['step_ms']['median'])} (min {fmt.duration_ms(r['step_ms'].get('min'))})"
                        for m, r in sorted(timed.items(), key=lambda kv: kv[1]["step_ms"]["median"]))
    detail = (f"{best} ran {attention_kernel_names(timed[best].get('attention_kernels') or [])}. "
              f"Median step of every mode, fastest first: {ranking}.")
    return [Finding(title, detail, None, "key")]


def peak_memory(modes: dict[str, dict], reference: str | None, efficient: str | None) -> list[Finding]:
    out = []
    ref, eff = modes.get(reference or "") or {}, modes.get(efficient or "") or {}
    if ref.get("status") == "ok" and eff.get("status") == "ok" and ref.get("peak_allocated_bytes"):
        r, e = ref["peak_allocated_bytes"], eff.get("peak_allocated_bytes") or 0
        detail = f"Peak allocated: {reference} {fmt.bytes_binary(r)}, {efficient} {fmt.bytes_binary(e)}."
        live = ((ref.get("analysis") or {}).get("memory") or {}).get("live_at_peak") or []
        if live:
            big = max(live, key=lambda x: x.get("bytes") or 0)
            detail += (f" At {reference}'s peak the largest live allocation came from {big.get('op')} in "
                       f"{big.get('scope') or 'no module'} ({fmt.bytes_binary(big.get('bytes'))}).")
        out.append(Finding(f"{efficient} needs {fmt.bytes_binary(r - e)} less peak memory than {reference} "
                           f"({fmt.percent(fmt.share(r - e, r))} saved)", detail, None, "key"))
    for m, rec in modes.items():
        if rec.get("status") == "oom":
            out.append(Finding(f"{m} ran out of GPU memory", rec.get("reason") or "no reason recorded",
                               "a fused attention mode, a smaller batch or resolution", "key"))
    return out


def for_run(summary: dict, analyses: dict[str, dict]) -> list[Finding]:
    """Idle time comes from the timed runs here (host_bound_steps): the profiler's own overhead
    stretches the profiled window, so the trace's idle share would overstate it."""
    modes = summary.get("modes") or {}
    card = (summary.get("environment") or {}).get("gpu_name") or "this GPU"
    return (peak_memory(modes, summary.get("reference_mode"), summary.get("efficient_mode"))
            + fastest_mode(modes, card) + memory_bound_attention(analyses, summary.get("efficient_mode"))
            + softmax_on_top(analyses)
            + host_bound_steps(summary) + layout_conversions(analyses)
            + fallback_backends(analyses) + noisy_timings(modes))


def for_traces(analyses: dict[str, dict]) -> list[Finding]:
    return (memory_bound_attention(analyses) + softmax_on_top(analyses) + idle_gpu(analyses)
            + layout_conversions(analyses) + fallback_backends(analyses))

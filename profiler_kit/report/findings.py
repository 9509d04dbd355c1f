"""The short list of findings at the top of a report.

Each finding states a figure that appears further down the same report and, where there is one,
the usual remedy. Thresholds are deliberately simple and named here, so a reader can check why a
finding fired. Inputs are analysis dicts (docs/data-contracts.md) keyed by mode or trace label,
plus, for experiment runs, the per-mode records of summary.json.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import format as fmt

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


def memory_bound_attention(analyses: dict[str, dict]) -> list[Finding]:
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
        fused_bytes = [(other, fb) for other, (_, _, fb) in fused.items() if fb]
        if fused_bytes:
            other, fb = min(fused_bytes, key=lambda kv: kv[1])
            detail += f" The fused kernels of {other} move {fmt.percent(fb / b)} of those bytes (estimated)."
        out.append(Finding(f"Attention in {label} is memory-bound: {fmt.duration_us(t)} of GPU time "
                           f"at {f / b:.0f} FLOP/byte (estimated)", detail, None, "key"))
    return out


def softmax_on_top(analyses: dict[str, dict]) -> list[Finding]:
    out = []
    for label, a in analyses.items():
        top = (a.get("top_kernels") or [])[:SOFTMAX_RANK_MAX]
        for rank, k in enumerate(top, start=1):
            if k.get("category") == "softmax" or "softmax" in (k.get("name") or "").lower():
                where = "the largest kernel" if rank == 1 else f"kernel #{rank} by time"
                out.append(Finding(
                    f"In {label}, the softmax is {where}: {fmt.percent(fmt.share(k.get('total_us'), _kernel_total(a)))} "
                    f"of GPU kernel time",
                    f"{k.get('count', 0)} launches, {fmt.duration_us(k.get('total_us'))} in the profiled window; "
                    "it reads and writes the full N×N score matrix, which fused attention never stores.",
                    "use a fused attention mode (SDPA flash / memory-efficient, xformers)", "key"))
                break
    return out


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
    detail += " A faster kernel shortens only the busy part of the step."
    return [Finding(f"The GPU sits idle {fmt.percent(shares[label])} of the profiled time in {label}: "
                    "the step is partly host-bound", detail,
                    "capture the step in CUDA graphs, or torch.compile(mode=\"reduce-overhead\")", "warn")]


def step_vs_kernel(summary: dict) -> list[Finding]:
    """Kernel-time speed-up against measured step speed-up: the gap is host overhead."""
    modes = summary.get("modes") or {}
    ref, eff = summary.get("reference_mode"), summary.get("efficient_mode")
    recs = [modes.get(ref or "") or {}, modes.get(eff or "") or {}]
    if not all(r.get("status") == "ok" and r.get("analysis") and (r.get("step_ms") or {}).get("median")
               for r in recs):
        return []
    (r, e) = recs
    kr = _kernel_total(r["analysis"]) / max(1, len(r["analysis"].get("timeline", {}).get("steps") or []))
    ke = _kernel_total(e["analysis"]) / max(1, len(e["analysis"].get("timeline", {}).get("steps") or []))
    if not kr or not ke:
        return []
    kernel_x, step_x = kr / ke, r["step_ms"]["median"] / e["step_ms"]["median"]
    if kernel_x <= step_x * 1.05:
        return []
    return [Finding(f"{eff} cuts GPU kernel time {fmt.speedup(kernel_x)} but the measured step only "
                    f"{fmt.speedup(step_x)}",
                    f"Kernel time per profiled step: {ref} {fmt.duration_us(kr)}, {eff} {fmt.duration_us(ke)}; "
                    f"measured step: {fmt.duration_ms(r['step_ms']['median'])} and "
                    f"{fmt.duration_ms(e['step_ms']['median'])}. The difference is time the GPU waits on the host.",
                    "CUDA graphs or torch.compile remove launch overhead that attention fusion cannot", "warn")]


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


def fallback_backends(analyses: dict[str, dict]) -> list[Finding]:
    out = []
    for label, a in analyses.items():
        att = a.get("attention") or {}
        if att.get("fallback"):
            out.append(Finding(f"{label} fell back to a slower attention backend",
                               "Some attention calls ran the math (unfused) path although a fused "
                               "backend was requested; see the attention table for which.",
                               "check head size / dtype / mask support of the requested backend",
                               "warn"))
        elif att.get("mixed"):
            out.append(Finding(f"{label} ran more than one attention backend",
                               "Different attention layers used different kernels; see the attention table.",
                               None, "info"))
    return out


def fastest_mode(modes: dict[str, dict], card: str) -> list[Finding]:
    """Which attention mode gave the shortest measured step, against PyTorch's default SDPA."""
    timed = {m: r for m, r in modes.items() if r.get("status") == "ok" and (r.get("step_ms") or {}).get("median")}
    if len(timed) < 2:
        return []
    best = min(timed, key=lambda m: timed[m]["step_ms"]["median"])
    best_ms = timed[best]["step_ms"]["median"]
    kernels = ", ".join(timed[best].get("attention_kernels") or []) or "not recorded"
    default = next((m for m in ("sdpa", "sdpa_default") if m in timed), None)
    if default and default != best:
        d_ms = timed[default]["step_ms"]["median"]
        title = (f"Fastest on {card}: {best} at {fmt.duration_ms(best_ms)} per step; PyTorch's default "
                 f"SDPA ({default}) takes {fmt.duration_ms(d_ms)}, {fmt.percent(d_ms / best_ms - 1)} longer")
    elif default:
        title = f"PyTorch's default SDPA ({default}) was the fastest mode on {card}: {fmt.duration_ms(best_ms)} per step"
    else:
        title = f"Fastest on {card}: {best} at {fmt.duration_ms(best_ms)} per step"
    ranking = "; ".join(f"{m} {fmt.duration_ms(r['step_ms']['median'])}"
                        for m, r in sorted(timed.items(), key=lambda kv: kv[1]["step_ms"]["median"]))
    return [Finding(title, f"Kernel it ran: {kernels}. All modes, fastest first: {ranking}.", None, "key")]


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
    modes = summary.get("modes") or {}
    card = (summary.get("environment") or {}).get("gpu_name") or "this GPU"
    return (peak_memory(modes, summary.get("reference_mode"), summary.get("efficient_mode"))
            + fastest_mode(modes, card) + memory_bound_attention(analyses) + softmax_on_top(analyses)
            + step_vs_kernel(summary) + idle_gpu(analyses) + layout_conversions(analyses) + fallback_backends(analyses))


def for_traces(analyses: dict[str, dict]) -> list[Finding]:
    return (memory_bound_attention(analyses) + softmax_on_top(analyses) + idle_gpu(analyses)
            + layout_conversions(analyses) + fallback_backends(analyses))

"""Findings from the critical path and the step checks (issue 22): what the step waited on, the
what-ifs that follow, and the profiling guide's checks when they fire.

Judged here from figures the analysis stored (records.CriticalPath); the report narrates them.
"""

from __future__ import annotations

from profiler_kit import units as fmt
from profiler_kit.records import Analysis, Finding

# The path is host-bound when host work and launches hold at least half of it: then a faster
# kernel mostly lengthens the GPU's wait (SD 1.5 512 px eager, profiled: 99.9 % host).
HOST_PATH_SHARE = 0.5
# A GPU-gap finding is a warning once the gaps of at least GAP_MIN_US hold this share of the path.
GAP_PATH_SHARE = 0.10
# Launch latency: the p99 of SD 1.5 / SDXL eager traces on the H200 is 2.4-2.5x the median
# (8.5-24 µs); four times means some launches waited on something else (a full launch queue,
# page faults, another thread).
LATENCY_TAIL_FACTOR = 4.0
# Memory: a steady-state denoising step frees what it allocates (the 12-step SD 1.5 H200 trace:
# 0 bytes in every step); growing by this much in every one of two or more steps is held memory.
MEMORY_GROWTH_MIN_BYTES = 1 << 20
# Kernels per step of two traces differ enough to name (fusion by torch.compile, a fused attention).
KERNEL_COUNT_CHANGE = 0.10


def _paths(analyses: dict[str, Analysis]) -> dict:
    return {m: a.critical_path for m, a in analyses.items() if a.critical_path is not None and a.critical_path.steps}


def _mean_part(cp, part: str) -> float:
    return sum(s.breakdown_us.get(part, 0.0) for s in cp.steps) / len(cp.steps)


def host_bound_path(analyses: dict[str, Analysis]) -> list[Finding]:
    """The trace whose path is most host work, with its top host ops and what the what-ifs buy."""
    shares = {}
    for m, cp in _paths(analyses).items():
        length = cp.length_us
        if length and (_mean_part(cp, "cpu") + _mean_part(cp, "launch")) / length >= HOST_PATH_SHARE:
            shares[m] = (_mean_part(cp, "cpu") + _mean_part(cp, "launch")) / length
    if not shares:
        return []
    label = max(shares, key=shares.get)
    cp = _paths(analyses)[label]
    first = cp.steps[0]
    top = [f"{k} {fmt.duration_us(v)}" for k, v in sorted(first.cpu_by_name_us.items(), key=lambda kv: -kv[1])
           if k != "(other)"][:3]
    whatifs = {w.scenario: w for w in cp.what_if}
    figures = {"path_us": cp.length_us, "host_fraction": shares[label],
               "launch_us": _mean_part(cp, "launch"), "cpu_us": _mean_part(cp, "cpu")}
    detail = (f"Of the {fmt.duration_us(cp.length_us)} path of {label}'s step, host work takes "
              f"{fmt.duration_us(_mean_part(cp, 'cpu'))} and launch overhead {fmt.duration_us(_mean_part(cp, 'launch'))}"
              + (f"; the largest host ops on it: {', '.join(top)}" if top else "") + ".")
    x2, free = whatifs.get("attention_x2"), whatifs.get("launches_free")
    if x2 is not None:
        detail += (f" Attention kernels 2x faster would save {fmt.duration_us(x2.baseline_step_us - x2.predicted_step_us)}"
                   " of the step (re-timed on the path).")
        figures["attention_x2_saved_us"] = x2.baseline_step_us - x2.predicted_step_us
    if free is not None:
        detail += f" With every launch free (CUDA graphs) the step would take {fmt.duration_us(free.predicted_step_us)} (estimate)."
        figures["launches_free_us"] = free.predicted_step_us
    others = [f"{m} {fmt.percent(v)}" for m, v in shares.items() if m != label]
    if others:
        detail += " Host share of the path elsewhere: " + ", ".join(others) + "."
    detail += " Host times are as profiled: the profiler slows the host, so the share is an upper bound."
    return [Finding(rule="host_bound_path", level="warn", subject=label, figures=figures,
                    title=f"{fmt.percent(shares[label])} of {label}'s critical path is host work and launches",
                    detail=detail,
                    remedy="capture the step in CUDA graphs, or torch.compile(mode=\"reduce-overhead\")")]


def host_syncs(analyses: dict[str, Analysis]) -> list[Finding]:
    """Blocking calls in the middle of a step (more launches follow): each stalls the pipeline."""
    out = []
    for m, cp in _paths(analyses).items():
        stalls = [s for s in (cp.checks.syncs if cp.checks else []) if s.mid_step]
        if not stalls:
            continue
        count = sum(s.mid_step for s in stalls)
        causes = [f"{s.call}" + (f" under {s.op}" if s.op else "") + (f" in {s.frame}" if s.frame else "")
                  + f" ×{s.count} ({fmt.duration_us(s.total_us)})" for s in stalls[:3]]
        on_path = _mean_part(cp, "sync")
        out.append(Finding(rule="host_sync", level="warn", subject=m,
                           figures={"mid_step_syncs": float(count), "sync_on_path_us": on_path,
                                    "sync_host_us": float(sum(s.total_us for s in stalls))},
                           title=f"{count} host sync{'s' if count > 1 else ''} in the middle of {m}'s steps",
                           detail=("The host waits for the GPU, then launches more work: the GPU then "
                                   "idles while the host catches up. " + "; ".join(causes)
                                   + f". On the critical path: {fmt.duration_us(on_path)} of sync wait per step."),
                           remedy="keep values on the GPU inside the step (no .item(), .cpu(), .tolist(), "
                                  "printing a tensor or a data-dependent shape)"))
    return out


def gpu_gaps(analyses: dict[str, Analysis]) -> list[Finding]:
    """One finding for the trace whose gaps hold most of its path; the others' shares in its
    detail (a run's seven modes would otherwise say the same thing seven times)."""
    shares = {m: cp.checks.gap_total_us / len(cp.steps) / cp.length_us
              for m, cp in _paths(analyses).items() if cp.checks is not None and cp.checks.gap_count and cp.length_us}
    if not shares:
        return []
    m = max(shares, key=shares.get)
    cp = _paths(analyses)[m]
    c, share = cp.checks, shares[m]
    longest = c.gaps[0]
    beside = ", ".join(f"{fmt.duration_us(g.dur_us)} beside {g.host or 'no op'}" for g in c.gaps[:3])
    others = [f"{k} {fmt.percent(v)}" for k, v in shares.items() if k != m]
    return [Finding(rule="gpu_gaps", level="warn" if share >= GAP_PATH_SHARE else "info", subject=m,
                    figures={"gaps": float(c.gap_count), "gap_total_us": c.gap_total_us,
                             "gap_min_us": c.gap_min_us, "longest_us": longest.dur_us,
                             "path_fraction": share},
                    title=(f"{c.gap_count:,} GPU gap{'s' if c.gap_count > 1 else ''} of {fmt.duration_us(c.gap_min_us)} "
                           f"or more in {m} ({fmt.percent(share)} of the path), the longest {fmt.duration_us(longest.dur_us)}"),
                    detail=("No kernel ran on any stream while the host did this: " + beside + "."
                            + (" Gaps' share of the path elsewhere: " + ", ".join(others) + "." if others else "")),
                    remedy="look at the host op beside the longest gaps (Python work, a copy, an allocation)")]


def launch_latency(analyses: dict[str, Analysis]) -> list[Finding]:
    out = []
    for m, cp in _paths(analyses).items():
        lat = cp.checks.launch_latency_us if cp.checks else {}
        if not lat or not lat.get("p50") or lat.get("p99", 0.0) < LATENCY_TAIL_FACTOR * lat["p50"]:
            continue
        out.append(Finding(rule="launch_latency_tail", level="info", subject=m, figures=dict(lat),
                           title=(f"Launch latency in {m} has a long tail: p99 {fmt.duration_us(lat['p99'])} "
                                  f"against a median of {fmt.duration_us(lat['p50'])}"),
                           detail=(f"From the launch call's start to the kernel's start, over "
                                   f"{cp.checks.launches_measured:,} launches onto an idle stream: p10 "
                                   f"{fmt.duration_us(lat.get('p10'))}, p90 {fmt.duration_us(lat.get('p90'))}."),
                           remedy="CUDA graphs launch the whole step at once"))
    return out


def kernels_per_step(analyses: dict[str, Analysis]) -> list[Finding]:
    counts = {m: sum(cp.checks.kernels_per_step) / len(cp.checks.kernels_per_step)
              for m, cp in _paths(analyses).items() if cp.checks and cp.checks.kernels_per_step}
    if len(counts) < 2:
        return []
    most, least = max(counts, key=counts.get), min(counts, key=counts.get)
    if not counts[most] or (counts[most] - counts[least]) / counts[most] < KERNEL_COUNT_CHANGE:
        return []
    return [Finding(rule="kernels_per_step", level="info", subject=least,
                    figures={f"kernels_per_step_{m}": v for m, v in counts.items()},
                    title=f"{least} runs {counts[least]:,.0f} kernels per step against {most}'s {counts[most]:,.0f}",
                    detail="Kernels per profiled step: " + ", ".join(f"{m} {v:,.0f}" for m, v in counts.items())
                           + ". Every kernel is a launch in an eager step; fewer kernels, less host work.")]


def memory_growth(analyses: dict[str, Analysis]) -> list[Finding]:
    out = []
    for m, cp in _paths(analyses).items():
        growth = cp.checks.memory_growth_bytes if cp.checks else None
        if not growth or len(growth) < 2 or min(growth) < MEMORY_GROWTH_MIN_BYTES:
            continue
        out.append(Finding(rule="memory_growth", level="warn", subject=m,
                           figures={"growth_total_bytes": float(sum(growth)), "steps": float(len(growth)),
                                    "growth_min_bytes": float(min(growth))},
                           title=f"GPU memory grows in every step of {m}: {fmt.bytes_binary(sum(growth))} over {len(growth)} steps",
                           detail="Allocated at each step's end less at its start: "
                                  + ", ".join(fmt.bytes_binary(g) for g in growth) + ".",
                           remedy="look for tensors kept across steps (a list of outputs, a cache, autograd history)"))
    return out


def path_findings(analyses: dict[str, Analysis]) -> list[Finding]:
    return (host_bound_path(analyses) + host_syncs(analyses) + gpu_gaps(analyses) + launch_latency(analyses)
            + kernels_per_step(analyses) + memory_growth(analyses))

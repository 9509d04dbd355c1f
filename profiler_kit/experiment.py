"""One experiment run: build the UNet, then for each attention mode check its output against the
reference, time it, measure its peak memory and record a trace; write summary.json, analyze the
traces (through the same analyzer that reads anyone's trace) and render the report.

A mode that cannot run (unavailable, out of memory, an error) is recorded with its reason and the
next mode still runs.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import torch
from omegaconf import OmegaConf

from profiler_kit import attention_modes, capture, environment, models
from profiler_kit.config import ATTENTION_MODES
from profiler_kit.run_analysis import finish_run
from profiler_kit.run_folder import SCHEMA_VERSION, reproduce_command, write_json_atomic

log = logging.getLogger("profiler_kit")

# (warm-up, timed iterations) when left null. On a GPU the eager step is partly host-bound, so
# warm-up also settles the CPU side (allocator, cuDNN/cuBLAS heuristics, Python caches).
AUTO_COUNTS = {"cuda": (10, 20), "cpu": (1, 3)}
TIMING_BLOCK = 5          # timed denoising steps per mode per round of the interleaved timing


@dataclass
class _Run:
    """What every mode of one run shares."""
    cfg: Any
    unet: Any
    inputs: Dict[str, Any]
    device: torch.device
    dtype: torch.dtype
    checks: Dict[str, attention_modes.ModeCheck]
    warmup: int
    iterations: int
    run_dir: str
    weights_bytes: int
    warnings: List[str]

    @property
    def block(self) -> int:
        return min(TIMING_BLOCK, self.iterations)


def _gpu_spec(cfg: Any, hydra_cfg: Any, env: Dict[str, Any], warnings: list) -> Optional[Dict[str, Any]]:
    """The spec named by +gpu=NAME, else matched from the device name; a mismatch is kept."""
    from profiler_kit import specs

    chosen = hydra_cfg.runtime.choices.get("gpu") if hydra_cfg is not None else None
    device_name = env.get("gpu_name")
    matched = specs.match_spec(device_name) if device_name else None
    if chosen:
        spec, source = specs.load_spec(chosen), "config"
    elif matched is not None:
        spec, source = matched, "device_name"
    else:
        if device_name:
            warnings.append(f"no GPU spec matches '{device_name}': pass +gpu=NAME for roofline figures")
        return None
    record = spec.to_dict()
    record["matched_from"] = source
    record["mismatch"] = None
    if source == "config" and device_name and (matched is None or matched.key != spec.key):
        record["mismatch"] = (f"+gpu={chosen} ({spec.name}) but the device is '{device_name}': "
                              "roofline figures use the configured spec")
        warnings.append(record["mismatch"])
        log.warning(record["mismatch"])
    return record


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _prepare_mode(mode: str, run: "_Run", reference_out: Optional[torch.Tensor]) -> tuple[dict, Any]:
    """Correctness, warm-up, peak memory and the profiled calls of one mode (timing comes later,
    interleaved with the other modes)."""
    cfg, unet, inputs, device = run.cfg, run.unet, run.inputs, run.device
    record: Dict[str, Any] = {"status": "ok", "reason": None, "description": ATTENTION_MODES[mode]}
    meter = capture.PeakMemory(device)
    meter.reset()
    with attention_modes.attention_mode(unet, mode), torch.inference_mode():
        out = unet(**inputs, return_dict=False)[0]          # first call: warm-up and correctness
        capture.synchronize(device)
        out_copy = out.float().clone()
        if reference_out is not None:
            err = capture.rel_l2_error(out_copy, reference_out)
            tol = capture.output_tolerance(run.dtype)
            record.update(output_rel_error=err, output_tolerance=tol, output_match=bool(err <= tol))
            if err > tol:
                run.warnings.append(f"{mode}: output differs from {cfg.reference_mode} "
                                       f"(relative L2 error {err:.2e} > tolerance {tol:.0e})")
        else:
            record.update(output_rel_error=0.0, output_tolerance=None, output_match=True)
        del out
        for _ in range(max(0, run.warmup - 1)):
            unet(**inputs, return_dict=False)
        # One untimed step of the denoising loop: warms the scheduler and guidance path, and the
        # peak memory then covers everything a timed step allocates (every step allocates alike).
        capture.timed_denoising_loop(unet, inputs, capture.make_scheduler(cfg.scheduler),
                                     1, cfg.guidance, device)
        record["peak_allocated_bytes"], record["peak_reserved_bytes"] = meter.read()
        record["weights_bytes"] = run.weights_bytes
        record["trace"] = None
        if cfg.profiler.enabled:
            name = f"trace_{mode}.json.gz"
            capture.profile_calls(lambda: unet(**inputs, return_dict=False), unet, cfg.profiler.steps,
                                  os.path.join(run.run_dir, name), cfg.profiler, device)
            record["trace"] = name
    return record, out_copy


def _failure(mode: str, exc: BaseException, run: "_Run") -> dict:
    """The record of a mode that raised: out of memory is a result, anything else an error."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        reason, asked = capture.oom_reason(exc)
        log.warning("%s: out of memory: %s", mode, reason)
        return {"status": "oom", "reason": reason, "oom_requested": asked, "description": ATTENTION_MODES[mode]}
    log.error("%s: failed: %s\n%s", mode, exc, traceback.format_exc())
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return {"status": "error", "reason": f"{type(exc).__name__}: {first[:300]}",
            "description": ATTENTION_MODES[mode]}


def _run_mode(mode: str, run: "_Run", reference_out: Optional[torch.Tensor]) -> tuple[dict, Any]:
    check = run.checks[mode]
    if not check.available:
        log.warning("%s: unavailable: %s", mode, check.reason)
        return {"status": "unavailable", "reason": check.reason, "description": ATTENTION_MODES[mode]}, None
    start = time.perf_counter()
    log.info("%s: checking, warming up, profiling (%s)", mode, ATTENTION_MODES[mode])
    try:
        record, out = _prepare_mode(mode, run, reference_out)
    except Exception as exc:  # a backend failing mid-run must not cost the other modes
        record, out = _failure(mode, exc, run), None
    _free(run.device)
    log.info("%s: %s in %.1f s", mode, record["status"], time.perf_counter() - start)
    return record, out


def _time_interleaved(records: Dict[str, dict], run: "_Run") -> None:
    """Time the modes in rounds (vanilla block, xformers block, ..., again): a machine that speeds
    up or slows down during the run (CPU clocks, other tenants) then shifts every mode alike,
    which matters most where the step is host-bound."""
    cfg, unet, inputs, device = run.cfg, run.unet, run.inputs, run.device
    modes = [m for m, rec in records.items() if rec["status"] == "ok"]
    samples: Dict[str, list] = {m: [] for m in modes}
    loop_s: Dict[str, float] = {m: 0.0 for m in modes}
    rounds = -(-run.iterations // run.block)
    log.info("timing %s: %d rounds of %d denoising steps each", ", ".join(modes), rounds, run.block)
    for r in range(rounds):
        block = min(run.block, run.iterations - r * run.block)
        for mode in [m for m in modes if records[m]["status"] == "ok"]:
            try:
                with attention_modes.attention_mode(unet, mode), torch.inference_mode():
                    times, it_s = capture.timed_denoising_loop(
                        unet, inputs, capture.make_scheduler(cfg.scheduler), block, cfg.guidance, device)
            except Exception as exc:
                records[mode].update(_failure(mode, exc, run))
                _free(device)
                continue
            samples[mode].extend(times)
            loop_s[mode] += block / it_s
    for mode in modes:
        rec = records[mode]
        if rec["status"] != "ok":
            continue
        stats = capture.StepStats.of(samples[mode])
        rec["step_ms"] = stats.to_dict()
        rec["step_ms_samples"] = samples[mode]
        rec["loop_it_per_s"] = len(samples[mode]) / loop_s[mode]
        if stats.noisy:
            run.warnings.append(f"{mode}: step times are noisy (IQR {stats.iqr:.2f} ms > 10% of the "
                                   f"median {stats.median:.2f} ms)")


def run_experiment(cfg: Any, hydra_cfg: Any = None) -> Dict[str, Any]:
    run_dir = hydra_cfg.runtime.output_dir if hydra_cfg is not None else os.getcwd()
    os.makedirs(run_dir, exist_ok=True)
    device = environment.resolve_device(str(cfg.device))
    dtype = environment.resolve_dtype(str(cfg.dtype), device)
    warm_auto, iters_auto = AUTO_COUNTS["cuda" if device.type == "cuda" else "cpu"]
    warmup = cfg.warmup if cfg.warmup is not None else warm_auto
    iterations = cfg.iterations if cfg.iterations is not None else iters_auto
    torch.backends.cuda.matmul.allow_tf32 = bool(cfg.tf32)
    torch.backends.cudnn.allow_tf32 = bool(cfg.tf32)
    env = environment.describe(device)
    warnings: list = []
    log.info("device %s (%s), dtype %s, model %s at %d px, %d warm-up + %d timed calls per mode",
             device, env["gpu_name"] or env["cpu"], environment.dtype_name(dtype), cfg.model.name,
             cfg.resolution, warmup, iterations)

    start = time.perf_counter()
    log.info("building the UNet (%s)...", cfg.model.display_name or cfg.model.name)
    built = models.build_unet(cfg.model, device, dtype, int(cfg.seed))
    batch = cfg.images_per_prompt * (2 if cfg.guidance else 1)
    inputs = models.make_inputs(built.unet, cfg.model, int(cfg.resolution), batch, device, dtype, int(cfg.seed))
    log.info("UNet ready: %.0fM parameters, %s weights, %.1f s", built.parameters / 1e6, built.weights,
             time.perf_counter() - start)

    shapes = attention_modes.attention_shapes(built.unet)
    modes, checks, efficient, why = attention_modes.resolve_modes(list(cfg.modes), str(cfg.reference_mode),
                                                            device, dtype, shapes)
    log.info("memory-efficient mode: %s (%s)", efficient, why)
    if efficient != "xformers":
        warnings.append(f"efficient mode is {efficient}, not xformers: {why}")

    summary: Dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "command": reproduce_command(sys.argv),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "environment": env,
        "run": {"device": str(device), "dtype": environment.dtype_name(dtype), "batch": batch,
                "latent_shape": list(inputs["sample"].shape), "warmup": warmup, "iterations": iterations,
                "timing": f"interleaved: rounds of {min(TIMING_BLOCK, iterations)} denoising steps per mode",
                "parameters": built.parameters, "weights": built.weights,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
        "gpu_spec": _gpu_spec(cfg, hydra_cfg, env, warnings),
        "reference_mode": str(cfg.reference_mode),
        "efficient_mode": efficient,
        "efficient_mode_reason": why,
        "comparison": {},
        "modes": {},
        "warnings": warnings,
    }
    run = _Run(cfg=cfg, unet=built.unet, inputs=inputs, device=device, dtype=dtype, checks=checks,
               warmup=warmup, iterations=iterations, run_dir=run_dir, weights_bytes=built.weights_bytes,
               warnings=warnings)
    reference_out = None
    for i, mode in enumerate(modes):
        log.info("[%d/%d] mode %s", i + 1, len(modes), mode)
        record, out = _run_mode(mode, run, reference_out)
        if mode == cfg.reference_mode:
            reference_out = out
            if out is None:
                warnings.append(f"the reference mode {mode} did not run ({record['status']}): "
                                "outputs are not compared")
        summary["modes"][mode] = record
        write_json_atomic(os.path.join(run_dir, "summary.json"), summary)   # progress survives a crash
    del reference_out
    _time_interleaved(summary["modes"], run)
    finish_run(summary, run_dir, render_report=bool(cfg.report.enabled), plotly_js=cfg.report.plotly_js)
    log.info("run folder: %s", run_dir)
    return summary

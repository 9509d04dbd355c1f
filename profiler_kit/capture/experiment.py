"""The capture step of a run: build the UNet, then for each attention mode check its output
against the reference, time it, measure its peak memory and record a trace, and write
summary.json. Capture ends there: the entry point then analyses the folder (analysis/run.py) and
renders its report, each step reading what the previous one wrote.

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
import msgspec
from omegaconf import OmegaConf

from profiler_kit.capture import (attention_modes, attention_ran, calibrate, environment, execution, model_inputs,
                                  models, ncu_measure, timing)
from profiler_kit.hardware import specs
from profiler_kit.config import ATTENTION_MODES
from profiler_kit.records import (NOISE_IQR_FRACTION, GpuSpecRecord, ModeRecord, RunInfo, StepStats, Summary,
                                  write_record)
from profiler_kit.run_folder import (ROOFS_MEASURED_FILE, SUMMARY_FILE, capture_name, reproduce_command,
                                     trace_name)

log = logging.getLogger("profiler_kit")

# (warm-up, timed iterations) when left null. On a GPU the eager step is partly host-bound, so
# warm-up also settles the CPU side (allocator, cuDNN/cuBLAS heuristics, Python caches).
AUTO_COUNTS = {"cuda": (10, 20), "cpu": (1, 3)}
TIMING_BLOCK = 5          # timed denoising steps per mode per round of the interleaved timing


class RunInterrupted(KeyboardInterrupt):
    """The capture was interrupted; summary.json says so (status "interrupted") and keeps the
    modes prepared before. The message is one line for the user. A KeyboardInterrupt, so that no
    `except Exception` on the way (the pipeline's failure recording) mistakes it for a failure."""


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
    runners: Dict[str, execution.Runner]
    flow: Optional[Dict[str, Any]] = None   # the flow-matching scheduler's set-up (transformers)
    # one CUDA-graph memory pool for every mode's graph (execution.make_runner says why)
    graph_pool: Any = None

    @property
    def execution_mode(self) -> str:
        return str(self.cfg.execution)

    @property
    def guidance(self) -> bool:
        """Classifier-free guidance in the loop: asked for, and a pipeline that batches it."""
        return model_inputs.cfg_batches(self.cfg)

    def scheduler(self) -> Any:
        return timing.make_scheduler(str(self.cfg.scheduler), self.flow)

    @property
    def block(self) -> int:
        return min(TIMING_BLOCK, self.iterations)


def resolve_gpu_spec(cfg: Any, hydra_cfg: Any, device_name: Optional[str],
                     warnings: list) -> Optional[GpuSpecRecord]:
    """The run's GPU spec, resolved once and recorded: the one `+gpu=NAME` loaded into cfg.gpu,
    else the spec matching the device name. A configured spec naming another card is kept (the
    user may want another card's roofline) and the mismatch recorded and warned about once."""
    chosen = hydra_cfg.runtime.choices.get("gpu") if hydra_cfg is not None else None
    matched = specs.match_spec(device_name) if device_name else None
    if cfg.gpu is not None:
        spec = specs.spec_from_mapping(OmegaConf.to_container(cfg.gpu, resolve=True), key=chosen)
        mismatch = None
        if device_name and (matched is None or matched.key != spec.key):
            mismatch = (f"+gpu={chosen or spec.key} ({spec.name}) but the device is '{device_name}': "
                        "roofline figures use the configured spec")
            warnings.append(mismatch)
            log.warning(mismatch)
        return specs.spec_record(spec, "config", mismatch)
    if matched is not None:
        return specs.spec_record(matched, "device_name")
    if device_name:
        warnings.append(f"no GPU spec matches '{device_name}': pass +gpu=NAME for roofline figures")
    return None


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _prepare_mode(mode: str, run: "_Run", reference_out: Optional[torch.Tensor]) -> tuple[ModeRecord, Any]:
    """Correctness, warm-up, peak memory and the profiled calls of one mode (timing comes later,
    interleaved with the other modes)."""
    cfg, unet, inputs, device = run.cfg, run.unet, run.inputs, run.device
    meter = timing.PeakMemory(device)
    meter.reset()
    with attention_modes.attention_mode(unet, mode), torch.inference_mode():
        # One eager call, its ops read: did the mode run the attention it names? Run eagerly,
        # that call is the correctness call below (no extra call: seconds a mode on a CPU);
        # replayed or compiled calls hide their ops, so those runs make one eager call first.
        ran, eager_out = attention_ran.check(
            mode, lambda: execution.Runner(unet, inputs)(inputs["sample"], inputs["timestep"]), run.execution_mode)
        if run.execution_mode != "eager":
            eager_out = None          # the replayed / compiled call below is the one to check
        if ran.fallback:
            run.warnings.append(f"{mode}: {ran.fallback}")
            log.warning("%s: %s", mode, ran.fallback)
        # the UNet call in the run's execution mode: a graph captured or a UNet compiled for this
        # mode (raises ExecutionUnavailable where that cannot be done here)
        if run.graph_pool is None and run.execution_mode == "cuda_graphs" and device.type == "cuda":
            run.graph_pool = torch.cuda.graph_pool_handle()
        runner = execution.make_runner(run.execution_mode, unet, inputs, str(cfg.compile_mode), run.graph_pool)
        run.runners[mode] = runner
        # The capture is profiled first: Inductor's cudagraph trees record on the call after
        # compiling, and a recaptured graph is then the one every later call replays.
        capture_trace = None
        if cfg.profiler.enabled and runner.captures and device.type == "cuda":
            capture_trace = _profile_capture(mode, run)
        # first call: warm-up and correctness
        out = eager_out if eager_out is not None else runner(inputs["sample"], inputs["timestep"])
        del eager_out
        timing.synchronize(device)
        out_copy = out.float().clone()
        if reference_out is not None:
            err = timing.rel_l2_error(out_copy, reference_out)
            tol = timing.output_tolerance(run.dtype)
            check = dict(output_rel_error=err, output_tolerance=tol, output_match=bool(err <= tol))
            if err > tol:
                run.warnings.append(f"{mode}: output differs from {cfg.reference_mode} "
                                    f"(relative L2 error {err:.2e} > tolerance {tol:.0e})")
        else:
            check = dict(output_rel_error=0.0, output_tolerance=None, output_match=True)
        del out
        for _ in range(max(0, run.warmup - 1)):
            runner(inputs["sample"], inputs["timestep"])
        # One untimed step of the denoising loop on a GPU: warms the scheduler and guidance path,
        # and the peak memory then covers everything a timed step allocates (every step allocates
        # alike). A CPU run measures no peak memory, and a UNet call of seconds dwarfs the
        # scheduler's warm-up: there the step would only cost time (10-17 s per mode, SD 1.5).
        if device.type == "cuda":
            timing.timed_denoising_loop(runner, inputs, run.scheduler(), 1, run.guidance, device)
        peak_allocated, peak_reserved = meter.read()
        trace = None
        if cfg.profiler.enabled:
            trace = trace_name(mode)
            timing.profile_calls(lambda: runner(inputs["sample"], inputs["timestep"]), unet, cfg.profiler.steps,
                                  os.path.join(run.run_dir, trace), cfg.profiler, device)
    record = ModeRecord(status="ok", description=ATTENTION_MODES[mode], peak_allocated_bytes=peak_allocated,
                        peak_reserved_bytes=peak_reserved, weights_bytes=run.weights_bytes, trace=trace,
                        capture_trace=capture_trace, setup_s=runner.setup_s, phase="prepared",
                        attention_ran=ran.families, attention_fallback=ran.fallback, **check)
    return record, out_copy


def _profile_capture(mode: str, run: "_Run") -> Optional[str]:
    """Record the mode's CUDA-graph capture in capture_<mode>.json.gz (None, and a warning,
    where the capture cannot be profiled: the replay is then analysed by kernel names only)."""
    name = capture_name(mode)
    try:
        timing.profile_capture(run.runners[mode].record_capture, run.unet,
                               os.path.join(run.run_dir, name), run.cfg.profiler, run.device)
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as exc:
        run.warnings.append(f"{mode}: the CUDA-graph capture could not be profiled "
                            f"({type(exc).__name__}: {str(exc).strip()[:200]}); its replayed "
                            "kernels are known by name only")
        return None
    return name


def _failure(mode: str, exc: BaseException) -> ModeRecord:
    """The record of a mode that raised: out of memory is a result, anything else an error."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        reason, asked = timing.oom_reason(exc)
        log.warning("%s: out of memory: %s", mode, reason)
        return ModeRecord(status="oom", reason=reason, oom_requested_bytes=asked, description=ATTENTION_MODES[mode])
    log.error("%s: failed: %s\n%s", mode, exc, traceback.format_exc())
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ModeRecord(status="error", reason=f"{type(exc).__name__}: {first[:300]}",
                      description=ATTENTION_MODES[mode])


def _run_mode(mode: str, run: "_Run", reference_out: Optional[torch.Tensor]) -> tuple[ModeRecord, Any]:
    check = run.checks[mode]
    if not check.available:
        log.warning("%s: unavailable: %s", mode, check.reason)
        return ModeRecord(status="unavailable", reason=check.reason, description=ATTENTION_MODES[mode]), None
    start = time.perf_counter()
    log.info("%s: checking, warming up, profiling (%s)", mode, ATTENTION_MODES[mode])
    try:
        record, out = _prepare_mode(mode, run, reference_out)
    except execution.ExecutionUnavailable as exc:   # e.g. an op that breaks CUDA-graph capture
        log.warning("%s: unavailable in execution=%s: %s", mode, run.execution_mode, exc)
        run.runners.pop(mode, None)
        record, out = ModeRecord(status="unavailable", reason=str(exc), description=ATTENTION_MODES[mode]), None
    except Exception as exc:  # a backend failing mid-run must not cost the other modes
        run.runners.pop(mode, None)
        record, out = _failure(mode, exc), None
    _free(run.device)
    log.info("%s: %s in %.1f s", mode, record.status, time.perf_counter() - start)
    return record, out


def _time_interleaved(records: Dict[str, ModeRecord], run: "_Run") -> Dict[str, ModeRecord]:
    """Time the modes in rounds (vanilla block, xformers block, ..., again): a machine that speeds
    up or slows down during the run (CPU clocks, other tenants) then shifts every mode alike,
    which matters most where the step is host-bound. Returns the records with their timings."""
    cfg, unet, inputs, device = run.cfg, run.unet, run.inputs, run.device
    records = dict(records)
    modes = [m for m, rec in records.items() if rec.ok]
    samples: Dict[str, list] = {m: [] for m in modes}
    eager_samples: Dict[str, list] = {m: [] for m in modes}
    loop_s: Dict[str, float] = {m: 0.0 for m in modes}
    # Outside eager, each block of replayed/compiled steps is followed by a block of eager steps
    # of the same mode: the host's share is measured, not assumed, and drifts hit both alike.
    also_eager = run.execution_mode != "eager"
    rounds = -(-run.iterations // run.block)
    log.info("timing %s (%s%s): %d rounds of %d denoising steps each", ", ".join(modes), run.execution_mode,
             ", and eager" if also_eager else "", rounds, run.block)
    for r in range(rounds):
        block = min(run.block, run.iterations - r * run.block)
        for mode in [m for m in modes if records[m].ok]:
            try:
                with attention_modes.attention_mode(unet, mode), torch.inference_mode():
                    times, it_s = timing.timed_denoising_loop(
                        run.runners[mode], inputs, run.scheduler(), block, run.guidance, device)
                    if also_eager:
                        eager, _ = timing.timed_denoising_loop(
                            execution.Runner(unet, inputs), inputs, run.scheduler(), block, run.guidance, device)
                        eager_samples[mode].extend(eager)
            except Exception as exc:
                failed = _failure(mode, exc)
                records[mode] = msgspec.structs.replace(records[mode], status=failed.status, reason=failed.reason,
                                                        oom_requested_bytes=failed.oom_requested_bytes)
                _free(device)
                continue
            samples[mode].extend(times)
            loop_s[mode] += block / it_s
    for mode in modes:
        if not records[mode].ok:
            continue
        stats = StepStats.of(samples[mode])
        records[mode] = msgspec.structs.replace(
            records[mode], step_ms=stats, step_ms_samples=samples[mode], phase="timed",
            eager_step_ms=StepStats.of(eager_samples[mode]) if eager_samples[mode] else None,
            loop_it_per_s=len(samples[mode]) / loop_s[mode])
        if stats.noisy:
            run.warnings.append(f"{mode}: step times are noisy (IQR {stats.iqr_ms:.2f} ms > "
                                f"{NOISE_IQR_FRACTION:.0%} of the median {stats.median_ms:.2f} ms)")
    return records


def _measure_with_ncu(records: Dict[str, ModeRecord], run: "_Run", summary: Summary,
                      summary_path: str) -> Dict[str, ModeRecord]:
    """measure=ncu, once the timing is done: the child process ncu runs rebuilds the run from
    summary.json, so the summary is written first. The runners (CUDA graphs' memory pools) and
    the cached blocks are released so that the child has the GPU's memory."""
    run.runners.clear()
    _free(run.device)
    write_record(summary_path, msgspec.structs.replace(summary, modes=records, warnings=list(run.warnings)))
    measured = [m for m, rec in records.items() if rec.ok and rec.trace]
    statuses = ncu_measure.measure_modes(run.run_dir, measured, run.cfg, run.device.type,
                                         summary.environment.get("gpu_name"), run.warnings)
    return {m: (msgspec.structs.replace(rec, measure=statuses[m]) if m in statuses else rec)
            for m, rec in records.items()}


def run_experiment(cfg: Any, hydra_cfg: Any = None, command: Optional[str] = None) -> str:
    """Capture every mode of one run into its folder; returns the folder (summary.json, traces).
    `command` re-runs it (a sweep's job: its own overrides); default: this process's argv."""
    run_dir = hydra_cfg.runtime.output_dir if hydra_cfg is not None else os.getcwd()
    os.makedirs(run_dir, exist_ok=True)
    device = environment.resolve_device(str(cfg.device))
    dtype = environment.resolve_dtype(str(cfg.dtype), device, str(cfg.model.get("cuda_dtype", "fp16")))
    warm_auto, iters_auto = AUTO_COUNTS["cuda" if device.type == "cuda" else "cpu"]
    warmup = cfg.warmup if cfg.warmup is not None else warm_auto
    iterations = cfg.iterations if cfg.iterations is not None else iters_auto
    torch.backends.cuda.matmul.allow_tf32 = bool(cfg.tf32)
    torch.backends.cudnn.allow_tf32 = bool(cfg.tf32)
    threads_from = environment.set_cpu_threads(cfg.cpu_threads)
    env = environment.describe(device)
    env["cpu_threads_from"] = threads_from
    warnings: list = []
    log.info("device %s (%s, %d CPU threads), dtype %s, model %s at %d px, %d warm-up + %d timed calls per mode",
             device, env["gpu_name"] or env["cpu"], env["cpu_threads"], environment.dtype_name(dtype),
             cfg.model.name, cfg.resolution, warmup, iterations)

    # Before the UNet takes its memory: the 1 GiB streams and 8192^3 GEMMs then fit any 16 GB card.
    roof_cal = calibrate.calibration_for_run(str(cfg.calibrate), device, env, run_dir, warnings)
    roof_basis = "measured" if cfg.roofs == "measured" and roof_cal is not None else "datasheet"
    if cfg.roofs == "measured" and roof_cal is None:
        warnings.append("roofs=measured but no roofs were measured on this device: judged against the datasheet")
        log.warning("%s", warnings[-1])

    start = time.perf_counter()
    log.info("building the model (%s)...", cfg.model.display_name or cfg.model.name)
    built = models.build_unet(cfg.model, device, dtype, int(cfg.seed))
    batch = cfg.images_per_prompt * (2 if model_inputs.cfg_batches(cfg) else 1)
    inputs = model_inputs.make_inputs(built.unet, cfg.model, int(cfg.resolution), batch, device, dtype,
                                      int(cfg.seed))
    log.info("model ready: %.0fM parameters, %s weights, %.1f s", built.parameters / 1e6, built.weights,
             time.perf_counter() - start)

    shapes = attention_modes.attention_shapes(built.unet)
    modes, checks, efficient, why = attention_modes.resolve_modes(list(cfg.modes), str(cfg.reference_mode),
                                                                  device, dtype, shapes)
    log.info("memory-efficient mode: %s (%s)", efficient, why)
    if efficient != "xformers":
        warnings.append(f"efficient mode is {efficient}, not xformers: {why}")

    summary = Summary(
        command=command or reproduce_command(sys.argv),
        config=OmegaConf.to_container(cfg, resolve=True),
        environment=env,
        run=RunInfo(device=str(device), dtype=environment.dtype_name(dtype), batch=batch,
                    latent_shape=list(inputs["sample"].shape),
                    image_tokens=model_inputs.image_tokens(cfg.model, int(cfg.resolution)),
                    warmup=warmup, iterations=iterations,
                    execution=str(cfg.execution),
                    compile_mode=str(cfg.compile_mode) if cfg.execution == "compile" else None,
                    timing=f"interleaved: rounds of {min(TIMING_BLOCK, iterations)} denoising steps per mode",
                    parameters=built.parameters, weights=built.weights,
                    started=time.strftime("%Y-%m-%dT%H:%M:%S%z")),
        gpu_spec=resolve_gpu_spec(cfg, hydra_cfg, env.get("gpu_name"), warnings),
        reference_mode=str(cfg.reference_mode), efficient_mode=efficient, efficient_mode_reason=why,
        status="running", warnings=warnings, roof_basis=roof_basis,
        roof_calibration=ROOFS_MEASURED_FILE if roof_cal is not None else None)
    run = _Run(cfg=cfg, unet=built.unet, inputs=inputs, device=device, dtype=dtype, checks=checks,
               warmup=warmup, iterations=iterations, run_dir=run_dir, weights_bytes=built.weights_bytes,
               warnings=warnings, runners={}, flow=model_inputs.flow_schedule(cfg.model, inputs))
    summary_path = os.path.join(run_dir, SUMMARY_FILE)
    records: Dict[str, ModeRecord] = {}
    reference_out = None
    doing = "starting"
    try:
        for i, mode in enumerate(modes):
            log.info("[%d/%d] mode %s", i + 1, len(modes), mode)
            doing = f"preparing mode {mode} ({i + 1} of {len(modes)})"
            record, out = _run_mode(mode, run, reference_out)
            if mode == cfg.reference_mode:
                reference_out = out
                if out is None:
                    warnings.append(f"the reference mode {mode} did not run ({record.status}): "
                                    "outputs are not compared")
            records[mode] = record
            # progress survives a crash
            write_record(summary_path, msgspec.structs.replace(summary, modes=records, warnings=list(warnings)))
        del reference_out
        doing = "timing the modes"
        records = _time_interleaved(records, run)
        if str(cfg.measure) == "ncu":
            doing = "measuring the modes with Nsight Compute"
            records = _measure_with_ncu(records, run, summary, summary_path)
    except KeyboardInterrupt as exc:    # Ctrl-C, or a signal (job_end.JobStopped: SIGTERM, SLURM's warning)
        status = getattr(exc, "status", "interrupted")
        how = f"{status.replace('_', ' ')} ({exc.why})" if hasattr(exc, "why") else "interrupted"
        reason = (f"{how} while {doing}: the modes measured before are kept" if doing.startswith("measuring")
                  else f"{how} while {doing}: the modes prepared before are kept, none is timed")
        write_record(summary_path, msgspec.structs.replace(summary, modes=records, warnings=list(warnings),
                                                           status=status, reason=reason))
        raise RunInterrupted(reason) from None
    run.runners.clear()          # CUDA graphs hold their memory pools until released
    write_record(summary_path, msgspec.structs.replace(summary, modes=records, warnings=list(warnings),
                                                       status="complete"))
    log.info("run folder: %s", run_dir)
    return run_dir

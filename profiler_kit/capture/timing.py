"""Measuring one attention mode: correctness against the reference, timing with CUDA events
(perf_counter on a CPU), the denoising-loop throughput, peak memory, and a torch.profiler trace.

Timing runs outside the profiler: the profiler's own overhead must not reach the step times.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import os
import re
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

import torch

from profiler_kit.records import parse_size_bytes

GUIDANCE_SCALE = 7.5               # SD's pipelines' default; only the arithmetic matters here
# Relative L2 error allowed against the reference, by dtype: fp32 kernels agree to ~1e-6; half
# precision accumulates differently across ~30 attention layers of random weights.
OUTPUT_TOLERANCE = {torch.float32: 1e-4, torch.float16: 5e-3, torch.bfloat16: 4e-2}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rel_l2_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    out64, ref64 = out.double(), ref.double()
    denom = torch.linalg.vector_norm(ref64).item()
    err = torch.linalg.vector_norm(out64 - ref64).item()
    return err / denom if denom else float("inf") if err else 0.0


def output_tolerance(dtype: torch.dtype) -> float:
    return OUTPUT_TOLERANCE.get(dtype, 1e-2)


def make_scheduler(name: str, flow: Optional[Dict[str, Any]] = None):
    """The loop's scheduler: for a flow-matching transformer (SD3, Flux, Wan;
    model_inputs.flow_schedule) its pipeline's FlowMatchEulerDiscreteScheduler, set up as the
    pipeline sets it up; else the UNet's."""
    from diffusers import DDIMScheduler, EulerDiscreteScheduler, FlowMatchEulerDiscreteScheduler, PNDMScheduler

    if flow is not None:
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, **flow["config"])
        scheduler.profiler_kit_set_timesteps = dict(flow["set_timesteps"])    # Flux's mu
        return scheduler
    cls = {"euler": EulerDiscreteScheduler, "ddim": DDIMScheduler, "pndm": PNDMScheduler}[name]
    # SD's training schedule (scaled_linear betas 0.00085..0.012 over 1000 steps)
    return cls(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


def timed_denoising_loop(call: Callable[[torch.Tensor, Any], torch.Tensor], inputs: Dict[str, Any],
                         scheduler: Any, iterations: int, guidance: bool,
                         device: torch.device) -> tuple[List[float], float]:
    """`iterations` steps of the real loop: UNet call, classifier-free guidance, scheduler step.
    `call(sample, timestep)` is the UNet call in the run's execution mode (execution.Runner).

    Returns the UNet call times in ms (CUDA events around each call) and the loop's it/s (wall
    clock over the whole loop, synchronized, so it includes guidance, scheduler and launch gaps).
    """
    scheduler.set_timesteps(iterations, **getattr(scheduler, "profiler_kit_set_timesteps", {}))
    sample = inputs["sample"]
    half = sample.shape[0] // 2 if guidance else sample.shape[0]
    latents = sample[:half].clone()
    cuda = device.type == "cuda"
    times_ms: List[float] = []
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(iterations)] if cuda else []
    synchronize(device)
    # A garbage-collector pass in the middle of a host-bound step shows up as a slow step: keep it
    # out of the timed loop, as torch.utils.benchmark users do with gc disabled.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    loop_start = time.perf_counter()
    for i, t in enumerate(scheduler.timesteps):
        model_in = torch.cat([latents] * 2) if guidance else latents
        if hasattr(scheduler, "scale_model_input"):     # flow matching feeds the latents as they are
            model_in = scheduler.scale_model_input(model_in, t)
        if cuda:
            events[i][0].record()
            noise = call(model_in, t)
            events[i][1].record()
        else:
            start = time.perf_counter()
            noise = call(model_in, t)
            times_ms.append((time.perf_counter() - start) * 1e3)
        if guidance:
            uncond, text = noise.chunk(2)
            noise = uncond + GUIDANCE_SCALE * (text - uncond)
        latents = scheduler.step(noise, t, latents, return_dict=False)[0]
    synchronize(device)
    loop_s = time.perf_counter() - loop_start
    if gc_was_enabled:
        gc.enable()
    if cuda:
        times_ms = [a.elapsed_time(b) for a, b in events]
    return times_ms, iterations / loop_s


class PeakMemory:
    """Peak allocated/reserved bytes of the caching allocator since `reset` (None on a CPU)."""

    def __init__(self, device: torch.device):
        self.device = device

    def reset(self) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def read(self) -> tuple[Optional[int], Optional[int]]:
        if self.device.type != "cuda":
            return None, None
        synchronize(self.device)
        return (int(torch.cuda.max_memory_allocated(self.device)),
                int(torch.cuda.max_memory_reserved(self.device)))


_ASKED = re.compile(r"Tried to allocate ([0-9.]+ [KMGT]?i?B)")


def oom_reason(exc: BaseException) -> tuple[str, Optional[int]]:
    """One line for the summary and the bytes the allocator was asked for, from PyTorch's message."""
    text = str(exc)
    asked = _ASKED.search(text)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:300], parse_size_bytes(asked.group(1)) if asked else None


@contextlib.contextmanager
def module_scopes(unet: Any, enabled: bool):
    """Wrap every submodule's forward in record_function("module::<dotted path>") so the trace
    says which UNet block and which attention layer launched each kernel."""
    if not enabled:
        yield
        return
    handles, stack = [], []

    def pre(name):
        def hook(_module, _args):
            rf = torch.profiler.record_function(f"module::{name}")
            rf.__enter__()
            stack.append(rf)
        return hook

    def post(_module, _args, _out):
        if stack:
            stack.pop().__exit__(None, None, None)

    for name, module in unet.named_modules():
        if name:
            handles.append(module.register_forward_pre_hook(pre(name)))
            handles.append(module.register_forward_hook(post))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        while stack:
            stack.pop().__exit__(None, None, None)


# Profiler warm-up calls before the recorded ones: on a GPU, CUPTI's start-up would otherwise
# land in the first recorded kernels. A CPU trace has no CUPTI; there a UNet call of seconds
# makes the profiler's own start-up negligible, and a warm-up call would only cost time.
PROFILER_WARMUP_CALLS = {"cuda": 1, "cpu": 0}


def profile_calls(call: Callable[[], Any], unet: Any, steps: int, trace_path: str, opts: Any,
                  device: torch.device) -> str:
    """Record `steps` UNet calls (after the profiler's warm-up calls) and write gzipped Kineto
    JSON atomically: the file appears whole or not at all."""
    from torch.profiler import ProfilerActivity, profile, schedule

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    warmup = PROFILER_WARMUP_CALLS["cuda" if device.type == "cuda" else "cpu"]
    with module_scopes(unet, bool(opts.module_scopes)), profile(
            activities=activities, schedule=schedule(wait=0, warmup=warmup, active=steps, repeat=1),
            record_shapes=bool(opts.record_shapes), profile_memory=bool(opts.profile_memory),
            with_stack=bool(opts.with_stack), with_modules=bool(opts.with_stack)) as prof:
        for _ in range(steps + warmup):
            call()
            synchronize(device)
            prof.step()
    return _export_gzipped(prof, trace_path)


def profile_capture(capture: Callable[[], Any], unet: Any, trace_path: str, opts: Any,
                    device: torch.device) -> str:
    """Record one CUDA-graph capture (``Runner.record_capture``) in its own trace, as vLLM and
    xDiT write theirs: its ops, shapes, module scopes and launch calls are what the replayed
    kernels of the call's trace are joined to (analysis/graph_join.py). Apart from the replay
    trace so that the replay's steps hold only the step: a capture (and Inductor's warm-up
    call before its recording) is no part of it."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with module_scopes(unet, bool(opts.module_scopes)), profile(
            activities=activities, record_shapes=bool(opts.record_shapes),
            with_stack=bool(opts.with_stack), with_modules=bool(opts.with_stack)) as prof:
        with torch.profiler.record_function("profiler_kit::graph_capture"):
            capture()
        synchronize(device)
    return _export_gzipped(prof, trace_path)


def _export_gzipped(prof: Any, trace_path: str) -> str:
    """Write the profile as gzipped Kineto JSON atomically: the file appears whole or not at all."""
    out_dir = os.path.dirname(os.path.abspath(trace_path))
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".partial-") as tmp:
        raw = os.path.join(tmp, "trace.json")
        prof.export_chrome_trace(raw)
        packed = os.path.join(tmp, "trace.json.gz")
        with open(raw, "rb") as src, gzip.open(packed, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        os.replace(packed, trace_path)
    return trace_path

"""Execution modes of the UNet call: eager, CUDA-graph replay, torch.compile.

The eager step of this UNet is partly host-bound on fast GPUs (Python and ~1,000 kernel launches
per step): a faster attention kernel then buys less step time than kernel time. CUDA graphs
replay the captured kernels with one launch, torch.compile(mode="reduce-overhead") compiles and
replays them; both show what attention buys once the host stops hiding it.

Each runner is built per attention mode (the processors are part of what is captured or
compiled) and called as `runner(sample, timestep) -> noise prediction`, the same way the timed
denoising loop, the correctness check and the profiler call it. A mode that cannot be captured or
compiled raises `ExecutionUnavailable` with the reason; the experiment records it as
`unavailable` and the other modes still run.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional

import torch

from profiler_kit.capture import model_inputs

# Warm-up calls on a side stream before capture, as PyTorch's CUDA-graph docs do: lazy
# initialisation (cuBLAS handles, cuDNN autotuning, allocator pools) must not be captured.
GRAPH_WARMUP_CALLS = 3
# torch.compile modes that replay CUDA graphs (Inductor's cudagraph trees)
CUDAGRAPH_COMPILE_MODES = ("reduce-overhead", "max-autotune")
# Compiled entries Dynamo keeps per frame before it gives up and runs the frame eagerly (its
# default is 8). Every attention mode of a run compiles the same model's frames once more (the
# processors, or their dispatcher backend, are guarded on), and modes=[all] runs up to 11 modes:
# past 8 the last modes would silently run eagerly and be timed as "compiled".
COMPILED_ENTRIES_PER_FRAME = 32


class ExecutionUnavailable(RuntimeError):
    """This mode cannot run in this execution here; the message says why, in one line."""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


class Runner:
    """One denoiser call (UNet or transformer) in one execution mode; `setup_s` is what building
    it cost (capture, compile)."""

    execution = "eager"

    def __init__(self, unet: Any, inputs: Dict[str, Any]):
        self.unet = unet
        self.family = model_inputs.family_of(unet)
        self.extra = {k: v for k, v in inputs.items() if k not in ("sample", "timestep")}
        self.setup_s: Optional[float] = None

    def __call__(self, sample: torch.Tensor, timestep: Any) -> torch.Tensor:
        return model_inputs.call(self.unet, self.family, sample, timestep, self.extra)

    # Whether record_capture() records anything: an eager call launches its kernels itself.
    captures = False

    def record_capture(self) -> None:
        """Capture the call's graph again, under the caller's profiler, replacing the one in use.

        Why: a replayed kernel's trace holds its name and time only; the capture holds the ops,
        shapes and module scopes that launched it (analysis/graph_join.py joins the two). The
        first capture ran before profiling (and with the lazy initialisation it needs kept
        out); this one records the same launches, so the profiled replays run exactly the graph
        whose capture the trace holds."""


class GraphRunner(Runner):
    """The UNet call captured once into a torch.cuda.CUDAGraph on static inputs, then replayed:
    new latents and timesteps are copied into the static tensors before each replay."""

    execution = "cuda_graphs"

    def __init__(self, unet: Any, inputs: Dict[str, Any], pool: Any = None):
        super().__init__(unet, inputs)
        sample = inputs["sample"]
        if sample.device.type != "cuda":
            raise ExecutionUnavailable(f"CUDA graphs need a CUDA device (this run is on {sample.device.type})")
        start = time.perf_counter()
        self.static_sample = sample.clone()
        self.static_t = torch.as_tensor(inputs["timestep"], device=sample.device).clone()
        try:
            # The caching allocator keeps freed blocks per stream: the eager check's blocks,
            # cached on the default stream, cannot serve the warm-up on the side stream, which
            # would reserve a second copy of the step's activations (the H200 sweep of
            # 2026-12-06, SD 1.5 at 1024 px under graphs: vanilla reserved 43.0 GiB for an
            # 18.4 GiB peak allocation, 18.8 GiB reserved eagerly). Hand them back first, as
            # torch.cuda.graph does itself before the capture.
            torch.cuda.synchronize(sample.device)
            torch.cuda.empty_cache()
            side = torch.cuda.Stream(device=sample.device)
            side.wait_stream(torch.cuda.current_stream(sample.device))
            with torch.cuda.stream(side):
                for _ in range(GRAPH_WARMUP_CALLS):
                    super().__call__(self.static_sample, self.static_t)
            torch.cuda.current_stream(sample.device).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, pool=pool):
                self.static_out = super().__call__(self.static_sample, self.static_t)
            torch.cuda.synchronize(sample.device)
        except Exception as exc:   # e.g. an op that synchronises or allocates on the host
            raise ExecutionUnavailable(f"CUDA graph capture failed: {type(exc).__name__}: {_first_line(exc)}") from exc
        self.setup_s = time.perf_counter() - start

    captures = True

    def record_capture(self) -> None:
        graph = torch.cuda.CUDAGraph()
        # The same memory pool: the old graph is never replayed again, so the new one may reuse
        # its memory, and a recapture costs no second pool (SDXL's vanilla scores are GBs).
        with torch.cuda.graph(graph, pool=self.graph.pool()):
            out = Runner.__call__(self, self.static_sample, self.static_t)
        torch.cuda.synchronize(self.static_sample.device)
        self.graph, self.static_out = graph, out

    def __call__(self, sample: torch.Tensor, timestep: Any) -> torch.Tensor:
        self.static_sample.copy_(sample, non_blocking=True)
        self.static_t.copy_(torch.as_tensor(timestep), non_blocking=True)
        self.graph.replay()
        return self.static_out


class CompiledRunner(Runner):
    """torch.compile of the UNet (per attention mode: the processors are part of the graph).
    The first call compiles; its duration is `setup_s`, reported apart from step time."""

    execution = "compile"

    def __init__(self, unet: Any, inputs: Dict[str, Any], compile_mode: str):
        super().__init__(unet, inputs)
        # reduce-overhead and max-autotune replay CUDA-graph trees: their capture is worth
        # recording; the default mode launches every kernel itself
        self.captures = compile_mode in CUDAGRAPH_COMPILE_MODES
        self._inputs = (inputs["sample"], inputs["timestep"])
        self._recorded = False
        start = time.perf_counter()
        import torch._dynamo.config as dynamo_config

        dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, COMPILED_ENTRIES_PER_FRAME)
        try:
            self.compiled = torch.compile(unet, mode=compile_mode, dynamic=False)
            out = self(inputs["sample"], inputs["timestep"])
            if out.device.type == "cuda":
                torch.cuda.synchronize(out.device)
        except Exception as exc:
            raise ExecutionUnavailable(f"torch.compile failed: {type(exc).__name__}: {_first_line(exc)}") from exc
        self.setup_s = time.perf_counter() - start

    def record_capture(self) -> None:
        """The second call: Inductor's cudagraph trees ran the first (the compiling call) as
        their warm-up and record the graph on this one; every later call replays it. So this
        must be the call after compiling, and it is recorded once: a dropped tree cannot be
        recorded again (reset_cudagraph_trees leaves the compiled function pointing at it)."""
        if not self.captures or self._recorded:
            return
        self._recorded = True
        self(*self._inputs)
        torch.cuda.synchronize()

    def __call__(self, sample: torch.Tensor, timestep: Any) -> torch.Tensor:
        # One timestep form for every call (a float32 scalar on the sample's device): the check
        # passes the inputs' int64 999, the denoising loop the scheduler's float timesteps, and
        # each new form fails Dynamo's guards and recompiles, inside the timed steps.
        # Likewise one tensor kind: the loop's latents are made under torch.inference_mode (no
        # autograd dispatch keys), the prepared inputs are not; a copy made here, always inside
        # inference mode, is.
        t = torch.as_tensor(timestep).to(device=sample.device, dtype=torch.float32)
        if not t.is_inference():        # a float32 timestep is returned as it is by .to()
            t = t.clone()
        if not sample.is_inference():
            sample = sample.clone()
        return model_inputs.call(self.compiled, self.family, sample, t, self.extra)


def make_runner(execution: str, unet: Any, inputs: Dict[str, Any], compile_mode: str,
                graph_pool: Any = None) -> Runner:
    """The runner of one attention mode; call it inside that mode's attention context.

    ``graph_pool`` (``torch.cuda.graph_pool_handle()``, one per run): every mode's graph is
    captured into the same memory pool. The modes are timed in turns with every graph alive, so
    separate pools would hold the sum of every mode's activations at once (63.6 GiB for SD 1.5 at
    1024 px on the H100, 2026-12-05: vanilla then ran out of memory in a step that needs 18 GiB
    eagerly), where one pool holds the largest. Sharing is safe here because graphs are never
    replayed concurrently and a graph's output is read before another graph replays (PyTorch's
    "sharing memory across captures" rule): a replay may overwrite another graph's intermediates,
    never an output still in use."""
    if execution == "cuda_graphs":
        return GraphRunner(unet, inputs, pool=graph_pool)
    if execution == "compile":
        return CompiledRunner(unet, inputs, compile_mode)
    return Runner(unet, inputs)


Call = Callable[[torch.Tensor, Any], torch.Tensor]

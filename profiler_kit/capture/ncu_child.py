"""Run under Nsight Compute by ncu_measure.py: rebuild a finished run's UNet in one attention mode
and run exactly one UNet call between cudaProfilerStart and cudaProfilerStop, the range ncu
measures (``--profile-from-start off``).

    ncu ... python -m profiler_kit.capture.ncu_child RUN_DIR MODE

The call is the one the run profiled: the same config (read back from the run's summary.json),
the same inputs and execution mode, after as many warm-up calls as the trace's profiled call had
before it (cuBLAS/cuDNN heuristics and lazy module loading settled), so the kernels ncu counts
are the trace's kernels, in the same order. Nothing is timed here: ncu replays each kernel.
"""

from __future__ import annotations

import os
import sys

# Warm-up calls before the measured one: the run's own warm-up did the same before its trace.
WARMUP_CALLS = 3


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m profiler_kit.capture.ncu_child RUN_DIR MODE", file=sys.stderr)
        return 2
    run_dir, mode = argv
    import torch
    from omegaconf import OmegaConf

    from profiler_kit.capture import attention_modes, environment, execution, model_inputs, models
    from profiler_kit.records import read_summary
    from profiler_kit.run_folder import SUMMARY_FILE

    summary = read_summary(os.path.join(run_dir, SUMMARY_FILE))
    cfg = OmegaConf.create(summary.config)
    device = environment.resolve_device(str(cfg.device))
    dtype = environment.resolve_dtype(str(cfg.dtype), device, str(cfg.model.get("cuda_dtype", "fp16")))
    torch.backends.cuda.matmul.allow_tf32 = bool(cfg.tf32)
    torch.backends.cudnn.allow_tf32 = bool(cfg.tf32)
    built = models.build_unet(cfg.model, device, dtype, int(cfg.seed))
    batch = int(cfg.images_per_prompt) * (2 if model_inputs.cfg_batches(cfg) else 1)
    inputs = model_inputs.make_inputs(built.unet, cfg.model, int(cfg.resolution), batch, device, dtype, int(cfg.seed))
    with attention_modes.attention_mode(built.unet, mode), torch.inference_mode():
        runner = execution.make_runner(str(cfg.execution), built.unet, inputs, str(cfg.compile_mode))
        for _ in range(WARMUP_CALLS):
            runner(inputs["sample"], inputs["timestep"])
        torch.cuda.synchronize(device)
        torch.cuda.profiler.start()
        runner(inputs["sample"], inputs["timestep"])
        torch.cuda.synchronize(device)
        torch.cuda.profiler.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

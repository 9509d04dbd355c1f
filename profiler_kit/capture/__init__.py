"""The capture stage: the only package that imports torch and diffusers.

| module | job |
|---|---|
| `experiment` | a run: build the model once, then time, check and profile every attention mode |
| `timing` | one mode: step timing, peak memory, OOM, the output check, torch.profiler traces |
| `execution` | how the UNet call runs: eager, CUDA-graph replay, torch.compile |
| `models` | the UNet from its config with seeded random weights (or a local folder) |
| `attention_modes` | switching attention: diffusers processors, SDPA backends, xformers |
| `environment` | the device, its driver and the library versions a run records |
| `calibrate`, `roof_cache` | the card's measured roofs, and their cache per card |
| `ncu_measure`, `ncu_child` | Nsight Compute runs of each mode, in a child process |
| `launchers` | the GPU pool for sweeps on one node (no torch: the launcher process stays light) |

Nothing is imported here: `from profiler_kit.capture import launchers` must not pull in torch.
"""

"""The capture stage: the only package that imports torch and diffusers.

| module | job |
|---|---|
| `experiment` | a run: build the model once, then time, check and profile every attention mode |
| `timing` | one mode: step timing, peak memory, OOM, the output check, torch.profiler traces |
| `execution` | how the UNet call runs: eager, CUDA-graph replay, torch.compile |
| `models` | the UNet or diffusion transformer from its config with seeded random weights (or a local folder) |
| `model_inputs` | what each pipeline feeds its denoiser (latents, timestep, text, ids), how it calls it, its flow-matching schedule |
| `attention_modes` | switching attention: each mode's backend in diffusers' dispatcher, and whether it can run here |
| `attention_processors` | the UNet's and SD3's processors with attention through the dispatcher; textbook attention (`vanilla`) |
| `attention_ran` | which attention one call really ran, against the mode asked for (fallbacks flagged) |
| `environment` | the device, its driver and the library versions a run records |
| `calibrate`, `roof_cache` | the card's measured roofs, and their cache per card |
| `ncu_measure`, `ncu_child` | Nsight Compute runs of each mode, in a child process |
| `launchers` | the GPU pool for sweeps on one node (no torch: the launcher process stays light) |

Nothing is imported here: `from profiler_kit.capture import launchers` must not pull in torch.
"""

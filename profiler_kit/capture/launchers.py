"""Sweeps, one profiling job per GPU on a workstation or a single node: the device pool.

`hydra-submitit-launcher`'s own `submitit_local` starts every job of a sweep at once and gives
each the same `CUDA_VISIBLE_DEVICES` (the first `gpus_per_node` devices), so two profiling jobs
would share a GPU and time each other's kernels. `GpuPoolLauncher` keeps submitit's local
executor (its own process per job, logs and results under `.submitit/`) and hands out the GPUs
as a pool: each job gets one device of its own, a job starts only when a device is free, and
`CUDA_VISIBLE_DEVICES` inside the job names that device alone (so the job sees it as cuda:0).
Without GPUs (a CPU machine, a test) the pool has one slot: jobs run one after another.

Use: `python -m profiler_kit -m hydra/launcher=gpu_pool resolution=512,768,1024`
(`hydra.launcher.gpus=[0,1]` to pick devices; default: every GPU `nvidia-smi -L` lists, or the
ones CUDA_VISIBLE_DEVICES names). For SLURM use `hydra/launcher=slurm` (conf/hydra/launcher/).
The launcher class lives in profiler_kit/plugins/profiler_kit_gpu_pool/, which Hydra finds as
`hydra_plugins.profiler_kit_gpu_pool` once `add_hydra_plugins()` has run (the entry point does).
"""

from __future__ import annotations

import os
import shutil
import subprocess

POLL_S = 1.0           # how often a free device is looked for; jobs run minutes, 1 s is nothing


def visible_gpus() -> list[int]:
    """The devices a sweep may use: CUDA_VISIBLE_DEVICES when set (numeric ids only), else every
    GPU nvidia-smi lists; [] on a machine without NVIDIA GPUs. No torch import: the launcher
    process stays light, and initialising CUDA there would hold memory on every device."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [x.strip() for x in env.split(",") if x.strip()]
        return [int(x) for x in ids if x.isdigit()]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return list(range(sum(1 for line in out.splitlines() if line.startswith("GPU "))))


PLUGINS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "plugins")   # profiler_kit/plugins


def add_hydra_plugins() -> None:
    """Put profiler_kit/plugins/ into Hydra's `hydra_plugins` namespace, where Hydra looks for
    launchers. A namespace path of its own, rather than a second top-level package in the wheel,
    works the same from a source checkout, an editable install (whose import finder Hydra's
    plugin scan does not see) and a wheel."""
    try:
        import hydra_plugins
    except ImportError:          # no Hydra plugin installed at all: start the namespace here
        import sys
        import types
        hydra_plugins = types.ModuleType("hydra_plugins")
        hydra_plugins.__path__ = []
        sys.modules["hydra_plugins"] = hydra_plugins
    if PLUGINS_DIR not in list(hydra_plugins.__path__):
        hydra_plugins.__path__.append(PLUGINS_DIR)

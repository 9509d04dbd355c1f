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
from dataclasses import dataclass
from typing import Any, Callable, Sequence

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


# --------------------------------------------------------------------------------------------
# Every job of a submitit launcher (gpu_pool, SLURM), collected in the launcher's process
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedJob:
    """One job of the sweep as the launcher submits it: where its run folder will be, and what to
    record there if the job ends without writing its own summary."""
    num: int                      # Hydra's job number (0-based)
    overrides: tuple[str, ...]
    run_dir: str
    config: dict                  # the job's resolved config, without Hydra's node


def plan_jobs(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[PlannedJob]:
    """Each job's run folder, resolved the way the job itself will (hydra.sweep.dir /
    hydra.sweep.subdir with its job number): a job killed before Hydra made its folder still
    gets one, holding a summary.json that says how it ended."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    planned = []
    previous = HydraConfig.instance().cfg
    try:
        for i, overrides in enumerate(job_overrides):
            num = initial_job_idx + i
            cfg = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
            with open_dict(cfg.hydra.job) as job:
                job.id, job.num = f"job_id_for_{num}", num
            HydraConfig.instance().set_config(cfg)
            run_dir = os.path.join(str(cfg.hydra.sweep.dir), str(OmegaConf.select(cfg, "hydra.sweep.subdir")))
            try:
                config = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k != "hydra"}
            except Exception:        # an interpolation only the job can resolve: recorded without it
                config = {}
            planned.append(PlannedJob(num, tuple(overrides), run_dir, config))
    finally:
        if previous is not None:
            HydraConfig.instance().set_config(previous)
    return planned


UNSETTLED = ("RUNNING", "COMPLETING", "PENDING", "REQUEUED", "READY", "CONFIGURING", "UNKNOWN", "STAGE_OUT")


SETTLE_WAIT_S = 15.0   # how long an ended job's state is asked again until the scheduler settles it


def wait_settled(read: Callable[[], str | None], wait_s: float = SETTLE_WAIT_S) -> str | None:
    """The first state ``read`` gives that is not UNSETTLED (or None: nothing to ask), asking
    every 0.5 s for ``wait_s`` at most, then whatever it says. A job that returned after a
    SIGTERM leaves its result before the scheduler calls it CANCELLED (it still reads RUNNING /
    COMPLETING), so a cancelled job would be taken for one that stopped by itself."""
    import time

    end = time.monotonic() + wait_s
    while True:
        state = read()
        if state is None or state.split()[0].upper() not in UNSETTLED or time.monotonic() > end:
            return state
        time.sleep(0.5)


def final_state(job: Any, wait_s: float = SETTLE_WAIT_S) -> str:
    """The scheduler's state of an ended submitit job (SLURM: sacct, forced past submitit's
    back-off; local: the process's exit), settled (:func:`wait_settled`)."""
    def read() -> str | None:
        try:
            info = job.get_info(mode="force")
        except Exception:
            return None
        return str(info.get("State") or info.get("jobState") or "UNKNOWN")

    return wait_settled(read, wait_s) or "UNKNOWN"


def finish_job(planned: PlannedJob, job: Any, total: int, state: Any = None) -> Any:
    """Collect one ended job: its result where submitit has one, else how the scheduler says it
    ended (cancelled, timed out, pre-empted, killed), written into its summary.json with the modes
    it measured before kept; then its line on the submitting terminal. Returns a completed
    JobReturn whose value is the summary: how the job went is in the summary, and a JobReturn
    marked failed would make Hydra raise before the sweep is aggregated. `state`: a callable
    giving the scheduler's final state, where the launcher knows better than submitit's watcher
    (SLURM without accounting)."""
    import sys

    from hydra.core.utils import JobReturn, JobStatus

    from profiler_kit.capture.job_end import scheduler_end
    from profiler_kit.records import RecordError, read_summary
    from profiler_kit.run_folder import SUMMARY_FILE, job_command, job_line, record_failure

    result = None
    try:      # only where the result file is there: submitit's results() waits for one otherwise
        if job.paths.result_pickle.exists():
            result = job.results()[0]
    except Exception:            # no result: cancelled, killed, timed out; the scheduler says which
        pass
    try:
        summary = read_summary(os.path.join(planned.run_dir, SUMMARY_FILE))
    except RecordError:
        summary = None
    recorded = summary.status if summary is not None else None
    log_file = str(getattr(job.paths, "stderr", "")) or None
    end = None
    if result is not None and result.status == JobStatus.FAILED and recorded != "failed":
        first = (str(result._return_value).strip().splitlines() or ["an error"])[0][:300]
        end = ("failed", f"{type(result._return_value).__name__}: {first}; its log: {log_file}")
    elif result is None or recorded in (None, "running", "interrupted"):
        end = scheduler_end(state() if state is not None else final_state(job), recorded, summary.reason if summary else None, log_file,
                            had_result=result is not None)
    if end is not None:
        summary = record_failure(planned.run_dir, planned.config, job_command(list(planned.overrides)),
                                 end[1], status=end[0])
    print(job_line(planned.num, total, list(planned.overrides), planned.run_dir), file=sys.stderr, flush=True)
    return JobReturn(overrides=list(planned.overrides), working_dir=planned.run_dir, status=JobStatus.COMPLETED,
                     _return_value=summary)


def sweep_total(batch: int) -> int | str:
    """N of `job i/N`: the whole sweep's job count the entry point's check found, else this batch's."""
    return os.environ.get("PROFILER_KIT_SWEEP_JOBS") or batch

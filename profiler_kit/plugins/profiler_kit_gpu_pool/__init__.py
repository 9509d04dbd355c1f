"""Hydra discovers launchers only in the `hydra_plugins` namespace: profiler_kit's entry point
adds profiler_kit/plugins/ to that namespace (launchers.add_hydra_plugins), so this package is
found as `hydra_plugins.profiler_kit_gpu_pool`, in a source checkout, an editable install and a
wheel alike. It holds profiler_kit's launcher,
`GpuPoolLauncher` (see profiler_kit/capture/launchers.py for why it exists), configured by
conf/hydra/launcher/gpu_pool.yaml, and the SLURM launcher (slurm.py, conf/hydra/launcher/slurm.yaml).
Both print each job's line on the submitting terminal as it ends and record a job that ended
without a result (capture/launchers.py: finish_job). They need hydra-submitit-launcher (pip install -e ".[cluster]");
without it the class is not defined and Hydra says the launcher cannot be found.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Sequence

from profiler_kit.capture.launchers import POLL_S, finish_job, plan_jobs, sweep_total, visible_gpus

log = logging.getLogger("profiler_kit")

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher
except ImportError:        # the launcher is an optional extra: pip install -e ".[cluster]"
    LocalLauncher = None


if LocalLauncher is not None:

    class GpuPoolLauncher(LocalLauncher):
        """submitit's local executor, one job per free GPU (see the module docstring)."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[Any]:
            import cloudpickle
            import submitit
            from hydra.core.singleton import Singleton

            # submitit pickles this launcher to run each job in a process of its own, where this
            # package is not in the hydra_plugins namespace (profiler_kit's entry point puts it
            # there): the class travels by value, what it imports by reference as usual.
            cloudpickle.register_pickle_by_value(sys.modules[type(self).__module__])
            from hydra.core.utils import filter_overrides

            params = dict(self.params)
            gpus = params.pop("gpus", None)
            gpus = list(gpus) if gpus else visible_gpus()
            slots: list[int | None] = list(gpus) or [None]
            executor = submitit.AutoExecutor(cluster="local", folder=params.pop("submitit_folder"))
            base = {k: v for k, v in params.items() if k in ("timeout_min", "tasks_per_node", "name",
                                                             "stderr_to_stdout")}
            sweep_dir = str(self.config.hydra.sweep.dir)
            os.makedirs(sweep_dir, exist_ok=True)
            planned = {p.num: p for p in plan_jobs(self, job_overrides, initial_job_idx)}
            pending = [(list(p.overrides), p.num) for p in planned.values()]
            total = sweep_total(len(job_overrides))
            log.info("one job per device on %s: %d jobs", ", ".join(f"GPU {g}" for g in gpus) or "the CPU",
                     len(pending))
            running: dict[int, tuple[int, Any]] = {}      # slot index -> (job index, submitit job)
            results: dict[int, Any] = {}
            while pending or running:
                for slot, device in enumerate(slots):
                    if slot in running or not pending:
                        continue
                    overrides, idx = pending.pop(0)
                    # submitit's own GPU option would give every job the first device; a setup
                    # line exported before the job starts names the one this slot owns instead
                    setup = [] if device is None else [f"export CUDA_VISIBLE_DEVICES={device}"]
                    executor.update_parameters(**base, gpus_per_node=0, local_setup=setup)
                    log.info("\t#%d on %s: %s", idx, "the CPU" if device is None else f"GPU {device}",
                             " ".join(filter_overrides(overrides)))
                    job = executor.submit(self, overrides, "hydra.sweep.dir", idx, f"job_id_for_{idx}",
                                          Singleton.get_state())
                    running[slot] = (idx, job)
                for slot, (idx, job) in list(running.items()):
                    if job.done():       # its line on this terminal; a job without result recorded as such
                        results[idx] = finish_job(planned[idx], job, total)
                        del running[slot]
                if running:
                    time.sleep(POLL_S)
            return [results[i] for i in sorted(results)]

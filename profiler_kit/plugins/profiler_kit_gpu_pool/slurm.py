"""`hydra/launcher=slurm`: hydra-submitit-launcher's SLURM launcher, made to fit the cluster and
to see every job to its end (issue 20). Configured by conf/hydra/launcher/slurm.yaml.

What it adds to submitit's own: the request is fitted to the partition and checked with `sinfo`
before anything is submitted (capture/slurm.py: a GPU on CPU-only nodes, more CPUs or memory
than a node has are refused in one line naming the override); a submission `sbatch` still
refuses is said in one line; while the jobs run, each job's line is printed on this terminal as
it ends; a job SLURM keeps PENDING for a reason it will never lift is cancelled and recorded; a
job that ends without a result (cancelled, timed out, pre-empted, killed) is recorded in its
summary.json with how it ended, instead of submitit's UncompletedJobError ending the whole
sweep before its aggregate; the jobs wait with `sacct` (accounting), never blind.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from profiler_kit.capture.launchers import POLL_S, UNSETTLED, finish_job, plan_jobs, sweep_total
from profiler_kit.config import ConfigError

log = logging.getLogger("profiler_kit")
EXIT_BAD_CONFIG = 2
STATE_CHECK_S = 5.0   # how often sacct / squeue are asked about jobs that left no result yet

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
except ImportError:        # the launcher is an optional extra: pip install -e ".[cluster]"
    SlurmLauncher = None


def _refuse(message: str, sweep_dir: Path) -> None:
    """One line and exit 2, leaving no sweep folder behind that holds nothing but Hydra's
    multirun.yaml and submitit's folder."""
    print(f"profiler_kit: {message}", file=sys.stderr, flush=True)
    if sweep_dir.is_dir() and {p.name for p in sweep_dir.iterdir()} <= {"multirun.yaml", ".submitit"}:
        shutil.rmtree(sweep_dir, ignore_errors=True)
    sys.exit(EXIT_BAD_CONFIG)


def _sbatch_error(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if "error" in ln.lower() and ln.strip()]
    sbatch = [ln for ln in lines if ln.startswith("sbatch:")]
    return (sbatch or lines or [str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__])[-1]


if SlurmLauncher is not None:

    class ProfilerKitSlurmLauncher(SlurmLauncher):
        """submitit's SLURM launcher, fitted, checked and followed to every job's end (module docstring)."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[Any]:
            import cloudpickle
            import submitit
            from hydra.core.singleton import Singleton

            from profiler_kit.capture import slurm

            # the jobs unpickle this launcher where this package is not in hydra_plugins
            cloudpickle.register_pickle_by_value(sys.modules[type(self).__module__])
            sweep_dir = Path(str(self.config.hydra.sweep.dir))
            try:
                params, notes = slurm.fit_request(self.params, slurm.query_partitions())
            except ConfigError as exc:
                _refuse(str(exc), sweep_dir)
            init = {"folder": params.pop("submitit_folder"), "slurm_max_num_timeout": params.pop("max_num_timeout", 0)}
            executor = submitit.AutoExecutor(cluster="slurm", **init)
            base = {"timeout_min", "cpus_per_task", "gpus_per_node", "tasks_per_node", "mem_gb", "nodes", "name",
                    "stderr_to_stdout"}
            executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
            sweep_dir.mkdir(parents=True, exist_ok=True)
            planned = plan_jobs(self, job_overrides, initial_job_idx)
            total = sweep_total(len(planned))
            args = [(list(p.overrides), "hydra.sweep.dir", p.num, f"job_id_for_{p.num}", Singleton.get_state())
                    for p in planned]
            said = io.StringIO()
            try:     # submitit copies sbatch's own error lines to the terminal: said once, below
                with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
                    jobs = executor.map_array(self, *zip(*args))
            except Exception as exc:      # sbatch refused what sinfo could not tell (QOS, account, ...)
                _refuse(f"SLURM refused the submission: {_sbatch_error(exc)}", sweep_dir)
            print(f"profiler_kit: submitted {len(jobs)} SLURM jobs ({jobs[0].job_id.split('_')[0]}_0-{len(jobs) - 1}) "
                  f"to partition {params['partition']}; {'; '.join(notes)}", file=sys.stderr, flush=True)
            return self._follow(planned, jobs, total)

        def _follow(self, planned: list, jobs: list, total: Any) -> list:
            """Wait for every job; each one's line as it ends; a job SLURM will never start is
            cancelled and recorded."""
            from profiler_kit.capture import slurm
            from profiler_kit.run_folder import job_command, record_failure

            accounting = slurm.accounting_works()
            if not accounting:
                print("profiler_kit: SLURM accounting is off (sacct does not answer): the jobs are followed with "
                      "squeue, and a job that ends is only known as such while slurmctld remembers it (MinJobAge)",
                      file=sys.stderr, flush=True)
            waiting = dict(zip((p.num for p in planned), zip(planned, jobs)))
            results, last_check = {}, 0.0
            while waiting:
                check = time.monotonic() - last_check >= STATE_CHECK_S
                queue = slurm.queue_states([job.job_id for _, job in waiting.values()]) if check else {}
                answered = queue is not None
                queue = queue or {}
                if check and accounting:      # one sacct call for every job (submitit's watcher holds them all)
                    try:
                        jobs[0].watcher.update()
                    except Exception:
                        pass
                for num, (plan, job) in list(waiting.items()):
                    # a result file ends a job at once; sacct (forced, not submitit's up to 10 min
                    # back-off) tells a job that left none, such as a cancelled or killed one;
                    # squeue tells it too, and alone where the cluster keeps no accounting
                    seen = queue.get(job.job_id)
                    gone = check and answered and seen is None and not accounting      # slurmctld forgot it
                    if job.paths.result_pickle.exists() or gone or \
                            (seen is not None and seen.split()[0] not in UNSETTLED) or \
                            (check and accounting and job.watcher.is_done(job.job_id, mode="cache")):
                        state = None if accounting else \
                            (lambda job_id=job.job_id: slurm.settled_state(job_id) or "UNKNOWN")
                        results[num] = finish_job(plan, job, total, state)
                        del waiting[num]
                if check and waiting:
                    last_check = time.monotonic()
                    reasons = slurm.pending_reasons([job.job_id for _, job in waiting.values()])
                    for num, (plan, job) in list(waiting.items()):
                        why = slurm.never_lifted(reasons.get(job.job_id, ""))
                        if why is None:
                            continue
                        slurm.cancel(job.job_id)
                        record_failure(plan.run_dir, plan.config, job_command(list(plan.overrides)),
                                       f"SLURM will not start it: PENDING ({reasons[job.job_id]}): {why}; "
                                       "it was cancelled", status="failed")
                        results[num] = finish_job(plan, job, total)
                        del waiting[num]
                if waiting:
                    time.sleep(POLL_S)
            return [results[n] for n in sorted(results)]

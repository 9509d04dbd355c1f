"""How a run ends when something outside stops it, seen from inside the run and from the launcher.

Inside: SIGTERM (scancel, a pre-emption, `kill`, a scheduler's hard time limit) and, in a SLURM
job, the warning signal submitit asks SLURM to send `signal_delay_s` before the time limit
(USR2) become a `JobStopped` raised in the capture, which the experiment records as the run's end
(status and reason in summary.json, the modes measured before kept). Left to submitit, USR2 was
raised inside a measurement as submitit's "Job not requeued because: timed-out too many times"
and recorded as that mode's error, and the job went on until the hard limit killed it.

Outside: the launcher asks the scheduler how a job that left no complete result ended
(`slurm_end`) and writes that into the job's summary.json, so a job killed before it could say
anything is still listed, with why. No torch import: the launcher process uses this too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from typing import Iterator

log = logging.getLogger("profiler_kit")


class JobStopped(KeyboardInterrupt):
    """A signal stopped the capture. A KeyboardInterrupt, like Ctrl-C, so that no `except
    Exception` on the way mistakes it for a failure of the mode being measured."""

    def __init__(self, status: str, why: str) -> None:
        super().__init__(why)
        self.status, self.why = status, why


def in_submitit_job() -> bool:
    """This process is a job that submitit started (gpu_pool, SLURM): its launcher waits for the
    job's pickled result, so the job must return rather than exit, and its launcher (not the job)
    prints the job's line on the user's terminal."""
    return bool(os.environ.get("SUBMITIT_EXECUTOR"))


def _slurm_warning_signal() -> int | None:
    """The signal submitit asks SLURM to send before the time limit (`--signal=USR2@120`), in a
    SLURM job of submitit; None elsewhere."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return None
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    return getattr(signal, f"SIG{name}", None) or getattr(signal, name, None)


class _Stops:
    capturing = True


@contextlib.contextmanager
def stop_signals() -> Iterator[_Stops]:
    """While `capturing` is true, SIGTERM and SLURM's warning signal raise JobStopped; after the
    capture (set `capturing = False`) they are logged and the analysis and report go on: they take
    seconds, and the time limit leaves `signal_delay_s` (two minutes by default) after the warning."""
    stops = _Stops()
    if threading.current_thread() is not threading.main_thread():
        yield stops
        return
    warning = _slurm_warning_signal()

    def on_term(signum, frame):
        if stops.capturing:
            raise JobStopped("interrupted", f"signal {signal.Signals(signum).name}")
        log.warning("signal %s after the capture: finishing the analysis", signal.Signals(signum).name)

    def on_warning(signum, frame):
        if stops.capturing:
            raise JobStopped("timed_out", f"SLURM's time limit is near: it sent {signal.Signals(signum).name}")
        log.warning("SLURM's time limit is near (%s): finishing the analysis", signal.Signals(signum).name)

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, on_term)}
    if warning is not None:
        previous[warning] = signal.signal(warning, on_warning)
    try:
        yield stops
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# SLURM's job states (sacct's State, first word) of a job that did not run to its end, as run
# statuses (records.summary.RunStatus) and what to say.
SLURM_ENDS = {
    "CANCELLED": ("cancelled", "SLURM cancelled it (scancel, or an administrator)"),
    "TIMEOUT": ("timed_out", "SLURM's time limit ended it (raise hydra.launcher.timeout_min)"),
    "DEADLINE": ("timed_out", "SLURM ended it at its deadline"),
    "PREEMPTED": ("preempted", "pre-empted by SLURM for another job"),
    "OUT_OF_MEMORY": ("killed", "killed by SLURM: out of host memory (raise hydra.launcher.mem_gb)"),
    "NODE_FAIL": ("killed", "its node failed"),
    "BOOT_FAIL": ("killed", "its node failed to boot"),
    "FAILED": ("failed", "the job exited with an error"),
    "KILLED": ("killed", "its process ended without a result (a signal, or out of host memory)"),
}


def scheduler_end(state: str, recorded_status: str | None, recorded_reason: str | None,
                  log_file: str | None, had_result: bool = True) -> tuple[str, str] | None:
    """How a job ended, from the scheduler's state and what the job recorded itself: (status,
    reason) to write into its summary.json, or None where the job's own record stands (complete,
    failed, or timed out on SLURM's warning signal, which it recorded itself). `had_result`:
    submitit found the job's result; a process that ended without one was killed or crashed."""
    word = (state or "UNKNOWN").split()[0].upper()
    if recorded_status in ("complete", "failed", "timed_out", "cancelled", "preempted", "killed"):
        return None
    if word in ("COMPLETED", "FINISHED") and had_result:   # the job returned: its record stands, or it wrote none
        return None if recorded_status == "interrupted" else \
            ("failed", f"the job returned without recording how its run ended; its log: {log_file}")
    if word in ("COMPLETED", "FINISHED", "INTERRUPTED"):  # a local process that left no result
        word = "KILLED"
    status, what = SLURM_ENDS.get(word, ("killed", f"the job ended without a result (scheduler state {word})"))
    where = f"; its log: {log_file}" if log_file else ""
    if recorded_status == "interrupted":           # the job saw a SIGTERM: the scheduler says why
        return status, f"{what}; {recorded_reason or 'interrupted'}{where}"
    if recorded_status == "running":
        return status, f"{what} while it ran, without a word from the job: the modes recorded before are kept{where}"
    return status, f"{what} before it wrote anything{where}"

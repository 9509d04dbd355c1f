"""measure=ncu: each mode's UNet call measured by Nsight Compute, after the run's own timing.

For every mode that ran, ncu runs ``python -m profiler_kit.capture.ncu_child RUN_DIR MODE`` (a fresh
process: the run's timings are never taken under ncu, and ncu's replay of each kernel cannot
disturb them), limited to one UNet call by cudaProfilerStart/Stop. The report ncu writes
(``ncu_<mode>.ncu-rep``, which opens in the Nsight Compute GUI) is exported as CSV and stored as
the typed record ``ncu_<mode>.json`` beside the trace; the analysis joins it to the trace's
kernels (analysis/ncu_join.py). No torch here: the child imports it.

Where ncu is missing, may not read the counters (ERR_NVGPUCTRPERM) or fails, the mode's
``measure`` status says why in one line and the run goes on.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

from profiler_kit.hardware import nsight
from profiler_kit.capture.ncu_child import WARMUP_CALLS
from profiler_kit.records import MeasureStatus, NcuMeasurement, write_record
from profiler_kit.run_folder import ncu_name, ncu_report_name

log = logging.getLogger("profiler_kit")

# Where CUDA installs ncu when it is not on the PATH.
_NCU_PLACES = ("/usr/local/cuda/bin/ncu", "/opt/nvidia/nsight-compute/ncu")
MEASURED_RANGE = ("one UNet call between cudaProfilerStart and cudaProfilerStop, after "
                  f"{WARMUP_CALLS} warm-up calls, in a separate process (python -m profiler_kit.capture.ncu_child)")


def find_ncu(executable: str) -> str | None:
    """The ncu to run: the configured name or path, else CUDA's usual places."""
    found = shutil.which(executable)
    if found:
        return found
    if executable == "ncu":
        cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
        places = ([os.path.join(cuda_home, "bin", "ncu")] if cuda_home else []) + list(_NCU_PLACES)
        return next((p for p in places if os.access(p, os.X_OK)), None)
    return None


def _version(ncu: str) -> str:
    try:
        out = subprocess.run([ncu, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return "Nsight Compute (version unknown)"
    return nsight.tool_version(out.splitlines())


class NcuTimeout(Exception):
    """ncu ran past its time; ``output`` is what it had printed by then."""

    def __init__(self, output: str):
        super().__init__("ncu timed out")
        self.output = output


def _run_in_own_group(command: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    """subprocess.run, but ncu and the child it launched form their own process group, and a
    timeout kills the whole group: killing ncu alone would leave the measured Python process
    holding the GPU while the next mode is measured. A timeout raises NcuTimeout with the output
    so far (how many kernels ncu had measured says how much more time it needs)."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            out, err = proc.communicate()
            raise NcuTimeout((out or "") + "\n" + (err or "")) from None
        except BaseException:
            # a timeout, or Ctrl-C / SIGTERM of the run: in its own session the group does not get
            # the terminal's signal, so it is stopped here (else the run would wait for ncu)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.communicate()
            raise
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def _write_log(base: str, output: str) -> None:
    with open(base + ".log", "w", encoding="utf-8") as f:   # ncu's and the child's own words
        f.write(output)


def measure_mode(run_dir: str, mode: str, ncu: str, metric_set: str, timeout_s: float,
                 device_name: str | None) -> MeasureStatus:
    """Measure one mode; never raises for a failed measurement (the status says why)."""
    base = os.path.join(run_dir, ncu_report_name(mode)[: -len(".ncu-rep")])
    report = base + ".ncu-rep"
    target = [sys.executable, "-m", "profiler_kit.capture.ncu_child", os.path.abspath(run_dir), mode]
    command = nsight.profile_command(ncu, metric_set, base, target)
    start = time.perf_counter()
    try:
        proc = _run_in_own_group(command, timeout_s)
    except NcuTimeout as timeout:
        _write_log(base, timeout.output)
        lighter = ", or try ncu.metrics=lean" if metric_set != "lean" else ""
        return MeasureStatus(status="failed", wall_s=time.perf_counter() - start,
                             reason=f"ncu took longer than ncu.timeout_s={timeout_s:g} s"
                                    f"{nsight.progress_line(timeout.output)}: raise it{lighter} "
                                    f"(its output: {os.path.basename(base)}.log)")
    wall_s = time.perf_counter() - start
    output = proc.stdout + "\n" + proc.stderr
    _write_log(base, output)
    if proc.returncode != 0 or not os.path.exists(report):
        status = "unavailable" if "ERR_NVGPUCTRPERM" in output else "failed"
        return MeasureStatus(status=status, reason=nsight.failure_line(output, proc.returncode), wall_s=wall_s)
    try:
        export = subprocess.run(nsight.export_command(ncu, report), capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return MeasureStatus(status="failed", reason=f"ncu's CSV export took longer than ncu.timeout_s={timeout_s:g} s: "
                             "raise it", report_file=os.path.basename(report), wall_s=wall_s)
    try:
        kernels, missing = nsight.parse_csv(export.stdout, metric_set)
    except nsight.NcuError as exc:
        return MeasureStatus(status="failed", reason=str(exc), report_file=os.path.basename(report), wall_s=wall_s)
    record = NcuMeasurement(
        mode=mode, device_name=device_name, tool_version=_version(ncu),
        command=" ".join(command), range=MEASURED_RANGE, metric_set=metric_set,
        metrics=[m for m in nsight.METRIC_SETS[metric_set] if m not in missing],
        cache_control=nsight.CACHE_CONTROL, clock_control=nsight.CLOCK_CONTROL, measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        wall_s=wall_s, kernels=kernels)
    write_record(os.path.join(run_dir, ncu_name(mode)), record)
    if missing:
        log.warning("%s: ncu did not report %s", mode, ", ".join(missing))
    return MeasureStatus(status="measured", file=ncu_name(mode), report_file=os.path.basename(report),
                         kernels=len(kernels), wall_s=wall_s)


def measure_modes(run_dir: str, modes: list[str], cfg: Any, device_type: str,
                  device_name: str | None, warnings: list[str]) -> dict[str, MeasureStatus]:
    """measure=ncu for every mode in ``modes``: {mode: status}. One warning line per problem."""
    if device_type != "cuda":
        reason = "measure=ncu needs a CUDA device (Nsight Compute reads NVIDIA GPU counters)"
        warnings.append(reason)
        log.warning(reason)
        return {m: MeasureStatus(status="unavailable", reason=reason) for m in modes}
    ncu = find_ncu(str(cfg.ncu.executable))
    if ncu is None:
        reason = (f"measure=ncu: Nsight Compute ('{cfg.ncu.executable}') is not on the PATH nor in "
                  "/usr/local/cuda/bin: install it or pass ncu.executable=/path/to/ncu; the run goes "
                  "on without measured bytes")
        warnings.append(reason)
        log.warning(reason)
        return {m: MeasureStatus(status="unavailable", reason=reason) for m in modes}
    out: dict[str, MeasureStatus] = {}
    for i, mode in enumerate(modes):
        log.info("[%d/%d] %s: measuring one UNet call with Nsight Compute (%s metrics)...", i + 1,
                 len(modes), mode, cfg.ncu.metrics)
        status = measure_mode(run_dir, mode, ncu, str(cfg.ncu.metrics), float(cfg.ncu.timeout_s), device_name)
        out[mode] = status
        if status.status == "measured":
            log.info("%s: ncu measured %d kernels in %.0f s", mode, status.kernels, status.wall_s or 0)
            continue
        line = f"{mode}: no Nsight Compute measurement: {status.reason}"
        warnings.append(line)
        log.warning(line)
        if status.status == "unavailable":     # no permission: the next mode would fail alike
            for rest in modes[i + 1:]:
                out[rest] = MeasureStatus(status="unavailable", reason=status.reason)
            break
    return out

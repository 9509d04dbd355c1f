"""Sweeps through a real SLURM (`hydra/launcher=slurm`), end to end (issue 20).

On the one-node cluster of scripts/slurm/start.sh (.ci/run starts it; no GPU, 2 CPUs is enough):
a two-job tiny sweep with the launcher's defaults is submitted, followed and aggregated; a job
cancelled mid-run, and one past a one-minute time limit (SLURM's warning signal, or the hard
limit), end as such with the modes measured
before kept while the other job completes; requests SLURM cannot satisfy are refused before
submission in one line, and one it would keep PENDING forever is cancelled rather than waited
for. Marked `slurm`: skipped where `sinfo` is missing, unless CI=true, where a missing cluster
fails them (tests/test_slurm_fit.py checks that).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from profiler_kit import aggregate
from profiler_kit.records import read_summary, read_sweep

REPO = Path(__file__).resolve().parents[1]
TINY = ["model=tiny", "warmup=0", "modes=[vanilla,sdpa]"]
SWEEP_TIMEOUT_S = 240          # one sweep, jobs of seconds; the time-limit test needs ~1.5 min

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(shutil.which("sinfo") is None and os.environ.get("CI") != "true",
                       reason="no SLURM here (sinfo missing): scripts/slurm/start.sh starts a one-node cluster"),
]


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """The cluster answers; under CI=true a missing or stopped one fails loudly instead of skipping."""
    if shutil.which("sinfo") is None:
        pytest.fail("CI=true but sinfo is not on the PATH: .ci/run starts SLURM with scripts/slurm/start.sh")
    ping = subprocess.run(["sinfo", "-h", "-o", "%P %a %D"], capture_output=True, text=True, timeout=30)
    if ping.returncode != 0 or not ping.stdout.strip():
        # SLURM installed but not running (a developer's machine after scripts/slurm/stop.sh)
        why = f"sinfo does not answer ({ping.stderr.strip()[:200]}): start the cluster with scripts/slurm/start.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


def _env() -> dict:
    # the jobs inherit this environment through sbatch (--export=ALL): the checkout, not an install
    return {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}


def sweep(args: list[str], cwd: Path, timeout: int = SWEEP_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "profiler_kit", "-m", "hydra/launcher=slurm", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=_env())


def job_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("profiler_kit: job ")]


def test_a_two_job_sweep_runs_through_slurm_with_the_default_launcher_settings(tmp_path):
    """No launcher override at all on a CPU-only node: the defaults fit the partition."""
    out = tmp_path / "sweep"
    proc = sweep([*TINY, "iterations=2", "resolution=64,96", f"hydra.sweep.dir={out}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "has no GPU: the jobs run on its nodes' CPUs" in proc.stderr
    lines = job_lines(proc.stderr)                       # on this terminal, not in the jobs' logs
    assert sorted(ln.split()[2] for ln in lines) == ["1/2:", "2/2:"]
    assert all(ln.endswith("-> complete: vanilla ok, sdpa ok") for ln in lines), lines
    assert (out / ".submitit").is_dir() and "Traceback" not in proc.stderr
    s = read_sweep(out / "sweep.json")
    assert [(j.resolution, j.status) for j in s.jobs] == [(64, "complete"), (96, "complete")]
    assert len(s.rows) == 4 and (out / "sweep.html").exists()
    for folder in aggregate.run_folders(out):
        summary = read_summary(folder / "summary.json")
        res = summary.config["resolution"]
        # the job's own overrides, re-runnable alone, not submitit's worker
        assert summary.command == f"python -m profiler_kit model=tiny warmup=0 'modes=[vanilla,sdpa]' " \
                                  f"iterations=2 resolution={res}"
        assert summary.command in (folder / "report.html").read_text(encoding="utf-8").replace("&#39;", "'")


def _wait_for(predicate, timeout_s: float, what: str):
    end = time.time() + timeout_s
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _modes(folder_glob: str, out: Path) -> int:
    for f in out.glob(f"{folder_glob}/summary.json"):
        try:
            return len(json.loads(f.read_text())["modes"])
        except (OSError, ValueError, KeyError):
            return 0
    return 0


def test_a_job_cancelled_mid_run_is_recorded_and_the_sweep_still_aggregates(tmp_path):
    """Job 0 completes; job 1 (400 000 timed steps) is scancel'led once both its modes are
    prepared: it ends `cancelled`, keeps them, and the sweep's aggregate lists it."""
    out = tmp_path / "sweep"
    proc = subprocess.Popen([sys.executable, "-m", "profiler_kit", "-m", "hydra/launcher=slurm", *TINY,
                             "resolution=64", "iterations=2,400000", "hydra.launcher.cpus_per_task=1",
                             f"hydra.sweep.dir={out}"], cwd=tmp_path, env=_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: _modes("1_*", out) == 2, 150, "job 1 to prepare both modes")
        job_id = _wait_for(lambda: next((p.name for p in (out / ".submitit").glob("*_1")), None), 30,
                           "job 1's submitit folder")
        subprocess.run(["scancel", job_id], check=True, timeout=30)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:          # the launcher failed the test: leave no job on the cluster
            proc.kill()
            for folder in (out / ".submitit").glob("*_*"):
                subprocess.run(["scancel", folder.name], timeout=30)
    assert proc.returncode == 3, err[-3000:]             # not every job completed
    lines = job_lines(err)
    assert len(lines) == 2 and "Traceback" not in err
    cancelled = read_summary(next(out.glob("1_*")) / "summary.json")
    assert cancelled.status == "cancelled" and "SLURM cancelled it" in cancelled.reason
    assert {m: r.status for m, r in cancelled.modes.items()} == {"vanilla": "ok", "sdpa": "ok"}
    s = read_sweep(out / "sweep.json")
    assert [j.status for j in s.jobs] == ["complete", "cancelled"]
    failed = next(f for f in s.findings if f.rule == "sweep_failed_jobs")
    assert "cancelled" in failed.detail and "1 of 2 jobs did not complete" == failed.title
    # `aggregate DIR` rebuilds the same aggregate
    before = (out / "sweep.json").read_bytes()
    assert aggregate.main([str(out), "--no-report"]) == 0 and (out / "sweep.json").read_bytes() == before


@pytest.mark.parametrize("signal_delay_s, says", [(1, "SLURM's time limit is near: it sent SIGUSR2"),
                                                   (0, "SLURM's time limit ended it")],
                         ids=["warning_signal", "hard_limit"])
def test_a_job_past_its_time_limit_ends_timed_out_with_its_modes_kept(tmp_path, signal_delay_s, says):
    """timeout_min=1. With SLURM's warning (USR2) a second before the limit, the warning, once
    sent, stops the capture and the job records `timed_out` itself; with none (0 s), the hard
    limit's SIGTERM stops it and the launcher reads TIMEOUT from sacct. Job 0 completes meanwhile."""
    out = tmp_path / "sweep"
    start = time.monotonic()
    proc = sweep([*TINY, "resolution=64", "iterations=2,10000000", "hydra.launcher.cpus_per_task=1",
                  "hydra.launcher.timeout_min=1", f"hydra.launcher.signal_delay_s={signal_delay_s}",
                  f"hydra.sweep.dir={out}"], tmp_path)
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert time.monotonic() - start < 180
    timed_out = read_summary(next(out.glob("1_*")) / "summary.json")
    assert timed_out.status == "timed_out" and says in timed_out.reason, timed_out.reason
    assert {m: r.status for m, r in timed_out.modes.items()} == {"vanilla": "ok", "sdpa": "ok"}
    # submitit's own handler once raised inside a measurement and made it the mode's error
    assert "not requeued" not in (next(out.glob("1_*")) / "summary.json").read_text()
    assert [j.status for j in read_sweep(out / "sweep.json").jobs] == ["complete", "timed_out"]
    assert any(ln.split()[2] == "2/2:" and "-> timed_out" in ln for ln in job_lines(proc.stderr))


@pytest.mark.parametrize("override, names", [
    ("hydra.launcher.gpus_per_node=1", "hydra.launcher.gpus_per_node=0"),
    ("hydra.launcher.mem_gb=100000", "hydra.launcher.mem_gb="),
    ("hydra.launcher.cpus_per_task=4096", "hydra.launcher.cpus_per_task="),
    ("hydra.launcher.partition=nosuchpartition", "hydra.launcher.partition="),
    ("+hydra.launcher.additional_parameters.mincpus=4096", "SLURM refused the submission: sbatch: error"),
])
def test_a_request_slurm_cannot_satisfy_is_refused_in_one_line_before_anything_runs(tmp_path, override, names):
    out = tmp_path / "sweep"
    proc = sweep([*TINY, "iterations=2", "resolution=64,96", override, f"hydra.sweep.dir={out}"], tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("profiler_kit: ") and names in lines[0], proc.stderr
    assert not out.exists()                            # no sweep folder holding only multirun.yaml


def test_a_job_slurm_would_keep_pending_forever_is_cancelled_not_waited_for(tmp_path):
    """A request the launcher cannot see (sbatch's own options) that SLURM accepts and never starts
    (PENDING, Reason PartitionConfig): cancelled, recorded with the reason, the sweep ends."""
    out = tmp_path / "sweep"
    proc = sweep([*TINY, "iterations=2", "resolution=64", "+hydra.launcher.additional_parameters.cpus_per_task=4096",
                  f"hydra.sweep.dir={out}"], tmp_path, timeout=90)
    assert proc.returncode == 3, proc.stderr[-3000:]
    job = read_sweep(out / "sweep.json").jobs[0]
    assert job.status == "failed" and "PENDING (PartitionConfig)" in job.reason

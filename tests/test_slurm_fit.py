"""What runs without a cluster (issue 20): the launcher's request fitted to sinfo's view of a
partition and refused in one line where no node can run it, PENDING reasons SLURM never lifts,
how a job that left no result ended, the command a sweep's job records, and the `slurm` marker:
skipped without sinfo, failing under CI=true without sinfo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from profiler_kit.capture import slurm
from profiler_kit.capture.job_end import scheduler_end
from profiler_kit.config import ConfigError
from profiler_kit.run_folder import job_command

REPO = Path(__file__).resolve().parents[1]
# sinfo -h -N -o "%P|%N|%c|%m|%G|%l" of a cluster with a CPU partition (default) and a GPU one
SINFO = """cpu*|c1|2|3900|(null)|infinite
cpu*|c2|4|7900|(null)|infinite
gpu|g1|64|515000|gpu:a100:4(S:0-1)|1-00:00:00
gpu|g2|32|257000|gpu:2,shard:8|1-00:00:00
"""
LAUNCHER = {"partition": None, "gpus_per_node": None, "cpus_per_task": None, "mem_gb": None,
            "timeout_min": 120, "tasks_per_node": 1}


def test_sinfo_is_read_per_partition():
    parts = slurm.parse_sinfo(SINFO)
    assert sorted(parts) == ["cpu", "gpu"] and parts["cpu"].default and not parts["gpu"].default
    assert [n.gpus for n in parts["gpu"].nodes] == [4, 2] and parts["cpu"].max_gpus == 0
    assert parts["gpu"].max_time_min == 1440 and parts["cpu"].max_time_min is None
    assert slurm._minutes("30:00") == 30 and slurm._minutes("2:00:00") == 120


def test_unset_settings_fit_the_partition():
    parts = slurm.parse_sinfo(SINFO)
    cpu, notes = slurm.fit_request(LAUNCHER, parts)
    assert (cpu["partition"], cpu["gpus_per_node"], cpu["cpus_per_task"], cpu["mem_gb"]) == ("cpu", None, 4, None)
    assert any("has no GPU" in n for n in notes)
    gpu, _ = slurm.fit_request({**LAUNCHER, "partition": "gpu"}, parts)
    assert (gpu["gpus_per_node"], gpu["cpus_per_task"]) == (1, 8)
    assert slurm.fit_request({**LAUNCHER, "partition": "gpu", "gpus_per_node": 4, "cpus_per_task": 64}, parts)[0][
        "cpus_per_task"] == 64          # the 4-GPU node has 64 CPUs


@pytest.mark.parametrize("override, says", [
    ({"gpus_per_node": 1}, "type hydra.launcher.gpus_per_node=0"),
    ({"partition": "gpu", "gpus_per_node": 8}, "type hydra.launcher.gpus_per_node=4"),
    ({"cpus_per_task": 8}, "type hydra.launcher.cpus_per_task=4"),
    ({"mem_gb": 64}, "type hydra.launcher.mem_gb=7"),
    ({"partition": "gpu", "timeout_min": 2000}, "type hydra.launcher.timeout_min=1440"),
    ({"partition": "gpus"}, "type hydra.launcher.partition=cpu (sinfo lists cpu, gpu)"),
])
def test_a_request_no_node_can_run_is_refused_naming_the_override(override, says):
    with pytest.raises(ConfigError) as exc:
        slurm.fit_request({**LAUNCHER, **override}, slurm.parse_sinfo(SINFO))
    assert says in str(exc.value) and "\n" not in str(exc.value)


def test_pending_reasons_that_never_lift_are_told_from_those_that_do():
    assert "more than the partition" in slurm.never_lifted("PartitionConfig")
    assert slurm.never_lifted("Resources") is None and slurm.never_lifted("Priority") is None
    assert slurm.never_lifted("") is None


@pytest.mark.parametrize("state, recorded, status, says", [
    ("CANCELLED by 0", "interrupted", "cancelled", "SLURM cancelled it"),
    ("TIMEOUT", "running", "timed_out", "time limit"),
    ("PREEMPTED", "interrupted", "preempted", "pre-empted"),
    ("OUT_OF_MEMORY", None, "killed", "hydra.launcher.mem_gb"),
    ("NODE_FAIL", "running", "killed", "node failed"),
    ("COMPLETED", None, "failed", "without recording"),
    ("FINISHED", "running", "killed", "without a result"),        # gpu_pool: the process died
])
def test_how_a_job_without_result_ended_comes_from_the_scheduler(state, recorded, status, says):
    got = scheduler_end(state, recorded, "interrupted (signal SIGTERM) while timing the modes", "log.err",
                        had_result=state == "COMPLETED")
    assert got[0] == status and says in got[1]


def test_what_the_job_recorded_itself_stands():
    for recorded in ("complete", "failed", "timed_out"):
        assert scheduler_end("CANCELLED", recorded, None, None) is None
    assert scheduler_end("COMPLETED", "interrupted", "Ctrl-C", None) is None


def test_a_sweep_job_records_its_own_overrides_as_its_command():
    assert job_command(["model=tiny", "modes=[vanilla,sdpa]", "resolution=64"]) == \
        "python -m profiler_kit model=tiny 'modes=[vanilla,sdpa]' resolution=64"


def _collect_slurm_tests(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(REPO / "tests" / "test_slurm.py"), "-k", "default_launcher"],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=env)


def test_the_slurm_tests_skip_without_sinfo_and_fail_under_ci():
    """A PATH without sinfo: skipped on a developer's machine, failed (loudly) under CI=true."""
    base = {k: v for k, v in os.environ.items() if k != "CI"}
    base.update(PATH=os.path.dirname(sys.executable), PYTHONPATH=str(REPO))
    here = _collect_slurm_tests(base)
    assert here.returncode == 0 and "1 skipped" in here.stdout, here.stdout[-2000:]
    ci = _collect_slurm_tests({**base, "CI": "true"})
    assert ci.returncode == 1 and "CI=true but sinfo is not on the PATH" in ci.stdout, ci.stdout[-2000:]


def test_a_machine_without_slurm_is_told_so_in_one_line(tmp_path):
    env = {**os.environ, "PATH": os.path.dirname(sys.executable), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "profiler_kit", "-m", "hydra/launcher=slurm", "model=tiny",
                           "resolution=64,96", f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "sinfo is not on this machine's PATH" in proc.stderr and not (tmp_path / "sweep").exists()

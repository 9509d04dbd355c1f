"""Sweeps end to end on this CPU with the tiny UNet, and the aggregate of a real H200 sweep.

A Hydra multirun in which one job cannot run (device=cuda on a machine without CUDA) still ends,
aggregates and lists the failure; the aggregator is idempotent and merges sweep folders; the
gpu_pool launcher (hydra-submitit-launcher's local executor) gives concurrent jobs distinct
devices and the same results as Hydra's basic launcher.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from profiler_kit import aggregate
from profiler_kit.records import read_summary, read_sweep

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "reports" / "h200-2026-11-29-standard"
TINY = ["model=tiny", "warmup=0", "iterations=2", "modes=[vanilla,sdpa]"]


def run_cli(args, cwd, timeout=600):
    return subprocess.run([sys.executable, "-m", "profiler_kit", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})


@pytest.fixture(scope="module")
def failing_sweep(tmp_path_factory):
    """Two resolutions × {cpu, cuda}: the cuda jobs cannot run on this machine."""
    sweep = tmp_path_factory.mktemp("sweep") / "out"
    proc = run_cli(["-m", *TINY, "resolution=256,384", "device=cpu,cuda", f"hydra.sweep.dir={sweep}"],
                   cwd=tmp_path_factory.mktemp("cwd"))
    return sweep, proc


def test_a_failing_job_is_recorded_and_the_sweep_still_aggregates(failing_sweep):
    sweep_dir, proc = failing_sweep
    assert proc.returncode == 3, proc.stderr[-3000:]          # aggregated, and not every job completed
    assert "profiler_kit: 2 of 4 jobs did not complete" in proc.stderr
    jobs = aggregate.run_folders(sweep_dir)
    assert len(jobs) == 4
    statuses = {}
    for folder in jobs:
        summary = read_summary(folder / "summary.json")
        statuses[summary.config["device"], summary.config["resolution"]] = summary
    for res in (256, 384):
        assert statuses["cpu", res].status == "complete"
        # the job's own command (re-runs it alone), not the whole multirun line
        assert statuses["cpu", res].command.endswith(f"resolution={res} device=cpu")
        assert "-m " not in statuses["cpu", res].command.replace("python -m profiler_kit", "")
        # a CPU run names no GPU and no kernels it cannot have recorded
        fastest = next(f for f in statuses["cpu", res].findings if f.rule == "fastest_mode")
        assert "this CPU" in fastest.title and "GPU" not in fastest.title
        assert "not recorded" not in fastest.detail and "a CPU run launches no GPU kernel" in fastest.detail
        failed = statuses["cuda", res]
        assert failed.status == "failed" and "no CUDA device" in failed.reason and not failed.modes
    # the multirun-end callback ran (Hydra skips it when a job raises)
    sweep = read_sweep(sweep_dir / "sweep.json")
    assert [j.status for j in sweep.jobs].count("failed") == 2
    failure = next(f for f in sweep.findings if f.rule == "sweep_failed_jobs")
    assert failure.figures["jobs"] == 2 and "no CUDA device" in failure.detail
    rows = {(r.resolution, r.mode): r for r in sweep.rows}
    assert set(rows) == {(256, "vanilla"), (256, "sdpa"), (384, "vanilla"), (384, "sdpa")}
    assert rows[256, "sdpa"].speedup == pytest.approx(
        rows[256, "vanilla"].step_median_ms / rows[256, "sdpa"].step_median_ms)
    assert (sweep_dir / "sweep.csv").read_text().count("\n") == 1 + len(sweep.rows)
    assert (sweep_dir / "sweep.html").stat().st_size > 100_000
    # progress a person can follow, one line per job as it ends
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("profiler_kit: job ")]
    assert [ln.split(":")[1].split()[1] for ln in lines] == ["1/4", "2/4", "3/4", "4/4"]
    assert sum("failed (ConfigError" in ln for ln in lines) == 2
    assert "Traceback" not in proc.stderr


def test_the_aggregate_is_byte_identical_when_rerun(failing_sweep):
    sweep_dir, _ = failing_sweep
    before = {n: (sweep_dir / n).read_bytes() for n in ("sweep.json", "sweep.csv")}
    assert aggregate.main([str(sweep_dir), "--no-report"]) == 0
    assert {n: (sweep_dir / n).read_bytes() for n in before} == before


def test_merged_and_partial_sweep_folders_aggregate(failing_sweep, tmp_path):
    """Two sweeps copied under one folder (from two machines, say), one of them half finished
    and one run folder damaged: every readable job counts, the damaged one is listed."""
    sweep_dir, _ = failing_sweep
    merged = tmp_path / "merged"
    shutil.copytree(sweep_dir, merged / "machine-a")
    shutil.copytree(sweep_dir, merged / "machine-b")
    shutil.rmtree(next((merged / "machine-b").glob("3_*")))                   # not finished yet
    (next((merged / "machine-b").glob("0_*")) / "summary.json").write_text("{ not json")
    assert aggregate.main([str(merged), "--no-report"]) == 0
    sweep = read_sweep(merged / "sweep.json")
    assert len(sweep.jobs) == 4 + 3
    broken = [j for j in sweep.jobs if j.status == "unreadable"]
    assert [j.job for j in broken] == [f"machine-b/{next((merged / 'machine-b').glob('0_*')).name}"]
    assert "not valid JSON" in broken[0].reason
    assert len(sweep.rows) == 4 + 2


def test_the_aggregator_refuses_what_is_no_sweep_with_one_line(tmp_path, capsys):
    assert aggregate.main([str(tmp_path / "missing")]) == 2
    assert aggregate.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)


def test_gpu_pool_gives_each_concurrent_job_its_own_device_and_the_basic_launchers_results(tmp_path):
    """Through hydra-submitit-launcher's local executor (a process per job). `gpus=[0,1]` on this
    CPU machine: each job's CUDA_VISIBLE_DEVICES names one device, never one that a running job
    holds; the sweep's outcome equals the basic launcher's."""
    pool, basic = tmp_path / "pool", tmp_path / "basic"
    sweep_args = [*TINY, "resolution=256,320,384", "profiler.enabled=false", "report.enabled=false"]
    proc = run_cli(["-m", "hydra/launcher=gpu_pool", "hydra.launcher.gpus=[0,1]", *sweep_args,
                    f"hydra.sweep.dir={pool}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # each job's line on this terminal as it ends (the jobs run in processes of their own)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("profiler_kit: job ")]
    assert len(lines) == 3 and all("-> complete: vanilla ok, sdpa ok" in ln for ln in lines), proc.stderr[-3000:]
    assert all("submitit" not in read_summary(f / "summary.json").command for f in aggregate.run_folders(pool))
    assert run_cli(["-m", *sweep_args, f"hydra.sweep.dir={basic}"], cwd=tmp_path).returncode == 0
    runs = [read_summary(f / "summary.json") for f in aggregate.run_folders(pool)]
    assert [s.status for s in runs] == ["complete"] * 3
    devices = [s.environment["cuda_visible_devices"] for s in runs]
    assert devices[0] != devices[1] and set(devices) <= {"0", "1"}      # jobs 0 and 1 ran side by side
    assert (pool / ".submitit").is_dir()                                 # submitit ran them
    outcome = lambda d: [(j.job, j.status, r.mode, r.status) for j in read_sweep(d / "sweep.json").jobs
                         for r in read_sweep(d / "sweep.json").rows if r.job == j.job]
    assert outcome(pool) == outcome(basic)


def test_a_gpu_pool_job_killed_mid_run_is_recorded_and_the_sweep_still_aggregates(tmp_path):
    """SIGKILL to one job's process (no word from the job): the launcher records it `killed` with
    the modes it had prepared, prints its line, aggregates, and exits 3; the other job completes."""
    import signal
    import time
    out = tmp_path / "pool"
    proc = subprocess.Popen([sys.executable, "-m", "profiler_kit", "-m", "hydra/launcher=gpu_pool",
                             "hydra.launcher.gpus=[0,1]", *[a for a in TINY if not a.startswith("iterations=")],
                             "resolution=64", "iterations=2,400000",
                             "report.enabled=false", f"hydra.sweep.dir={out}"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    try:
        deadline = time.time() + 180
        while time.time() < deadline:        # job 1 has prepared both modes: it is timing 400 000 steps
            try:
                if len(json.loads(next(out.glob("1_*/summary.json")).read_text())["modes"]) == 2:
                    break
            except (StopIteration, OSError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        time.sleep(1.0)
        # submitit's local jobs are named by their process id; job 0 has ended by now (a zombie
        # until the launcher polls it)
        def running(pid: str) -> bool:
            try:
                return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
            except OSError:
                return False
        while time.time() < deadline:
            alive = [int(p.name) for p in (out / ".submitit").iterdir() if p.name.isdigit() and running(p.name)]
            if len(alive) == 1:
                break
            time.sleep(0.5)
        assert len(alive) == 1, alive
        # the job's own Python: submitit's shell -> its local runner -> the job
        runner = Path(f"/proc/{alive[0]}/task/{alive[0]}/children").read_text().split()[0]
        job = Path(f"/proc/{runner}/task/{runner}/children").read_text().split()[0]
        os.kill(int(job), signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)       # the launcher and every job it started
    assert proc.returncode == 3, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("profiler_kit: job ")]
    assert len(lines) == 2 and any("-> killed" in ln for ln in lines), err[-3000:]
    killed = read_summary(next(out.glob("1_*")) / "summary.json")
    assert killed.status == "killed" and "without a word from the job" in killed.reason
    assert set(killed.modes) == {"vanilla", "sdpa"}
    assert [j.status for j in read_sweep(out / "sweep.json").jobs] == ["complete", "killed"]


def test_the_published_h200_sweep_reads_and_says_what_it_found():
    """reports/h200-2026-11-29-standard: the standard sweep measured on an H200."""
    sweep = read_sweep(PUBLISHED / "sweep.json")
    assert [j.status for j in sweep.jobs] == ["complete"] * 5
    assert {(j.model, j.resolution) for j in sweep.jobs} == {("sd15", 512), ("sd15", 768), ("sd15", 1024),
                                                             ("sd21", 768), ("sdxl", 1024)}
    fits = {f.mode: f for f in sweep.attention_fits}
    assert set(fits) == {"vanilla", "xformers", "sdpa", "sdpa_flash", "sdpa_efficient", "sdpa_cudnn", "sdpa_math"}
    assert all(1.5 < f.exponent < 2.2 and f.r2 > 0.95 for f in fits.values())
    vanilla = [r for r in sweep.rows if r.mode == "vanilla" and r.model == "sd15"]
    assert sorted(r.peak_allocated_bytes for r in vanilla) == [r.peak_allocated_bytes for r in
                                                               sorted(vanilla, key=lambda r: r.resolution)]
    for job in sweep.jobs:
        assert (PUBLISHED / job.report).exists()
        assert json.loads((PUBLISHED / job.job / "summary.json").read_text())["schema_version"] == 2


def test_the_slurm_launcher_config_leaves_the_request_to_fit_the_cluster(tmp_path):
    """The shipped config composes into profiler_kit's SLURM launcher (hydra-submitit-launcher's,
    fitted and followed; tests/test_slurm.py runs it on a real cluster) with GPUs, CPUs and memory
    left to fit the partition, and takes the partition and account from the command line."""
    import yaml
    proc = subprocess.run([sys.executable, "-m", "profiler_kit", "--cfg", "hydra", "hydra/launcher=slurm",
                           "hydra.launcher.partition=gpu", "hydra.launcher.account=proj"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    launcher = yaml.safe_load(proc.stdout)["hydra"]["launcher"]
    assert launcher["_target_"] == "hydra_plugins.profiler_kit_gpu_pool.slurm.ProfilerKitSlurmLauncher"
    assert (launcher["gpus_per_node"], launcher["cpus_per_task"], launcher["mem_gb"]) == (None, None, None)
    assert (launcher["tasks_per_node"], launcher["nodes"]) == (1, 1)
    assert (launcher["partition"], launcher["account"], launcher["timeout_min"]) == ("gpu", "proj", 120)


def test_a_sweep_of_measured_runs_shows_each_estimate_error(tmp_path):
    """Runs with measure=ncu (the H200's, tests/data/sd-ncu): every row carries the estimate's
    error on the whole call and on attention as the join judged it; sweep.html shows the column."""
    import shutil
    from profiler_kit.aggregate import write_sweep
    from profiler_kit.analysis.run import analyze_run
    data = Path(__file__).parent / "data" / "sd-ncu"
    for res in ("512", "768"):
        shutil.copytree(data / res, tmp_path / f"sd15-{res}")
        analyze_run(str(tmp_path / f"sd15-{res}"))
    sweep = write_sweep(tmp_path)
    rows = {(r.resolution, r.mode): r for r in sweep.rows}
    assert len(rows) == 7 and all(r.hbm_bytes_error is not None for r in rows.values())
    assert abs(rows[(768, "vanilla")].hbm_bytes_error) < 0.10          # the join's own tolerance
    # the flash kernel's spills, counted as writes in these measurements (no local-memory counter)
    assert rows[(512, "xformers")].attention_hbm_bytes_error < -0.4
    assert rows[(768, "sdpa_cudnn")].hbm_bytes_measured_per_call == pytest.approx(19.17e9, rel=0.01)
    html = (tmp_path / "sweep.html").read_text()
    assert "bytes est. vs measured" in html and "(attention -66.0%)" in html


def test_a_sweep_of_single_mode_runs_claims_no_payoff(tmp_path):
    """Runs of one mode used as its own reference (the H200 re-measurements of xformers and
    sdpa_flash, tests/data/sd-ncu/*-xformers, *-sdpa_flash) compare nothing: no payoff verdict
    (it once said "no resolution where xformers is reliably faster" from its 1.00x against
    itself), while what they do show, the attention fit and the estimate errors, stays."""
    import shutil
    from profiler_kit.aggregate import write_sweep
    from profiler_kit.analysis.run import analyze_run
    data = Path(__file__).parent / "data" / "sd-ncu"
    for name in ("512-xformers", "768-xformers", "512-sdpa_flash", "768-sdpa_flash"):
        shutil.copytree(data / name, tmp_path / name)
        analyze_run(str(tmp_path / name))
    sweep = write_sweep(tmp_path)
    assert sorted((r.job, r.mode) for r in sweep.rows) == sorted(
        (j.job, j.reference_mode) for j in sweep.jobs)          # one mode each, its own reference
    rules = [f.rule for f in sweep.findings]
    assert "sweep_payoff" not in rules and "sweep_attention_scaling" in rules
    assert all(abs(r.hbm_bytes_error) < 0.05 for r in sweep.rows)


def test_a_sweep_of_eager_and_graph_runs_sets_the_two_worlds_side_by_side(tmp_path):
    """Real H200 runs of one configuration (SD 1.5, 512 px, fp16, batch 2): the eager run of
    tests/data/sd and the CUDA-graph run (with captures) of tests/data/sd-graphs-capture."""
    sweep_dir = tmp_path / "sweep"
    shutil.copytree(REPO / "tests" / "data" / "sd", sweep_dir / "eager")
    shutil.copytree(REPO / "tests" / "data" / "sd-graphs-capture" / "run", sweep_dir / "graphs")
    from profiler_kit.analysis.run import analyze_run
    for job in ("eager", "graphs"):
        analyze_run(str(sweep_dir / job))
    assert aggregate.main([str(sweep_dir)]) == 0
    sweep = read_sweep(sweep_dir / "sweep.json")
    pairs = {p.mode: p for p in sweep.execution_pairs}
    assert set(pairs) == {"vanilla", "sdpa_cudnn"}
    cudnn, vanilla = pairs["sdpa_cudnn"], pairs["vanilla"]
    assert cudnn.eager_job == "eager" and cudnn.replayed_job == "graphs"
    assert cudnn.execution == "cuda_graphs" and cudnn.resolution == 512
    # the eager 512 px step is host-bound: replaying it is much faster, the kernels decide
    assert vanilla.replay_gain > 1.5
    assert cudnn.replayed_speedup > 1.4
    # the why of the replayed kernels is known (joined to the capture), as in an eager profile
    assert 0.34 < vanilla.replayed_attention_share < 0.40
    assert vanilla.replayed_unknown_bound_share < 0.05
    found = [f for f in sweep.findings if f.rule == "sweep_execution_worlds"]
    assert found and "CUDA-graph replay" in found[0].title and "512 px" in found[0].detail
    html = (sweep_dir / "sweep.html").read_text()
    assert "Eager against replayed" in html


def test_modes_an_interrupted_job_never_timed_say_so_in_the_sweep_rows():
    """The H200 sweep of 2026-12-06 was cut while its last job (SDXL under graphs) timed the
    modes: they were prepared and profiled, not timed. Their rows say so beside "ok"."""
    from profiler_kit.analysis.sweep import job_record, mode_rows

    folder = REPO / "reports" / "h200-2026-12-06-standard" / "9_sdxl_1024px"
    summary = read_summary(folder / "summary.json")
    assert summary.status == "interrupted"
    rows = {r.mode: r for r in mode_rows(job_record(folder.name, summary, [], None), summary)}
    assert rows["vanilla"].status == "ok" and rows["vanilla"].step_median_ms is None
    assert rows["vanilla"].reason == "prepared, not timed: the run ended before the timing"
    assert rows["flex"].status == "unavailable" and rows["flex"].reason.startswith("CUDA graph capture failed")
    # a timed mode keeps its own (absent) reason
    timed = read_summary(folder.parent / "1_sd15_512px" / "summary.json")
    assert all(r.reason is None for r in mode_rows(job_record("1_sd15_512px", timed, [], None), timed) if r.status == "ok")

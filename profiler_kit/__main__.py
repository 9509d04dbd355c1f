"""`python -m profiler_kit [overrides]`: the Hydra entry point. Kept thin: check the command
line, then run the three steps of a run as siblings, each reading from disk what the previous
one wrote: capture (experiment.py, the only one that imports torch) -> analysis of the run
folder (analysis/run.py) -> report (report/).

Bad overrides are caught before Hydra creates a run folder, so the user gets one line that says
what to type (never a traceback) and nothing is left half-written.
"""

from __future__ import annotations

import itertools
import math
import os
import sys

import hydra
from omegaconf import DictConfig

from profiler_kit.config import ConfigError, register, validate

CONFIG_MODULE = "profiler_kit.conf"
# In a source checkout (editable install, or running from the repository root, where the source
# package shadows any installed one) the configs are the top-level conf/ folder itself; an
# installed wheel carries them as the package profiler_kit.conf (see pyproject.toml).
_SOURCE_CONF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf")
CONFIG_DIR = _SOURCE_CONF if os.path.isfile(os.path.join(_SOURCE_CONF, "config.yaml")) else None
EXIT_BAD_CONFIG = 2
EXIT_INTERRUPTED = 130     # 128 + SIGINT, what a shell reports for Ctrl-C
EXIT_JOBS_UNFINISHED = 3   # a multirun ended, aggregated, and not every job completed


KNOWN_SETTINGS = ("resolution, images_per_prompt, guidance, dtype, device, seed, warmup, iterations, "
                  "modes, reference_mode, scheduler, tf32, execution, compile_mode, roofs, calibrate, model.*, "
                  "profiler.*, "
                  "report.*, +gpu=NAME, point, +sweep=standard")


def _one_line(exc: BaseException) -> str:
    """Hydra and OmegaConf errors span several lines (key, object type, search path) and hide
    the cause one level down: say it in one line, with what to type instead."""
    from hydra.errors import MissingConfigException

    if isinstance(exc, MissingConfigException) and exc.options:
        group = (exc.missing_cfg_file or "").split("/")[0]
        return (f"there is no {exc.missing_cfg_file}: choose one of {', '.join(exc.options)}"
                f" (e.g. {'+' if group == 'gpu' else ''}{group}={exc.options[0]})")
    text = str(exc)
    if text.startswith("Could not override"):
        key = text.split("'")[1] if "'" in text else "?"
        return f"'{key}' is not a setting of profiler_kit: check the spelling; settings: {KNOWN_SETTINGS}"
    cause = str(exc.__cause__ or "")
    if "is not a ListConfig" in cause and text.startswith("Error merging override "):
        key, _, value = text[len("Error merging override "):].partition("=")
        return f"{key} takes a list: write {key}=[{value}]"
    parts = [text] + ([str(exc.__cause__)] if exc.__cause__ is not None else [])
    lines = [ln.strip() for part in parts for ln in part.splitlines() if ln.strip()]
    keep = [ln for ln in lines if not ln.startswith(("object_type=", "Set the environment", "full_key:",
                                                    "Config search path", "provider="))]
    return "; ".join(dict.fromkeys(keep))


def _user_overrides(argv: list[str]) -> list[str]:
    """The key=value words of the command line (flags such as -m or --cfg are Hydra's own)."""
    words, skip_next = [], False
    for word in argv:
        if skip_next:
            skip_next = False
            continue
        if word in ("--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd",
                    "--cfg", "-c", "--package", "-p", "--info", "--experimental-rerun"):
            skip_next = word not in ("--info",)
            continue
        if word.startswith("-"):
            continue
        words.append(word)
    return words


def _sweep_combinations(overrides: list[str], limit: int = 64) -> tuple[list[list[str]], int]:
    """Expand multirun sweeps (resolution=512,768) into the single runs Hydra would launch: the
    first `limit` of them (to validate) and how many there are."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = []
    for ov in parsed:
        key = ov.get_key_element()
        if ov.is_sweep_override():
            choices.append([f"{key}={v}" for v in ov.sweep_string_iterator()])
        else:
            choices.append([ov.input_line])
    combos = list(itertools.islice(itertools.product(*choices), limit))
    return [list(c) for c in combos], math.prod(len(c) for c in choices)


def _check_device_here(device: str) -> None:
    """A single run runs on this machine: a CUDA device it lacks is refused here, before Hydra
    makes the run folder. Not for a multirun, whose jobs may run on other machines (a launcher
    such as SLURM): there each job records why it could not run. torch is imported only when
    the command asks for CUDA by name."""
    if not device.startswith("cuda"):
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        have = f"{count} CUDA device(s)" if count else "no CUDA device"
        raise ConfigError(f"device={device}: this machine has {have}; use device=auto or device=cpu")


def _check_slurm_request(launcher: DictConfig) -> None:
    """hydra/launcher=slurm: a request no node of the partition can run is refused here, before
    Hydra makes the sweep folder (the launcher fits and checks it again when it submits)."""
    from profiler_kit.capture import slurm

    try:
        import hydra_plugins.hydra_submitit_launcher  # noqa: F401
    except ImportError:
        raise ConfigError("hydra/launcher=slurm needs hydra-submitit-launcher: pip install -e \".[cluster]\"") from None
    keys = ("partition", "gpus_per_node", "cpus_per_task", "mem_gb", "timeout_min", "tasks_per_node")
    slurm.fit_request({k: launcher.get(k) for k in keys}, slurm.query_partitions())


def preflight(argv: list[str]) -> None:
    """Compose and validate every run the command line asks for; raise ConfigError if one is bad."""
    from hydra import compose, initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    overrides = _user_overrides(argv)
    try:
        combos, total = _sweep_combinations(overrides)
    except Exception as exc:  # the override grammar itself: quote or bracket errors
        raise ConfigError(f"cannot read the overrides: {_one_line(exc)}") from None
    GlobalHydra.instance().clear()
    init = (initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3") if CONFIG_DIR
            else initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"))
    multirun = "-m" in argv or "--multirun" in argv
    jobs, slurm_checked = 0, False
    with init:
        for combo in combos:
            try:
                cfg = compose(config_name="config", overrides=combo, return_hydra_config=multirun)
                # a sweep stored in a config (+sweep=standard: hydra.sweeper.params) expands too
                params = cfg.hydra.sweeper.get("params") if multirun else None
                extra = [f"{k}={v}" for k, v in (params or {}).items()]
                runs, count = _sweep_combinations(combo + extra) if extra else ([combo], 1)
                jobs += count
                if multirun and not slurm_checked and \
                        str(cfg.hydra.launcher.get("_target_", "")).endswith(".ProfilerKitSlurmLauncher"):
                    _check_slurm_request(cfg.hydra.launcher)      # one sinfo call for the sweep
                    slurm_checked = True
                for run in runs:
                    run_cfg = compose(config_name="config", overrides=run) if extra else cfg
                    validate(run_cfg)
                    if not multirun:
                        _check_device_here(str(run_cfg.device))
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(_one_line(exc)) from None
    GlobalHydra.instance().clear()
    if multirun:
        # for the progress lines of aggregate.SweepCallback: `job i/N`
        os.environ["PROFILER_KIT_SWEEP_JOBS"] = str(jobs if len(combos) == total else total)


def _one_line_reason(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def run_pipeline(cfg: DictConfig, hydra_cfg=None):
    """Capture, then analyse the run folder, then render its report; returns the summary.

    A job that cannot run (no such device, a model that does not build, any exception in
    capture) records status "failed" and the reason in its summary.json. In a multirun it then
    returns normally, so the sweep goes on and Hydra still calls the multirun-end callback
    (it skips it when a job raises); a single run raises after recording."""
    import logging

    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from profiler_kit.capture.job_end import stop_signals
    from profiler_kit.run_folder import SUMMARY_FILE, job_command, record_failure, reproduce_command

    log = logging.getLogger("profiler_kit")
    multirun = hydra_cfg is not None and hydra_cfg.mode == RunMode.MULTIRUN
    run_dir = hydra_cfg.runtime.output_dir if hydra_cfg is not None else os.getcwd()
    # a job of a sweep records its own overrides, so that it can be re-run alone
    command = job_command(list(hydra_cfg.overrides.task)) if multirun else reproduce_command(sys.argv)
    with stop_signals() as stops:
        try:
            from profiler_kit.capture.experiment import run_experiment
            run_experiment(cfg, hydra_cfg, command)
        except Exception as exc:  # recorded in the run folder; the sweep goes on
            if isinstance(exc, ConfigError) and not multirun:
                raise
            if isinstance(exc, ConfigError):       # a setting this machine cannot honour: say so in one line
                log.error("the run failed: %s", exc)
            else:
                log.exception("the run failed")
            summary = record_failure(run_dir, OmegaConf.to_container(cfg, resolve=True), command,
                                     _one_line_reason(exc))
            if not multirun:
                raise
            return summary
        except KeyboardInterrupt as exc:      # Ctrl-C, or a signal (job_end.JobStopped)
            if not os.path.exists(os.path.join(run_dir, SUMMARY_FILE)):   # before capture wrote anything
                status = getattr(exc, "status", "interrupted")
                why = getattr(exc, "why", None) or "Ctrl-C"
                record_failure(run_dir, OmegaConf.to_container(cfg, resolve=True), command,
                               f"{status.replace('_', ' ')} ({why}) before any mode was measured", status=status)
            raise
        stops.capturing = False     # SIGTERM / SLURM's warning now: finish the analysis and report
        return _analyse_and_report(cfg, run_dir)


def _analyse_and_report(cfg: DictConfig, run_dir: str):
    import logging

    from profiler_kit.analysis.run import analyze_run
    from profiler_kit.run_folder import log_table

    summary = analyze_run(run_dir)
    if cfg.report.enabled:
        from profiler_kit.report import render_run_folder
        try:
            render_run_folder(run_dir, plotly_js=cfg.report.plotly_js)
        except Exception:  # summary.json and the traces are on disk: `analyze RUN_DIR` redoes it
            logging.getLogger("profiler_kit").exception("report failed")
    logging.getLogger("profiler_kit").info("\n%s", log_table(summary))
    return summary


@hydra.main(config_path=CONFIG_DIR or "pkg://" + CONFIG_MODULE, config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    try:
        validate(cfg)
        run_pipeline(cfg, HydraConfig.get())
    except ConfigError as exc:
        print(f"profiler_kit: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_CONFIG)
    except KeyboardInterrupt as exc:   # experiment.RunInterrupted says what was kept
        print(f"profiler_kit: {exc or 'interrupted before any mode was measured'}; "
              f"run folder: {HydraConfig.get().runtime.output_dir}", file=sys.stderr)
        from profiler_kit.capture.job_end import in_submitit_job
        if in_submitit_job():
            return      # a result for submitit: the launcher reads how the job ended from its summary
        sys.exit(EXIT_INTERRUPTED)


def main() -> None:
    from profiler_kit.capture.launchers import add_hydra_plugins

    add_hydra_plugins()          # the gpu_pool launcher (conf/hydra/launcher/gpu_pool.yaml)
    register()
    argv = sys.argv[1:]
    if not any(flag in argv for flag in ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info")):
        try:
            preflight(argv)
        except ConfigError as exc:
            print(f"profiler_kit: {exc}", file=sys.stderr)
            sys.exit(EXIT_BAD_CONFIG)
    _hydra_main()
    from profiler_kit import aggregate
    if aggregate.LAST_SWEEP is not None and any(j.status != "complete" for j in aggregate.LAST_SWEEP.jobs):
        sys.exit(EXIT_JOBS_UNFINISHED)


if __name__ == "__main__":
    main()

"""What a SLURM cluster can run, asked before a sweep is submitted, and what SLURM says while it waits.

A request SLURM cannot satisfy is not always refused by `sbatch`: a GPU on a node without one and
more memory than a node has are (with some 40 lines of Hydra traceback, issue 20), but
`cpus_per_task=8` on a 2-CPU node is accepted and stays PENDING forever (Reason PartitionConfig).
So the launcher asks `sinfo` first: the partition's nodes (CPUs, memory, GPUs) and time limit.
Settings left unset (`null` in conf/hydra/launcher/slurm.yaml) are fitted to the partition
(one GPU where its nodes have GPUs, none on CPU-only nodes; up to 8 CPUs per job; the cluster's
default memory); a setting set beyond what any node has is refused in one line that names the
override to type. While jobs wait, a PENDING reason SLURM will never lift ends the job instead
of a hang. No torch import: this runs in the launcher process.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from profiler_kit.config import ConfigError

DEFAULT_CPUS_PER_TASK = 8      # the eager UNet step is partly host-bound: a few cores for its Python
SINFO_TIMEOUT_S = 30

# PENDING reasons that no amount of waiting lifts: the request exceeds what the partition, the
# account or the QOS allows for any job (squeue's REASON column; SLURM's "Job Reason Codes").
NEVER_LIFTED = {
    "PartitionConfig": "it asks for more than the partition's nodes have (CPUs, memory, GPUs)",
    "PartitionNodeLimit": "it asks for more nodes than the partition allows",
    "PartitionTimeLimit": "its time limit exceeds the partition's (lower hydra.launcher.timeout_min)",
    "BadConstraints": "its constraints cannot be met by any node",
    "InvalidAccount": "the account is not valid (hydra.launcher.account)",
    "InvalidQOS": "the QOS is not valid (hydra.launcher.qos)",
    "AccountNotAllowed": "the account may not use this partition",
    "QOSNotAllowed": "the QOS may not be used in this partition",
    "QOSMaxCpuPerJobLimit": "it asks for more CPUs than its QOS allows a job",
    "QOSMaxGRESPerJob": "it asks for more GPUs than its QOS allows a job",
    "QOSMaxMemoryPerJob": "it asks for more memory than its QOS allows a job",
    "QOSMaxWallDurationPerJobLimit": "its time limit exceeds what its QOS allows",
    "QOSMaxNodePerJobLimit": "it asks for more nodes than its QOS allows",
    "AssocMaxCpuPerJobLimit": "it asks for more CPUs than its account allows a job",
    "AssocMaxWallDurationPerJobLimit": "its time limit exceeds what its account allows",
    "DependencyNeverSatisfied": "its dependency can never be satisfied",
}


@dataclass(frozen=True)
class SlurmNode:
    name: str
    cpus: int
    memory_mb: int
    gpus: int


@dataclass(frozen=True)
class SlurmPartition:
    name: str
    default: bool
    nodes: tuple[SlurmNode, ...]
    max_time_min: int | None          # None: no limit

    @property
    def max_gpus(self) -> int:
        return max((n.gpus for n in self.nodes), default=0)


def _gpus(gres: str) -> int:
    """GPUs in sinfo's GRES column: "(null)", "gpu:1", "gpu:a100:4(S:0-1)", "gpu:2,shard:8"."""
    total = 0
    for item in gres.split(","):
        parts = item.split("(")[0].split(":")
        if parts[0] == "gpu" and parts[-1].isdigit():
            total += int(parts[-1])
    return total


def _minutes(limit: str) -> int | None:
    """sinfo's time limit ("infinite", "30:00", "2:00:00", "1-00:00:00") in minutes."""
    if limit in ("infinite", "UNLIMITED", "n/a", ""):
        return None
    days, _, clock = limit.rpartition("-")
    fields = [int(x) for x in clock.split(":")]
    hours, minutes = {1: (0, fields[0]), 2: (0, fields[0]), 3: (fields[0], fields[1])}[len(fields)]
    return (int(days) if days else 0) * 1440 + hours * 60 + minutes


def parse_sinfo(text: str) -> dict[str, SlurmPartition]:
    """`sinfo -h -N -o %P|%N|%c|%m|%G|%l` (one line per node and partition; the default partition
    ends in '*')."""
    nodes: dict[str, list[SlurmNode]] = {}
    info: dict[str, tuple[bool, int | None]] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 6:
            continue
        part, node, cpus, mem, gres, limit = fields
        name = part.rstrip("*")
        info[name] = (part.endswith("*"), _minutes(limit))
        nodes.setdefault(name, []).append(SlurmNode(node, int(cpus.rstrip("+")), int(mem.rstrip("+")), _gpus(gres)))
    return {name: SlurmPartition(name, info[name][0], tuple(ns), info[name][1]) for name, ns in nodes.items()}


def query_partitions() -> dict[str, SlurmPartition]:
    if shutil.which("sinfo") is None:
        raise ConfigError("hydra/launcher=slurm: SLURM's sinfo is not on this machine's PATH: submit from a "
                          "machine of the cluster (a login node), or use hydra/launcher=gpu_pool on this one")
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%P|%N|%c|%m|%G|%l"], capture_output=True, text=True,
                             timeout=SINFO_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"hydra/launcher=slurm: sinfo did not answer ({exc})") from None
    if out.returncode != 0:
        first = (out.stderr.strip().splitlines() or ["no output"])[0]
        raise ConfigError(f"hydra/launcher=slurm: sinfo failed ({first}): is slurmctld up? (scontrol ping)")
    parts = parse_sinfo(out.stdout)
    if not parts:
        raise ConfigError("hydra/launcher=slurm: sinfo lists no partition with nodes")
    return parts


def fit_request(params: dict, partitions: dict[str, SlurmPartition]) -> tuple[dict, list[str]]:
    """The launcher's parameters with the unset ones fitted to the partition, and one note per
    fitted value; ConfigError (one line naming the override to type) for a request that no node
    of the partition can run."""
    params = dict(params)
    names = ", ".join(sorted(partitions))
    name = params.get("partition")
    if name is None:
        default = [p for p in partitions.values() if p.default]
        if not default:
            raise ConfigError(f"hydra.launcher.partition is not set and the cluster has no default partition: "
                              f"type hydra.launcher.partition=NAME (sinfo lists {names})")
        name = default[0].name
    elif name not in partitions:
        raise ConfigError(f"hydra.launcher.partition={name}: SLURM has no such partition: type "
                          f"hydra.launcher.partition={sorted(partitions)[0]} (sinfo lists {names})")
    part = partitions[name]
    notes = []
    gpus = params.get("gpus_per_node")
    if gpus is None:
        gpus = 1 if part.max_gpus else 0
        notes.append(f"partition {name}: one GPU per job" if gpus else
                     f"partition {name} has no GPU: the jobs run on its nodes' CPUs")
    elif gpus > part.max_gpus:
        have = f"at most {part.max_gpus} GPUs" if part.max_gpus else "no GPU (sinfo's GRES column)"
        instead = f"hydra.launcher.gpus_per_node={part.max_gpus}" if part.max_gpus else \
            "hydra.launcher.gpus_per_node=0 to run on their CPUs"
        raise ConfigError(f"hydra.launcher.gpus_per_node={gpus}: the nodes of partition {name} have {have}: "
                          f"type {instead}, or choose another hydra.launcher.partition")
    fit = [n for n in part.nodes if n.gpus >= gpus]
    tasks = int(params.get("tasks_per_node") or 1)
    max_cpus = max(n.cpus for n in fit) // tasks
    cpus = params.get("cpus_per_task")
    if cpus is None:
        cpus = min(DEFAULT_CPUS_PER_TASK, max_cpus)
        notes.append(f"{cpus} CPUs per job")
    elif cpus > max_cpus:
        raise ConfigError(f"hydra.launcher.cpus_per_task={cpus}: the largest node of partition {name} has "
                          f"{max_cpus * tasks} CPUs (SLURM would keep the job PENDING forever): type "
                          f"hydra.launcher.cpus_per_task={max_cpus}")
    mem = params.get("mem_gb")
    max_mem_gb = max(n.memory_mb for n in fit) // 1024
    if mem is not None and mem > max_mem_gb:
        raise ConfigError(f"hydra.launcher.mem_gb={mem}: the largest node of partition {name} has "
                          f"{max(n.memory_mb for n in fit)} MB: type hydra.launcher.mem_gb={max_mem_gb}, "
                          "or leave it unset (null: the cluster's default memory per CPU)")
    timeout = params.get("timeout_min")
    if timeout is not None and part.max_time_min is not None and timeout > part.max_time_min:
        raise ConfigError(f"hydra.launcher.timeout_min={timeout}: partition {name} allows at most "
                          f"{part.max_time_min} minutes: type hydra.launcher.timeout_min={part.max_time_min}")
    # sbatch refuses --gpus-per-node=0 where the cluster has no GPU gres at all: ask for none instead
    params.update(partition=name, gpus_per_node=gpus or None, cpus_per_task=cpus)
    return params, notes


def pending_reasons(job_ids: list[str]) -> dict[str, str]:
    """The reason of each PENDING job among job_ids (squeue, array tasks one a line); {} when
    squeue cannot tell."""
    if not job_ids:
        return {}
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-t", "PENDING", "-o", "%i|%r", "-j", ",".join(job_ids)],
                             capture_output=True, text=True, timeout=SINFO_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return {}
    found = dict(line.strip().split("|", 1) for line in out.stdout.splitlines() if "|" in line)
    return {job: reason for job, reason in found.items() if job in job_ids}


def queue_states(job_ids: list[str]) -> dict[str, str] | None:
    """squeue's state of each job (array tasks one a line), ended ones included while slurmctld
    still holds them (MinJobAge, 5 minutes by default): how a job ended where `sacct` cannot
    tell (a cluster without accounting), so that no job is waited for blind. None where squeue
    did not answer (a job missing from a None is not known to have ended)."""
    if not job_ids:
        return {}
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j", ",".join(job_ids)],
                             capture_output=True, text=True, timeout=SINFO_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 and "Invalid job id" not in out.stderr:
        return None
    found = dict(line.strip().split("|", 1) for line in out.stdout.splitlines() if "|" in line)
    return {job: state for job, state in found.items() if job in job_ids}


def accounting_works() -> bool:
    """`sacct` answers (slurmdbd is up): submitit and the launcher follow jobs with it; without
    it they are followed with squeue alone."""
    try:
        return subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True,
                              timeout=SINFO_TIMEOUT_S).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def settled_state(job_id: str) -> str | None:
    """squeue's state of an ended job once the scheduler settles it (launchers.wait_settled);
    None if squeue no longer holds it."""
    from profiler_kit.capture.launchers import wait_settled

    return wait_settled(lambda: (queue_states([job_id]) or {}).get(job_id))


def never_lifted(reason: str) -> str | None:
    """Why SLURM will never start a job PENDING for `reason`, or None when waiting may help."""
    return NEVER_LIFTED.get(reason.split(",")[0].strip())


def cancel(job_id: str) -> None:
    subprocess.run(["scancel", job_id], capture_output=True, timeout=SINFO_TIMEOUT_S)

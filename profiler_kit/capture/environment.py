"""What the run ran on: device, GPU, driver, CUDA, library versions, host. Recorded in every
summary so a figure can always be traced to its card and software."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from typing import Any, Dict, Optional

import torch

from profiler_kit.config import ConfigError


def _version(dist: str) -> Optional[str]:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _driver_version() -> Optional[str]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip().splitlines()[0] or None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={requested} but this machine has no CUDA device: use device=auto or device=cpu")
        if device.index is None:
            device = torch.device("cuda:0")
        if device.index >= torch.cuda.device_count():
            raise ConfigError(f"device={requested} but only {torch.cuda.device_count()} CUDA device(s) exist: "
                              f"use device=cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    return device


DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def resolve_dtype(requested: str, device: torch.device, cuda_default: str = "fp16") -> torch.dtype:
    """`auto`: the model card's dtype on CUDA (fp16 for the SD UNets, bf16 for Flux, SD3.5 and
    Wan), fp32 on a CPU (whose half-precision matmuls are slow emulation)."""
    if requested == "auto":
        return DTYPES[cuda_default] if device.type == "cuda" else torch.float32
    return DTYPES[requested]


def dtype_name(dtype: torch.dtype) -> str:
    return {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}.get(dtype, str(dtype))


# set by the user for this process: their thread count wins over cpu_threads=null
THREAD_ENV_VARS = ("TORCH_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def set_cpu_threads(requested: Optional[int]) -> str:
    """Give PyTorch's intra-op pool `requested` threads, or (None) one per CPU this process may
    run on; returns where the count came from, for the record.

    Why not torch's default: with MKL it is the number of physical cores, so on a cloud VM whose
    2 vCPUs are one core's two hardware threads every CPU op (the whole UNet on a CPU run) runs
    on one thread while the other sits idle. The affinity mask, not os.cpu_count(), is what the
    process was given (a SLURM allocation, taskset).
    """
    if requested is not None:
        torch.set_num_threads(int(requested))
        return "cpu_threads"
    for var in THREAD_ENV_VARS:
        if os.environ.get(var):
            return var
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if available > torch.get_num_threads():
        torch.set_num_threads(available)
    return "affinity"


def describe(device: torch.device) -> Dict[str, Any]:
    env: Dict[str, Any] = {
        "device": str(device),
        "gpu_name": None, "gpu_memory_bytes": None, "gpu_sm_count": None, "gpu_capability": None,
        "driver": None,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "torch": str(torch.__version__),          # TorchVersion is a str subclass JSON encoders refuse
        "diffusers": _version("diffusers"),
        "xformers": _version("xformers"),
        "hydra": _version("hydra-core"),
        "python": sys.version.split()[0],
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        # which devices this process was given (a sweep launcher hands out one GPU per job)
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu_name=props.name, gpu_memory_bytes=int(props.total_memory),
                   gpu_sm_count=int(props.multi_processor_count),
                   gpu_capability=f"{props.major}.{props.minor}", driver=_driver_version())
    return env

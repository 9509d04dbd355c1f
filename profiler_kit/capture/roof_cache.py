"""Where measured roofs are kept between runs: one file per card in the user's cache, reused
only for the exact software it was measured with. No torch: the key is the environment record
(environment.describe) that every run already writes.

    $PROFILER_KIT_CACHE/roofs/<card>.json          (else $XDG_CACHE_HOME/profiler_kit/...,
                                                    else ~/.cache/profiler_kit/...)

A driver or CUDA/torch upgrade changes cuBLAS kernels and clocks policy, so a calibration from
other versions is not reused: it is measured again and the file overwritten atomically
(records.write_record), so two runs starting together never read half a file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from profiler_kit.cache_folder import cache_dir
from profiler_kit.records import RecordError, RoofCalibration, read_roof_calibration, write_record

ROOFS_DIR = "roofs"


def card_slug(device_name: str) -> str:
    """"NVIDIA H200" -> "nvidia-h200": a file name from any device name."""
    return re.sub(r"[^a-z0-9]+", "-", device_name.lower()).strip("-") or "unnamed-device"


def cache_path(device_name: str) -> Path:
    return cache_dir() / ROOFS_DIR / f"{card_slug(device_name)}.json"


def identity(env: Mapping[str, Any]) -> tuple[str, str | None, str, str | None]:
    """(device name, driver, torch, CUDA) of a run's environment record: what a cached
    calibration must match (RoofCalibration.identity)."""
    return (str(env.get("gpu_name") or env.get("cpu") or "cpu"), env.get("driver"),
            str(env.get("torch")), env.get("cuda"))


def load(env: Mapping[str, Any]) -> tuple[RoofCalibration | None, str]:
    """The cached calibration of this card if it was measured with this software, and a few
    words on why it is (not) used, for the log."""
    path = cache_path(identity(env)[0])
    if not path.is_file():
        return None, f"no cached roofs at {path}"
    try:
        cached = read_roof_calibration(path)
    except RecordError as exc:
        return None, f"cached roofs unreadable ({exc}): measuring again"
    wanted = identity(env)
    if cached.identity() != wanted:
        changed = [f"{name} {old} -> {new}" for name, old, new in
                   zip(("device", "driver", "torch", "CUDA"), cached.identity(), wanted) if old != new]
        return None, f"cached roofs are of another setup ({', '.join(changed)}): measuring again"
    return cached, f"cached roofs from {cached.measured_at} ({path})"


def store(calibration: RoofCalibration) -> Path:
    """Write (or overwrite) the card's cache file, atomically."""
    return write_record(cache_path(calibration.device_name), calibration)

"""Kernels bound by a link rather than by HBM or the SMs: collectives and host<->device copies.

Why a module of its own: the roofline judges an op by its FLOPs against the tensor/CUDA peak and
its HBM bytes against HBM bandwidth. Neither limit applies to
- collective communication (NCCL/RCCL all-reduce, all-gather, send/recv): bound by NVLink or the
  network; judging it against HBM would call a slow all-reduce "latency" or "unknown";
- host<->device copies (Memcpy HtoD/DtoH): bound by the host link (PCIe, or NVLink-C2C on
  Grace Hopper), tens of GB/s against HBM's thousands; judged against HBM every such copy
  would look hopelessly slow.
So their bound is set here by family (``interconnect``, ``host_link``), and the copies get their
own figures against ``GpuSpec.host_link_gbps``.
"""

from __future__ import annotations

import re

import numpy as np

from profiler_kit.analysis.categories import CATEGORIES
from profiler_kit.analysis.kernels import KernelTable
from profiler_kit.analysis.roofline import BOUNDS, LATENCY_THRESHOLD_US
from profiler_kit.trace import MEMCPY

_COMMUNICATION = CATEGORIES.index("communication")
# Kineto: "Memcpy HtoD (Pageable -> Device)", "Memcpy DtoH (Device -> Pinned)"; HIP:
# "CopyHostToDevice", "CopyDeviceToHost". DtoD / PtoP copies stay with HBM / the interconnect.
_HTOD = re.compile(r"htod|hosttodevice", re.IGNORECASE)
_DTOH = re.compile(r"dtoh|devicetohost", re.IGNORECASE)


def host_copy_masks(table: KernelTable) -> tuple[np.ndarray, np.ndarray]:
    """(HtoD, DtoH) boolean masks over the GPU activities."""
    gpu, names = table.trace.gpu, table.trace.names
    is_copy = gpu.kind == MEMCPY
    htod_ids = [i for i, nm in enumerate(names) if _HTOD.search(nm)]
    dtoh_ids = [i for i, nm in enumerate(names) if _DTOH.search(nm)]
    return is_copy & np.isin(gpu.name_id, htod_ids), is_copy & np.isin(gpu.name_id, dtoh_ids)


def apply_link_bounds(table: KernelTable, bound: np.ndarray) -> None:
    """Set (in place) the bound of collectives to ``interconnect`` and of host<->device copies
    to ``host_link`` (``latency`` when shorter than the roofline's latency threshold: a 2 µs copy
    of a few bytes says nothing about the link)."""
    bound[table.category == _COMMUNICATION] = BOUNDS.index("interconnect")
    htod, dtoh = host_copy_masks(table)
    host = htod | dtoh
    short = table.dur_us < LATENCY_THRESHOLD_US
    bound[host & ~short] = BOUNDS.index("host_link")
    bound[host & short] = BOUNDS.index("latency")


def host_link_figures(table: KernelTable, spec) -> dict:
    """Host<->device copies against the host link: bytes, time, achieved rate and the link's
    floor time (bytes / host_link_gbps), per direction. Rates in GB/s (1e9 B/s)."""
    gpu = table.trace.gpu
    htod, dtoh = host_copy_masks(table)
    link_gbps = getattr(spec, "host_link_gbps", None) if spec is not None else None
    out = {"host_link": getattr(spec, "host_link", "") or None if spec is not None else None,
           "host_link_gbps": link_gbps}
    for name, mask in (("htod", htod), ("dtoh", dtoh)):
        nbytes = float(np.maximum(gpu.nbytes[mask], 0).sum())
        time_us = float(table.dur_us[mask].sum())
        out[f"{name}_count"] = int(mask.sum())
        out[f"{name}_bytes"] = nbytes
        out[f"{name}_us"] = time_us
        out[f"{name}_achieved_gbps"] = nbytes / (time_us * 1e3) if time_us > 0 else None
        out[f"{name}_floor_us"] = nbytes / (link_gbps * 1e3) if link_gbps else None
    return out

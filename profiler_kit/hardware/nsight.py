"""Nsight Compute (``ncu``) as profiler_kit drives and reads it; no torch.

What is asked of ncu and why, the command line, its CSV turned into ``NcuKernel`` records, and
its failures turned into one line each. The capture side (``ncu_measure.py``) runs it; the
analysis reads only the ``ncu_<mode>.json`` written from here.

Metric sets (``ncu.metrics=``). Every metric costs replay passes of each kernel; ncu's overhead
per kernel grows with them (on the H200, SD 1.5's 1,324 kernels took 509 s with ten passes):

* ``lean``: DRAM bytes read and written, what the SMs wrote into L2 and how much of it was
  local memory (register spills), the duration, DRAM throughput and tensor-pipe activity as % of
  peak. Enough for every byte figure.
* ``full``: lean plus ncu's Speed-of-Light pair, SM throughput and compute-memory throughput
  (% of peak): the figures of ncu's own "GPU Speed Of Light" section, at several more passes.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Iterable

from profiler_kit.records import L2_SECTOR_BYTES, NcuKernel

# metric -> NcuKernel field (and the factor turning ncu's base unit into the field's unit)
_LEAN = {
    "dram__bytes_read.sum": ("dram_read_bytes", 1.0),
    "dram__bytes_write.sum": ("dram_write_bytes", 1.0),
    # writes from the SMs (srcunit_tex) only: lts__t_sectors_op_write also counts the traffic
    # between the two L2 partitions of an H100/H200 and read 1.5x the GEMM's output there
    "lts__t_sectors_srcunit_tex_op_write.sum": ("l2_write_bytes", float(L2_SECTOR_BYTES)),
    # stores to local memory (register spills): they pass through L2 and are counted in the line
    # above, but die with the kernel; subtracted from its writes (records.NcuKernel.written_bytes)
    "l1tex__t_sectors_pipe_lsu_mem_local_op_st.sum": ("local_store_bytes", float(L2_SECTOR_BYTES)),
    "gpu__time_duration.sum": ("duration_ns", 1.0),
    "dram__throughput.avg.pct_of_peak_sustained_elapsed": ("dram_throughput_pct", 1.0),
    "sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_elapsed": ("tensor_pipe_pct", 1.0),
}
_FULL = {
    **_LEAN,
    "sm__throughput.avg.pct_of_peak_sustained_elapsed": ("sm_throughput_pct", 1.0),
    "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed": ("memory_throughput_pct", 1.0),
}
METRIC_SETS = {"lean": _LEAN, "full": _FULL}
# The counters without which the measurement says nothing about bytes.
REQUIRED = ("dram__bytes_read.sum", "gpu__time_duration.sum")


# ncu's defaults, written out because the figures mean that: every kernel starts from flushed
# caches (its reads are its own DRAM traffic) and runs at base clocks (ncu's durations are not the
# run's). Recorded in each NcuMeasurement.
CACHE_CONTROL = "all"
CLOCK_CONTROL = "base"


class NcuError(RuntimeError):
    """ncu could not measure; the message is one line saying why and what to do."""


def profile_command(ncu: str, metric_set: str, report_base: str, target: list[str]) -> list[str]:
    """ncu measuring only what runs between cudaProfilerStart and cudaProfilerStop in ``target``
    (torch.cuda.profiler.start/stop around one call), every kernel on its own with caches flushed
    (--cache-control all) and clocks at base (--clock-control base): ncu's defaults, written out
    because the figures mean that. Writes ``report_base``.ncu-rep."""
    return [ncu, "--profile-from-start", "off", "--target-processes", "all",
            "--cache-control", CACHE_CONTROL, "--clock-control", CLOCK_CONTROL,
            "--metrics", ",".join(METRIC_SETS[metric_set]),
            "--force-overwrite", "--export", report_base, *target]


def export_command(ncu: str, report_path: str) -> list[str]:
    """The report as CSV, one row per kernel, values in base units (bytes, ns, sectors)."""
    return [ncu, "--import", report_path, "--csv", "--page", "raw", "--print-units", "base",
            "--print-kernel-base", "demangled"]


_PERMISSION = "ERR_NVGPUCTRPERM"


def failure_line(output: str, returncode: int) -> str:
    """One line saying why an ncu run measured nothing, from its output."""
    if _PERMISSION in output:
        return ("ncu may not read the GPU's performance counters here (ERR_NVGPUCTRPERM): run as "
                "root or allow profiling for all users (NVreg_RestrictProfilingToAdminUsers=0), see "
                "https://developer.nvidia.com/ERR_NVGPUCTRPERM")
    # the measured program's own failure (a Python exception: out of memory, a missing module)
    # says more than ncu's "The application returned an error code"
    raised = re.findall(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.+)$", output, re.M)
    if raised:
        kind, message = raised[-1]
        return f"the measured call failed under ncu: {kind}: {message.strip()[:300]}"
    m = re.search(r"==ERROR==\s*(.+)", output)
    if m:
        return f"ncu failed: {m.group(1).strip()[:300]}"
    if "No kernels were profiled" in output:
        return ("ncu profiled no kernel: the measured range (cudaProfilerStart/Stop) saw no CUDA "
                "kernel")
    return f"ncu exited with status {returncode} and measured nothing"


def _number(text: str) -> float | None:
    text = (text or "").replace(",", "").strip()
    if not text or text.lower() in ("n/a", "nan"):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _dims(text: str) -> list[int]:
    values = [int(v) for v in re.findall(r"\d+", text or "")]
    return values if len(values) == 3 else []


def parse_csv(text: str, metric_set: str = "lean") -> tuple[list[NcuKernel], list[str]]:
    """ncu's ``--csv --page raw --print-units base`` output -> (kernels in ID order, metrics the
    report lacks). ncu's own ``==PROF==`` lines and the units row are skipped."""
    lines = [ln for ln in text.splitlines() if ln.startswith('"')]
    if not lines:
        raise NcuError("ncu's CSV export holds no kernel rows")
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    header, body = rows[0], rows[1:]
    if "Kernel Name" not in header or "ID" not in header:
        raise NcuError("ncu's CSV export has no 'ID' / 'Kernel Name' columns: not a --page raw export")
    col = {name: i for i, name in enumerate(header)}
    wanted = METRIC_SETS.get(metric_set, _FULL)
    missing = [m for m in wanted if m not in col]
    if any(m in missing for m in REQUIRED):
        raise NcuError(f"ncu's report lacks {', '.join(m for m in REQUIRED if m in missing)}: "
                       "the DRAM counters were not collected")
    kernels = []
    for r in body:
        if len(r) < len(header) or _number(r[col["ID"]]) is None:   # the units row, blank rows
            continue
        fields = {}
        for metric, (field, factor) in wanted.items():
            if metric in col:
                value = _number(r[col[metric]])
                fields[field] = value * factor if value is not None else None
        kernels.append(NcuKernel(index=int(_number(r[col["ID"]])), name=r[col["Kernel Name"]],
                                 grid=_dims(r[col["Grid Size"]]) if "Grid Size" in col else [],
                                 block=_dims(r[col["Block Size"]]) if "Block Size" in col else [],
                                 **fields))
    kernels.sort(key=lambda k: k.index)
    return kernels, missing


_TEMPLATE = re.compile(r"<[^<>]*>")
_PARAMS = re.compile(r"\([^()]*\)")


def base_name(name: str) -> str:
    """The kernel's function name without return type, namespaces, template arguments or
    parameters: what ncu and Kineto (CUPTI) agree on. They demangle differently: Kineto writes
    ``void at::native::vectorized_elementwise_kernel<8, at::native::CUDAFunctor_add<c10::Half>,
    std::array<char*, 3ul> >(int, ...)``, ncu ``void at::vectorized_elementwise_kernel<8,
    at::CUDAFunctor_add<c10::Half>, std::array<char *, 3>>(int, T2, T3)``; both give
    ``vectorized_elementwise_kernel``."""
    text = name.strip()
    previous = None
    while previous != text:       # innermost groups first, until none is left (lambdas nest both)
        previous = text
        text = _PARAMS.sub("", _TEMPLATE.sub("", text))
    text = text.split()[-1] if text.split() else text
    return text.rsplit("::", 1)[-1]


_PROFILED = re.compile(r"^==PROF== Profiling ", re.M)
_PASSES = re.compile(r"(\d+) pass(?:es)?\s*$", re.M)


def progress_line(output: str) -> str:
    """How far an ncu run got, from its own progress lines (``==PROF== Profiling "k" - 7: 0%...
    100% - 9 passes``), as a clause for a timeout's message: " (812 kernels measured by then, 9
    passes each)"; empty when ncu printed none."""
    kernels = len(_PROFILED.findall(output))
    if not kernels:
        return ""
    passes = _PASSES.findall(output)
    return f" ({kernels:,} kernels measured by then" + (f", {passes[-1]} passes each)" if passes else ")")


def tool_version(output: Iterable[str]) -> str:
    """'Nsight Compute 2025.3.1.0 (build 36398880)' from ``ncu --version``'s lines."""
    for line in output:
        m = re.search(r"Version\s+(\S+)\s*(\(build \d+\))?", line)
        if m:
            return f"Nsight Compute {m.group(1)} {m.group(2) or ''}".strip()
    return "Nsight Compute (version unknown)"

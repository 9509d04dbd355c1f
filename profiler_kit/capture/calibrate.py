"""The card's practical ceilings, measured: what a kernel built to reach each roof really
reaches here, to set beside the datasheet's peaks (conf/gpu/*.yaml). Capture side: imports torch.

    memory   a device-to-device copy, dst.copy_(src) of 1 GiB    bytes = 2 x size (read + write)
             an fp32 element-wise add, c = a + b of 1 GiB each    bytes = 3 x size (shown beside)
    compute  fp16 and bf16 GEMMs, 8192^3                          FLOPs = 2 M N K (tensor cores)
             an fp32 GEMM with TF32 off (CUDA cores) and on (TF32 tensor cores)

The memory roof is the copy's: it is what the DMA/copy engines and the simplest streaming
kernel reach, the ceiling the roofline's "memory-bound" means. The element-wise add (the shape of
most of a UNet's memory-bound kernels) is recorded beside it.

Each kernel is timed with CUDA events, call by call, after warm-up (clocks ramped, cuBLAS's
heuristics and workspace settled); the rate comes from the median call, and the IQR stays in the
record (records.StepStats). Everything is sized to fit a 16 GB card; a benchmark that runs out of
memory is halved until it fits or falls below its floor, then skipped with the reason, like a
dtype the card has no tensor cores for. On an H100/H200 the whole calibration takes a few
seconds; runs reuse it from the per-card cache (roof_cache.py).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping

import torch

from profiler_kit import cache_folder, units
from profiler_kit.capture import roof_cache
from profiler_kit.hardware import specs
from profiler_kit.config import CALIBRATE_MODES
from profiler_kit.records import MeasuredRoof, RoofCalibration, SkippedRoof, StepStats, write_record
from profiler_kit.run_folder import ROOFS_MEASURED_FILE

log = logging.getLogger("profiler_kit")

# 1 GiB per streamed operand, or 10x the card's L2 where that is more (L2_MULTIPLE;
# stream_bytes_for): at most a tenth of the bytes could be L2 hits (in practice far fewer: each
# byte is touched once per call); and ~0.5 ms per copy on an H200, long enough that launch and
# ramp (a few µs) cost under 1 %. 1 GiB covers every card up to 96 MiB of L2 (L40S, RTX 5090);
# Blackwell's B200 (126 MiB) and RTX PRO 6000 (128 MiB) get more, and have the memory for it.
STREAM_BYTES = 1 << 30
L2_MULTIPLE = 10
# Halving on out-of-memory stops here: still 2.7x the largest L2 (L40S), 4x an H200's.
MIN_STREAM_BYTES = 256 << 20
# 8192^3: 1.1 TFLOP, ~1.1 ms in fp16 on an H200 (many waves on every SM, tile-aligned for every
# tensor-core kernel); the three fp32 operands take 768 MiB.
GEMM_N = 8192
# Below this a GEMM is too short (2048^3 fp16: ~20 µs on an H200) to fill the machine for long.
MIN_GEMM_N = 2048
WARMUP_CALLS = 5         # untimed: clocks ramp up, cuBLAS picks and caches its kernel
REPEATS = 20             # timed calls per benchmark: median and IQR (torch.utils.benchmark style)
OOM_HALVINGS = 3         # 1 GiB -> 128 MiB at most before giving up (the floors stop earlier)

COMPUTE_KEYS = (("tensor", "fp16"), ("tensor", "bf16"), ("tensor", "tf32"), ("cuda", "fp32"))
MEMORY_KEYS = (("memory", "copy"), ("memory", "elementwise"))
_TORCH_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "tf32": torch.float32, "fp32": torch.float32}
# Tensor cores for each dtype arrived with: Volta (fp16), Ampere (bf16, tf32).
_TENSOR_CAPABILITY = {"fp16": ((7, 0), "Volta"), "bf16": ((8, 0), "Ampere"), "tf32": ((8, 0), "Ampere")}


@dataclass(frozen=True)
class _Bench:
    """One benchmark: ``build(device, size)`` allocates and returns (the call, its work in FLOPs
    or bytes, the method text); ``size`` is bytes per operand or the GEMM's n."""
    engine: str
    dtype: str
    size: int
    floor: int
    build: Callable[[torch.device, int], tuple[Callable[[], Any], float, str]]


def _size_text(nbytes: float) -> str:
    return units.bytes_binary(nbytes)


def _copy(device: torch.device, nbytes: int):
    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    return (lambda: dst.copy_(src)), 2.0 * nbytes, \
        f"dst.copy_(src), device-to-device, {_size_text(nbytes)}; bytes = 2 x size (read + write)"


def _elementwise(device: torch.device, nbytes: int):
    n = nbytes // 4
    a, b = torch.rand(n, device=device), torch.rand(n, device=device)
    c = torch.empty_like(a)
    return (lambda: torch.add(a, b, out=c)), 3.0 * n * 4, \
        f"torch.add(a, b, out=c), fp32, {_size_text(n * 4)} each; bytes = 3 x size (2 reads, 1 write)"


def _gemm(dtype: str, tf32: bool | None):
    """An n x n x n matmul in ``dtype``; ``tf32`` sets matmul.allow_tf32 for an fp32 GEMM."""
    def build(device: torch.device, n: int):
        # random operands: zeros would let the tensor cores draw less power and clock higher
        a = torch.randn(n, n, device=device, dtype=_TORCH_DTYPES[dtype])
        b = torch.randn(n, n, device=device, dtype=_TORCH_DTYPES[dtype])
        c = torch.empty_like(a)

        def call():
            with _allow_tf32(tf32):
                torch.mm(a, b, out=c)
        torch_name = "fp32" if dtype == "tf32" else dtype
        flag = "" if tf32 is None else f", matmul.allow_tf32={tf32}"
        return call, 2.0 * n ** 3, f"torch.mm {n}x{n}x{n} {torch_name}{flag}; FLOPs = 2 M N K"
    return build


@contextlib.contextmanager
def _allow_tf32(value: bool | None):
    """Set torch.backends.cuda.matmul.allow_tf32 for the GEMM, restore it after (the run's own
    tf32= setting must not change)."""
    if value is None:
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = value
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def benchmarks(stream_bytes: int = STREAM_BYTES, gemm_n: int = GEMM_N) -> list[_Bench]:
    """Every benchmark, memory first (the roof every run needs), at the given sizes."""
    stream_floor, gemm_floor = min(MIN_STREAM_BYTES, stream_bytes), min(MIN_GEMM_N, gemm_n)
    return [_Bench("memory", "copy", stream_bytes, stream_floor, _copy),
            _Bench("memory", "elementwise", stream_bytes, stream_floor, _elementwise),
            _Bench("tensor", "fp16", gemm_n, gemm_floor, _gemm("fp16", None)),
            _Bench("tensor", "bf16", gemm_n, gemm_floor, _gemm("bf16", None)),
            _Bench("tensor", "tf32", gemm_n, gemm_floor, _gemm("tf32", True)),
            _Bench("cuda", "fp32", gemm_n, gemm_floor, _gemm("fp32", False))]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls_ms(call: Callable[[], Any], device: torch.device, warmup: int, repeats: int) -> list[float]:
    """Each of ``repeats`` calls timed on its own (CUDA events on a GPU, perf_counter on a CPU),
    after ``warmup`` untimed ones. The calls are queued back to back, so a GPU runs them without
    gaps and each pair of events brackets exactly one kernel."""
    for _ in range(warmup):
        call()
    _synchronize(device)
    if device.type != "cuda":
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1e3)
        return times
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(repeats)]
    for start, end in events:
        start.record()
        call()
        end.record()
    _synchronize(device)
    return [start.elapsed_time(end) for start, end in events]


def _unsupported(bench: _Bench, capability: tuple[int, int] | None) -> str | None:
    """Why the card cannot run this benchmark on its tensor cores (None: it can)."""
    if bench.engine != "tensor" or capability is None:
        return None
    needed, arch = _TENSOR_CAPABILITY[bench.dtype]
    if capability < needed:
        return (f"no {bench.dtype.upper()} tensor cores on compute capability {capability[0]}.{capability[1]} "
                f"(they arrived with {arch}, {needed[0]}.{needed[1]})")
    return None


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _datasheet_per_s(spec: specs.GpuSpec | None, engine: str, dtype: str) -> float | None:
    if spec is None:
        return None
    if engine == "memory":
        return specs.memory_bandwidth_bytes_per_s(spec)
    return specs.peak_flops(spec, dtype, engine)


def _measure(bench: _Bench, device: torch.device, spec, warmup: int, repeats: int) -> MeasuredRoof | SkippedRoof:
    """Run one benchmark, halving its size on out-of-memory down to its floor."""
    size, why, tried = bench.size, "", []
    for _ in range(OOM_HALVINGS + 1):
        if size < bench.floor:
            break
        call = oom = None
        try:
            call, work, method = bench.build(device, size)
            times = time_calls_ms(call, device, warmup, repeats)
        except torch.cuda.OutOfMemoryError as exc:
            oom = (str(exc).strip().splitlines() or ["out of memory"])[0][:200]
        call = None                  # drop the operands (the closure holds them) before freeing
        _free(device)
        if oom is not None:
            why = oom
            tried.append(_size_text(size) if bench.engine == "memory" else f"n={size}")
            size //= 2
            continue
        stats = StepStats.of(times)
        return MeasuredRoof(engine=bench.engine, dtype=bench.dtype, work_per_call=work, time_ms=stats,
                            measured_per_s=work / (stats.median_ms * 1e-3), method=method,
                            datasheet_per_s=_datasheet_per_s(spec, bench.engine, bench.dtype))
    return SkippedRoof(engine=bench.engine, dtype=bench.dtype,
                       reason=f"out of memory at {', '.join(tried)} ({why})")


def stream_bytes_for(spec: specs.GpuSpec | None) -> int:
    """Bytes per streamed operand on this card: STREAM_BYTES, or L2_MULTIPLE x its L2 if more."""
    return max(STREAM_BYTES, L2_MULTIPLE * spec.l2_bytes) if spec is not None else STREAM_BYTES


def measure_roofs(device: torch.device, env: Mapping[str, Any], *, spec: specs.GpuSpec | None = None,
                  stream_bytes: int | None = None, gemm_n: int = GEMM_N,
                  warmup: int = WARMUP_CALLS, repeats: int = REPEATS) -> RoofCalibration:
    """Measure every roof this device has (see the module docstring). ``env`` is the run's
    environment record (environment.describe): its device name, driver, torch and CUDA versions
    key the cache. ``spec``: the datasheet figures set beside the measured ones (default: the
    conf/gpu spec matching the device name). The TF32 flag is restored afterwards."""
    start = time.perf_counter()
    device_name = roof_cache.identity(env)[0]
    if spec is None:
        spec = specs.match_spec(device_name)
    if stream_bytes is None:
        stream_bytes = stream_bytes_for(spec)
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    measured, skipped = [], []
    for bench in benchmarks(stream_bytes, gemm_n):
        reason = _unsupported(bench, capability)
        result = (SkippedRoof(engine=bench.engine, dtype=bench.dtype, reason=reason) if reason
                  else _measure(bench, device, spec, warmup, repeats))
        (skipped if isinstance(result, SkippedRoof) else measured).append(result)
    _, driver, torch_version, cuda = roof_cache.identity(env)
    return RoofCalibration(device_name=device_name, driver=driver, torch=torch_version, cuda=cuda,
                           measured_at=datetime.now().astimezone().isoformat(timespec="seconds"),
                           gpu_key=spec.key if spec else None, roofs=measured, skipped=skipped,
                           calibration_s=time.perf_counter() - start)


def summary_line(cal: RoofCalibration) -> str:
    """One line for the log: each measured roof, and its share of the datasheet's."""
    parts = []
    for r in cal.roofs:
        value = (units.gb_per_s(r.measured_per_s / 1e9) if r.engine == "memory"
                 else units.tflops_per_s(r.measured_per_s / 1e12))
        share = f" ({units.percent(r.measured_fraction, 0)} of datasheet)" if r.measured_fraction else ""
        parts.append(f"{r.dtype if r.engine == 'memory' else r.dtype + ' ' + r.engine} {value}{share}")
    skipped = f"; skipped {', '.join(f'{s.dtype} {s.engine}' for s in cal.skipped)}" if cal.skipped else ""
    return f"measured roofs of {cal.device_name}: {'; '.join(parts)}{skipped}"



def calibration_for_run(calibrate: str, device: torch.device, env: Mapping[str, Any], run_dir: str,
                        warnings: list, measure: Callable[..., RoofCalibration] = measure_roofs
                        ) -> RoofCalibration | None:
    """The measured roofs a run uses, copied into its folder as roofs_measured.json (None: none).

    calibrate: "auto" (CUDA devices only; reuse the cache when it holds this card with this
    driver, torch and CUDA), "always" (measure again, overwrite the cache) or "never". A failed
    measurement or an unwritable cache is a warning: the run goes on against the datasheet."""
    if calibrate not in CALIBRATE_MODES:
        raise ValueError(f"calibrate={calibrate}: use one of {', '.join(CALIBRATE_MODES)}")
    if calibrate == "never" or device.type != "cuda":
        return None
    cal, why = roof_cache.load(env) if calibrate == "auto" else (None, "calibrate=always")
    if cal is None:
        log.info("measuring the card's roofs (%s)...", why)
        try:
            cal = measure(device, env)
        except Exception as exc:  # the run does not depend on it: the datasheet still judges
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            warnings.append(f"measuring the roofs failed ({type(exc).__name__}: {first}): judged against the datasheet")
            log.warning("%s", warnings[-1])
            return None
        try:
            roof_cache.store(cal)
        except OSError as exc:
            warnings.append(f"measured roofs not cached ({roof_cache.cache_path(cal.device_name)}: "
                            f"{exc.strerror or exc}); set {cache_folder.CACHE_ENV} to a writable folder")
        log.info("%s (%.1f s)", summary_line(cal), cal.calibration_s)
    else:
        log.info("%s; %s", summary_line(cal), why)
    write_record(os.path.join(run_dir, ROOFS_MEASURED_FILE), cal)
    return cal

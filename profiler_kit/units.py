"""Units for reading, shared by the findings (analysis) and the report.

The data keeps base units (µs, bytes, FLOPs, as in docs/data-contracts.md); only the report picks
a unit, here, so every number on the page goes through the same few rules. Bytes use binary
units (GiB) for memory capacities, which is how nvidia-smi and torch.cuda report them, and
decimal units (GB/s) for bandwidth, which is how datasheets quote it.
"""

from __future__ import annotations

import math
import re
from typing import Any

_DASH = "–"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _num(value: float, digits: int = 3) -> str:
    """Three significant figures: enough to compare, few enough to read."""
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def duration_us(us: float | None) -> str:
    """A duration given in µs, shown as ns, µs, ms or s."""
    if _missing(us):
        return _DASH
    a = abs(us)
    if a == 0:
        return "0 µs"
    if a < 1:
        return f"{_num(us * 1e3)} ns"
    if a < 1e3:
        return f"{_num(us)} µs"
    if a < 1e6:
        return f"{_num(us / 1e3)} ms"
    return f"{_num(us / 1e6)} s"


def duration_ms(ms: float | None) -> str:
    return _DASH if _missing(ms) else duration_us(ms * 1e3)


_BINARY_BYTES = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))
_DECIMAL_BYTES = (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3))
_FLOPS = (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3))


def _scaled(n: float, units: tuple[tuple[str, float], ...]) -> str | None:
    """n in the largest of `units` (largest first) it reaches; None below the smallest."""
    a = abs(n)
    for unit, scale in units:
        if a >= scale:
            return f"{_num(n / scale)} {unit}"
    return None


def bytes_binary(n: float | None) -> str:
    """Memory sizes: KiB, MiB, GiB (what torch.cuda.max_memory_allocated users expect)."""
    return _DASH if _missing(n) else _scaled(n, _BINARY_BYTES) or f"{int(n)} B"


def bytes_decimal(n: float | None) -> str:
    """Traffic volumes: kB, MB, GB, TB, consistent with GB/s bandwidth figures."""
    return _DASH if _missing(n) else _scaled(n, _DECIMAL_BYTES) or f"{int(n)} B"


def flops(n: float | None) -> str:
    return _DASH if _missing(n) else _scaled(n, _FLOPS) or f"{_num(n)} FLOP"


def tflops_per_s(tflops: float | None) -> str:
    return _DASH if _missing(tflops) else f"{_num(tflops)} TFLOP/s"


def gb_per_s(gbps: float | None) -> str:
    return _DASH if _missing(gbps) else f"{_num(gbps)} GB/s"


def percent(fraction: float | None, digits: int = 1) -> str:
    return _DASH if _missing(fraction) else f"{fraction * 100:.{digits}f} %"


def speedup(ratio: float | None) -> str:
    return _DASH if _missing(ratio) else f"{ratio:.2f}×"


def count(n: float | None) -> str:
    return _DASH if _missing(n) else f"{int(n):,}"


def plural(n: int, noun: str) -> str:
    """'1 call', '20 calls', '1,271 kernels'."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def share(part: float | None, whole: float | None) -> float | None:
    """part / whole, or None where that means nothing (no whole to divide by)."""
    if _missing(part) or _missing(whole) or not whole:
        return None
    return part / whole


# Wrapper kernels whose own name says little: the functor or tile config inside their template
# arguments is what tells them apart (elementwise_kernel<..., CUDAFunctor_add<...>>).
_GENERIC_KERNEL = re.compile(r"(^Kernel\d*$|elementwise_kernel$|reduce_kernel$|apply_kernel$)")
_NOISE = frozenset("""at native anonymous namespace gpu_kernel_impl gpu_kernel_impl_nocast detail
    Array array std char int float double long bool unsigned c10 Half BFloat16 lambda operator
    const void TensorIteratorBase TensorIterator templates cuda func_wrapper_t ReduceOp
    OpaqueType TensorListMetadata BinaryFunctor u ul""".split())


def short_kernel_name(name: str | None) -> str:
    """A kernel's readable core: no return type, namespaces, template or call arguments.

    "void at::native::(anonymous namespace)::cunn_SoftMaxForward<8, c10::Half>(c10::Half*, int)"
    becomes "cunn_SoftMaxForward"; a generic wrapper keeps what it wraps:
    "elementwise_kernel<CUDAFunctor_add>". The full name stays beside it in the report.
    """
    if not name:
        return "?"
    stack: list[str] = []
    core = []
    prev = ""
    for ch in name:              # drop what sits inside <...> and name(...), nested or not
        opens = ch == "<" or (ch == "(" and prev not in " ")
        if opens and (ch == "<" or prev):
            stack.append(ch)
        elif ch == ">" and prev != "-" and stack and stack[-1] == "<":
            stack.pop()
        elif ch == ")" and stack and stack[-1] == "(":
            stack.pop()
        elif not stack:
            core.append(ch)
        prev = ch
    text = "".join(core).strip()
    if text.startswith("void "):
        text = text[5:]
    text = text.split("::")[-1].strip() or name[:60]
    if _GENERIC_KERNEL.search(text):
        inner = name[name.find("<") + 1:] if "<" in name else ""
        words = [w for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", inner) if w not in _NOISE]
        if words:
            text = f"{text}<{words[0][:72]}>"
    return text


# How each execution mode (config `execution`) is named in findings and reports.
EXECUTION_LABELS = {"eager": "eager", "cuda_graphs": "CUDA-graph replay", "compile": "torch.compile"}


_ATTENTION_KERNEL_WORDS = ("flash", "fmha", "attention", "sdpa", "softmax", "attn", "cutlass")


def attention_kernel_names(names: list[str], limit: int = 4) -> str:
    """Short, de-duplicated names of the attention kernels in a mode's list (the list also holds
    the q/k/v projection GEMMs of the attention modules)."""
    short = list(dict.fromkeys(short_kernel_name(n) for n in names
                               if any(w in n.lower() for w in _ATTENTION_KERNEL_WORDS)))
    short = short or list(dict.fromkeys(short_kernel_name(n) for n in names))
    return ", ".join(short[:limit]) + (f" and {len(short) - limit} more" if len(short) > limit else "") or "not recorded"

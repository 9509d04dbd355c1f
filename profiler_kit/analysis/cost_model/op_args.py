"""Reading the ``args`` of a Kineto CPU-op event: shapes, dtypes and concrete values.

``torch.profiler(record_shapes=True)`` stores, per op call, three parallel lists:

* ``"Input Dims"``: one shape per argument, ``[]`` for non-tensors (and for 0-dim tensors),
  a list of shapes for a ``TensorList`` (``aten::cat``);
* ``"Input type"``: ``"c10::Half"``, ``"float"``, ``"c10::BFloat16"`` ... for tensors,
  ``"Scalar"``, ``"ScalarList"``, ``"TensorList"``, ``""`` (None) for the rest;
* ``"Concrete Inputs"``: the value of scalar arguments as text (``"[16, 16]"``, ``"1"``,
  ``"False"``, ``"0."``), ``""`` for tensors.

No torch import: the analyzer must start fast on a machine without it.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any, Sequence

# Kineto's C++ type names -> (our dtype label, bytes per element).
DTYPES: dict[str, tuple[str, int]] = {
    "c10::Half": ("fp16", 2),
    "c10::BFloat16": ("bf16", 2),
    "float": ("fp32", 4),
    "double": ("fp64", 8),
    "c10::Float8_e4m3fn": ("fp8_e4m3", 1),
    "c10::Float8_e5m2": ("fp8_e5m2", 1),
    "c10::Float8_e4m3fnuz": ("fp8_e4m3", 1),
    "c10::Float8_e5m2fnuz": ("fp8_e5m2", 1),
    # two FP4 (e2m1) values packed per byte: the recorded shape counts bytes, not values
    "c10::Float4_e2m1fn_x2": ("fp4", 1),
    "signed char": ("int8", 1),
    "unsigned char": ("uint8", 1),
    "short int": ("int16", 2),
    "short": ("int16", 2),
    "int": ("int32", 4),
    "long int": ("int64", 8),
    "long": ("int64", 8),
    "long long": ("int64", 8),
    "int64_t": ("int64", 8),
    "bool": ("bool", 1),
    "c10::complex<c10::Half>": ("complex32", 4),
    "c10::complex<float>": ("complex64", 8),
    "c10::complex<double>": ("complex128", 16),
}

# c10::ScalarType enum values, as they appear in "Concrete Inputs" for a dtype argument
# (aten::_to_copy, aten::empty, aten::softmax's dtype=...).
SCALAR_TYPES: dict[int, tuple[str, int]] = {
    0: ("uint8", 1), 1: ("int8", 1), 2: ("int16", 2), 3: ("int32", 4), 4: ("int64", 8),
    5: ("fp16", 2), 6: ("fp32", 4), 7: ("fp64", 8), 11: ("bool", 1), 15: ("bf16", 2),
    23: ("fp8_e5m2", 1), 24: ("fp8_e4m3", 1), 25: ("fp8_e5m2", 1), 26: ("fp8_e4m3", 1),
}

DTYPE_BYTES: dict[str, int] = {label: size for label, size in DTYPES.values()}
DTYPE_BYTES["tf32"] = 4  # stored as fp32; TF32 is a math mode, not a storage type

FLOAT_DTYPES = ("fp64", "fp32", "bf16", "fp16", "fp8_e4m3", "fp8_e5m2")


@dataclass(frozen=True)
class Arg:
    """One argument of an op call."""

    shape: tuple[int, ...] | None   # None: not a tensor
    dtype: str | None               # our label, None when unknown / not a tensor
    concrete: Any                   # parsed concrete value (int, float, bool, list, str) or None
    shapes: tuple[tuple[int, ...], ...] = ()   # the members of a TensorList

    @property
    def is_tensor(self) -> bool:
        return self.shape is not None

    @property
    def numel(self) -> int:
        return math.prod(self.shape) if self.shape is not None else 0

    @property
    def itemsize(self) -> int:
        return DTYPE_BYTES.get(self.dtype or "", 0)

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize


def parse_concrete(text: Any) -> Any:
    """``"[16, 16]"`` -> [16, 16]; ``"1"`` -> 1; ``"0."`` -> 0.0; ``"False"`` -> False; ``""`` -> None."""
    if not isinstance(text, str):
        return text
    text = text.strip()
    if text == "":
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # e.g. "cuda:0", "same", "contiguous_format"


def _is_shape(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and all(isinstance(d, int) for d in x)


def parse_args(input_dims: Sequence[Any] | None, input_types: Sequence[Any] | None,
               concrete_inputs: Sequence[Any] | None) -> list[Arg]:
    """Zip the three Kineto lists into :class:`Arg` records (missing lists count as empty)."""
    dims = list(input_dims or [])
    types = list(input_types or [])
    concretes = list(concrete_inputs or [])
    n = max(len(dims), len(types))
    out = []
    for i in range(n):
        d = dims[i] if i < len(dims) else []
        t = types[i] if i < len(types) else ""
        c = parse_concrete(concretes[i]) if i < len(concretes) else None
        if t in DTYPES and _is_shape(d):
            out.append(Arg(shape=tuple(d), dtype=DTYPES[t][0], concrete=c))
        elif t == "TensorList" or (isinstance(d, list) and d and all(_is_shape(x) for x in d)
                                    and any(isinstance(x, list) for x in d)):
            shapes = tuple(tuple(x) for x in d if _is_shape(x))
            out.append(Arg(shape=None, dtype=None, concrete=c, shapes=shapes))
        else:
            out.append(Arg(shape=None, dtype=None, concrete=c))
    return out


def scalar_type(value: Any) -> tuple[str, int] | None:
    """A concrete dtype argument (c10::ScalarType code) -> (label, itemsize), else None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return SCALAR_TYPES.get(value)


def promote(dtypes: Sequence[str | None]) -> str | None:
    """Result dtype of an element-wise op, close to torch's type promotion.

    Mixed fp16 + bf16 promotes to fp32 (as torch does); any float beats integers and bool.
    """
    present = [d for d in dtypes if d]
    if not present:
        return None
    floats = [d for d in present if d in FLOAT_DTYPES]
    if floats:
        if "fp64" in floats:
            return "fp64"
        if "fp32" in floats or ("fp16" in floats and "bf16" in floats):
            return "fp32"
        for d in ("bf16", "fp16", "fp8_e4m3", "fp8_e5m2"):
            if d in floats:
                return d
    for d in ("complex128", "complex64", "int64", "int32", "int16", "int8", "uint8", "bool"):
        if d in present:
            return d
    return present[0]


def broadcast(shapes: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """NumPy/torch broadcast of several shapes (sizes of 1 stretch; mismatches take the max)."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        size = 1
        for s in shapes:
            j = i - (ndim - len(s))
            if j >= 0 and s[j] != 1:
                size = max(size, s[j])
        out.append(size)
    return tuple(out)


def ints(value: Any, ndim: int, default: int) -> tuple[int, ...]:
    """A conv stride/padding/dilation argument -> one int per spatial dim."""
    if value is None:
        return (default,) * ndim
    if isinstance(value, bool):
        return (int(value),) * ndim
    if isinstance(value, int):
        return (value,) * ndim
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) for v in value):
        vals = tuple(int(v) for v in value)
        return vals if len(vals) == ndim else (vals[0],) * ndim
    return (default,) * ndim

"""The base of every record and the one writer and reader of record files: ``Record`` (frozen,
keyword-only, JSON via msgspec), ``RecordError``, atomic writing, ``schema_version`` checked on
read. No torch import: the analyzer, the report and other tools read these."""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import tempfile
import zlib
from pathlib import Path
from typing import Any, Callable, TypeVar

import msgspec

SCHEMA_VERSION = 2

class RecordError(ValueError):
    """An artifact that cannot be read; the message is one line saying what to do."""


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every artifact record: immutable, keyword-only, JSON via msgspec."""

    def to_builtins(self) -> dict:
        return msgspec.to_builtins(self)

# --------------------------------------------------------------------------------------------
# Writing: one atomic writer for every file the toolkit produces
# --------------------------------------------------------------------------------------------

def write_atomic(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """``write(tmp)`` fills a temporary file beside ``path``, which is then renamed onto it:
    readers never see half a file, and an interrupted write leaves the old one in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)        # mkstemp makes it private; outputs are for sharing
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return write_atomic(path, write)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: a figure that is not finite is written as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def to_json(record: Record) -> str:
    return json.dumps(_finite(msgspec.to_builtins(record)), indent=1, allow_nan=False,
                      ensure_ascii=False) + "\n"


def write_record(path: str | os.PathLike, record: Record) -> Path:
    """The one JSON writer: summary.json, analysis.json, comparison.json."""
    return write_text_atomic(path, to_json(record))

# --------------------------------------------------------------------------------------------
# Reading, with the schema version checked
# --------------------------------------------------------------------------------------------

R = TypeVar("R", bound=Record)


def _load(path: str | os.PathLike) -> dict:
    try:
        raw = Path(path).read_bytes()
        data = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    except OSError as exc:
        raise RecordError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, EOFError, zlib.error) as exc:   # EOFError, zlib.error: a damaged gzip
        raise RecordError(f"{path} is not valid JSON ({exc}): was it written by profiler_kit?") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path} holds a JSON {type(data).__name__}, not a profiler_kit record")
    return data


def _convert(data: dict, kind: type[R], where: str) -> R:
    version = data.get("schema_version")
    if version is not None and (not isinstance(version, int) or version > SCHEMA_VERSION):
        raise RecordError(f"{where} has schema_version {version}, newer than this profiler_kit reads "
                          f"({SCHEMA_VERSION}): upgrade profiler_kit")
    try:
        return msgspec.convert(data, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise RecordError(f"{where} is not a valid {kind.__name__} record: {exc}") from None

# Sizes as PyTorch prints them (its OOM message); schema 1 stored them as text.

_SIZE = re.compile(r"([0-9.]+)\s*([KMGT]?)(i?)B")


def parse_size_bytes(text: str | None) -> int | None:
    """'12.50 GiB' (PyTorch's OOM message) -> bytes; None if there is no size in it."""
    m = _SIZE.search(text or "")
    if not m:
        return None
    power = " KMGT".index(m.group(2) or " ")
    return int(float(m.group(1)) * (1024 if m.group(3) else 1000) ** power)

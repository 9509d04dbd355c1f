"""kernels.csv written fast: one row per GPU activity, byte-for-byte what ``csv.writer`` writes.

Why not csv.writer: on an op-heavy trace (16k kernels) it spent a quarter of the whole analysis
scanning the same long kernel names, op shapes and scope paths for characters to quote, row
after row. Here each distinct text is escaped once (a dict hit afterwards) and each row is one
``join``; a table given as columns (``write_columns``) is converted a column at a time, each a
C-level map. The rules are csv's defaults (QUOTE_MINIMAL, ``"`` doubled, ``\\r\\n`` line ends), so
readers see no difference; tests compare against csv.reader.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np


def _escape(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


class _Escaped(dict):
    """text -> its CSV field; escaped on first sight only (C-level lookup afterwards)."""

    def __missing__(self, text: str) -> str:
        field = self[text] = _escape(text)
        return field


def write_rows(f, header: Iterable[str], rows: Iterable[tuple]) -> None:
    """Write header and rows to the text file ``f`` (opened with newline="")."""
    esc = _Escaped()
    f.write(",".join(_escape(h) for h in header) + "\r\n")
    write = f.write
    lines = []
    for row in rows:
        # csv.writer writes str() of numbers and bools, "" for None; texts are escaped
        lines.append(",".join([esc[v] if type(v) is str else ("" if v is None else str(v))
                               for v in row]))
        if len(lines) >= 4096:
            write("\r\n".join(lines) + "\r\n")
            lines.clear()
    if lines:
        write("\r\n".join(lines) + "\r\n")


class Rendered(list):
    """A column of field texts already escaped, possibly several CSV columns joined by commas
    (one text per distinct kernel, op or launch shape, mapped to the rows): written as they
    are. Why: on a trace of 300k kernels, joining 18 fields per row was a second of the write;
    columns that only repeat per distinct value are joined once per distinct value instead."""


def float_fields(values) -> Rendered:
    """A float64 array as CSV fields, ``str`` of each (what csv.writer writes), formatted once
    per distinct bit pattern: kernel durations and per-kernel estimates repeat every step, and
    float repr was a fifth of the write. Bit patterns, not values, so -0.0 and each NaN keep
    their own text."""
    bits, at = np.unique(np.ascontiguousarray(values, dtype=np.float64).view(np.int64),
                         return_inverse=True)
    texts = list(map(str, bits.view(np.float64).tolist()))
    return Rendered(map(texts.__getitem__, at.reshape(-1).tolist()))


def escaper() -> _Escaped:
    """text -> its CSV field, memoised: what builders of :class:`Rendered` columns escape with."""
    return _Escaped()


def _column_fields(values: list, esc: _Escaped) -> list[str]:
    if isinstance(values, Rendered):
        return values
    kinds = set(map(type, values))
    if kinds == {str}:
        return list(map(esc.__getitem__, values))
    if kinds <= {int, float, bool}:
        return list(map(str, values))
    return [esc[v] if type(v) is str else ("" if v is None else str(v)) for v in values]


def write_columns(f, header: Iterable[str], columns: list[list], esc: _Escaped | None = None) -> None:
    """Write header and a table given as equally long columns (lists), as write_rows would;
    a :class:`Rendered` column stands for as many header columns as it joins."""
    esc = esc if esc is not None else _Escaped()
    f.write(",".join(_escape(h) for h in header) + "\r\n")
    fields = [_column_fields(col, esc) for col in columns]
    n = len(fields[0]) if fields else 0
    for start in range(0, n, 65536):
        lines = map(",".join, zip(*(col[start:start + 65536] for col in fields)))
        f.write("\r\n".join(lines) + "\r\n")

"""The text of a trace's event array cut at event boundaries: into batches of about a megabyte
(one typed decode each) and into a few large ranges (one worker process each).

Why cut the text rather than decode it whole: no per-event object of the whole trace ever exists
at once, so memory stays bounded whatever the events hold (a million empty ``{}`` events cost no
more than their text), and separate ranges can be decoded by separate processes.

A cut is found with a regular expression (``}`` ``,`` ``{``), which can also match inside a
string (an event name holding "},{"). Such a cut leaves the batch ending inside an unterminated
string, which never decodes: the batch is then extended to the next match. Each batch is decoded
once, by the caller's typed decoder; only a batch that fails is decoded again, as raw JSON, to
tell a cut inside a string (not JSON: extend) from an event of odd field types (JSON: the
caller's fallback decodes it event by event).
"""

from __future__ import annotations

import re
from typing import Callable, Iterator, TypeVar

import msgspec

from profiler_kit.trace.file import TraceError

T = TypeVar("T")

# Where one event object may end and the next begin.
_BOUNDARY = re.compile(rb"\}\s*,\s*\{")
_BATCH_BYTES = 1 << 20    # text per typed decode: about 3,000 real events, a few MB of structs


def elements(events: memoryview) -> tuple[int, int]:
    """(start, end) of the elements inside the array's brackets: events[start:end]."""
    return 1, len(events) - 1


def _cut_after(events: memoryview, start: int, end: int) -> tuple[int, int]:
    """(cut, next start) of the batch that starts at ``start``, by the text alone: the first
    boundary at least _BATCH_BYTES on. cut == end for the last batch."""
    probe = start + _BATCH_BYTES
    m = _BOUNDARY.search(events, probe, end) if probe < end else None
    return (m.start() + 1, m.end() - 1) if m else (end, end)


def ranges(events: memoryview, count: int) -> list[tuple[int, int]]:
    """The elements cut into ``count`` (or fewer) ranges of about equal size, each cut where a
    one-range read cuts a batch (so each range decodes the same batches a one-range read does,
    and interns names in the same order: the merged trace is the same, id for id). The cuts
    are found by the text alone; a cut inside a string makes the range before it fail
    (``batches(strict=True)``), and the caller reads the file as one range instead."""
    start, end = elements(events)
    out, lo, pos = [], start, start
    for k in range(1, count):
        target = start + (end - start) * k // count
        while pos < target:
            cut, pos = _cut_after(events, pos, end)
        if pos >= end:
            break
        if pos == lo:            # this range would be empty: the batches are larger
            continue
        out.append((lo, cut))
        lo = pos
    out.append((lo, end))
    return out


class CutMoved(Exception):
    """A batch of a range other than the last had to be extended (a cut inside a string): the
    batches no longer match a one-range read's, so the ranges are given up."""


def batches(path: str, events: memoryview, start: int, end: int,
            decode: Callable[[bytes], T], strict: bool = False) -> Iterator[T]:
    """decode(text) for each batch of events[start:end], the text a JSON array of whole elements.

    ``decode`` raises msgspec.DecodeError when the text is not JSON (the cut fell inside a
    string): the batch is extended to the next boundary (strict: CutMoved instead). Past
    ``end`` it cannot be: TraceError.
    """
    while start < end:
        probe = start + _BATCH_BYTES
        while True:
            m = _BOUNDARY.search(events, probe, end) if probe < end else None
            cut = m.start() + 1 if m else end
            text = b"[" + events[start:cut] + b"]"
            try:
                yield decode(text)
                break
            except msgspec.DecodeError:
                if strict:
                    raise CutMoved from None
                if cut >= end:
                    raise TraceError(f"{path}: not valid JSON in the event array; the trace "
                                     "may be truncated, re-export it") from None
                probe = cut + 1      # the boundary was inside a string: extend the batch
            except RecursionError:
                raise TraceError(f"{path}: JSON nested too deeply to be a trace; pass a trace "
                                 "written by torch.profiler") from None
        start = cut + 1 if cut < end else end
        if start < end:
            start = m.end() - 1      # the "{" that opens the next event

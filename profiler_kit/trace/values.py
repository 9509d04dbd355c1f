"""Every value a trace event gives the reader, checked where it is read.

Why: the analysis sums durations and subtracts timestamps in int64 nanoseconds. One negative
duration makes a negative kernel total, one id past 2**63 overflows numpy, one event stamped at 0
among events stamped in 2026 stretches the window to 54 years. A value outside what any real
capture can hold is therefore dropped (the event) or read as unknown (the field), and counted by
reason: the counts become the analysis's warnings ("skipped 3 events: negative duration"), so a
result never hides what it left out.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
# Kineto stamps events in µs, since the epoch (about 1.7e15 today) or since boot. No real stamp
# is negative or later than 2100-01-01 (4.1e15 µs since the epoch).
MAX_TS_US = 4.1e15
# No profiled range lasts a day (an SD run's capture lasts seconds to minutes): a longer event
# or a longer window is a corrupt stamp, not a measurement. 1 day also keeps every ns figure
# far inside int64 (8.64e13 ns).
MAX_DUR_US = 86_400e6
MAX_WINDOW_US = 86_400e6
# No device holds a petabyte: a [memory] figure beyond it is corrupt.
MAX_MEMORY_BYTES = 2**50

NEGATIVE_DURATION = "negative duration"
LONG_DURATION = "duration over a day"
BAD_TIMESTAMP = "timestamp negative or past 2100"
OUTSIDE_WINDOW = "more than a day away from the rest of the trace"
BAD_MEMORY = "memory figure negative or over a petabyte"
ID_OUT_OF_RANGE = "id past 64 bits, read as unknown"
NOT_UTF8 = "text not UTF-8"
BAD_LAUNCH_DIMS = "grid/block not 1..2^31-1, read as unknown"
# HTA's cupti_profiler traces: torch.profiler(experimental_config=_ExperimentalConfig(
# profiler_metrics=[...])) replays each kernel under CUPTI's range profiler and writes one
# cuda_profiler_range event per kernel, its counters (smsp__sass_thread_inst_executed_op_*) in
# args. They are measurements, but of a replay: the durations are not the run's, and such traces
# hold no kernel event to join them to. Said plainly rather than dropped in silence.
PROFILER_RANGE = ("cuda_profiler_range (CUPTI range-profiler counters per kernel, measured in a "
                  "profiler replay): not read; their durations are replay times and the trace has "
                  "no kernel to join them to (Nsight Compute's measurement joins with --ncu)")


def event_time_ok(ts: float, dur: float, counts: Counter) -> bool:
    """Whether an event's ts/dur can be analysed; counts the reason when not."""
    if not 0.0 <= ts <= MAX_TS_US:
        counts[BAD_TIMESTAMP] += 1
        return False
    if dur < 0.0:
        counts[NEGATIVE_DURATION] += 1
        return False
    if dur > MAX_DUR_US:
        counts[LONG_DURATION] += 1
        return False
    return True


_NONE = type(None)
_INT64_MIN = -2**63


def int64_or(values, counts: Counter, default: int = -1) -> np.ndarray:
    """Ints as int64; anything else reads as ``default``, and an int past 64 bits is counted.

    The usual column (ints, some None) converts in C: the types are gathered by one C pass, and
    only a column holding another type or an int past 64 bits takes the item-by-item loop."""
    kinds = set(map(type, values))
    if kinds <= {int, _NONE}:
        plain = [default if v is None else v for v in values] if _NONE in kinds else values
        try:
            out = np.asarray(plain, dtype=np.int64)
        except OverflowError:        # an int past 64 bits: counted below
            pass
        else:
            if not len(out) or int(out.min()) != _INT64_MIN:   # -2**63 is out of range too
                return out
    out = []
    for v in values:
        if type(v) is int:
            if -INT64_MAX <= v <= INT64_MAX:
                out.append(v)
                continue
            counts[ID_OUT_OF_RANGE] += 1
        out.append(default)
    return np.asarray(out, dtype=np.int64)


def dim3(values, counts: Counter) -> np.ndarray:
    """Launch dimensions as int32 (n, 3), 0 unknown. A list of 1 to 3 ints in 1..2^31-1 is read;
    a string (Inductor's "grid(100,)") is unknown without a warning; any other list is counted.

    The usual column (lists of three ints, or no dims at all) converts in C; any other shape
    takes the item-by-item loop."""
    kinds = set(map(type, values))
    if not kinds or kinds == {_NONE}:
        return np.zeros((len(values), 3), dtype=np.int32)
    if kinds == {list}:
        try:
            fast = np.asarray(values, dtype=np.int64)
        except (ValueError, OverflowError, TypeError):   # ragged, past 64 bits, not ints
            fast = None
        if (fast is not None and fast.ndim == 2 and fast.shape[1] == 3
                and fast.dtype == np.int64 and bool(((fast >= 1) & (fast <= INT32_MAX)).all())):
            return fast.astype(np.int32)
    out = np.zeros((len(values), 3), dtype=np.int32)
    for i, v in enumerate(values):
        if type(v) is not list or not v:
            continue
        if len(v) <= 3 and all(type(x) is int and 1 <= x <= INT32_MAX for x in v):
            out[i, :len(v)] = v
        else:
            counts[BAD_LAUNCH_DIMS] += 1
    return out


def memory_ok(nbytes, allocated, reserved, counts: Counter) -> bool:
    """A [memory] event whose sizes a device can hold (Bytes may be negative: a free)."""
    for v in (nbytes, allocated, reserved):
        if type(v) is int and not -MAX_MEMORY_BYTES <= v <= MAX_MEMORY_BYTES:
            counts[BAD_MEMORY] += 1
            return False
    for v in (allocated, reserved):
        if type(v) is int and v < 0:
            counts[BAD_MEMORY] += 1
            return False
    return True


def window_keep(ts_columns: list[np.ndarray], counts: Counter) -> list[np.ndarray] | None:
    """Masks that keep the events within MAX_WINDOW_US of the median stamp, or None when the
    whole trace already fits in the window (the usual case: nothing is copied)."""
    sizes = [len(c) for c in ts_columns]
    if not sum(sizes):
        return None
    lo = min(float(c.min()) for c in ts_columns if len(c))
    hi = max(float(c.max()) for c in ts_columns if len(c))
    if hi - lo <= MAX_WINDOW_US:
        return None
    centre = float(np.median(np.concatenate(ts_columns)))
    masks = [np.abs(c - centre) <= MAX_WINDOW_US / 2 for c in ts_columns]
    dropped = sum(int((~m).sum()) for m in masks)
    if dropped:
        counts[OUTSIDE_WINDOW] += dropped
    return masks


def warning_lines(counts: Counter) -> list[str]:
    """'skipped 3 events: negative duration' lines, largest count first."""
    lines = []
    for reason, n in counts.most_common():
        noun = "value" if "read as unknown" in reason else "event"
        lines.append(f"{'read' if noun == 'value' else 'skipped'} {n} {noun}{'s' if n != 1 else ''}"
                     f"{' as unknown' if noun == 'value' else ''}: "
                     f"{reason.replace(', read as unknown', '')}")
    return lines

"""Work on ranges of a big trace's text in forked worker processes, one range each.

Why processes: decoding the event array is most of the reader's time (7.6 s for a 1 GB trace
on the development machine), it is CPU-bound Python per event, and the GIL keeps threads on one
core. Forked children see the parent's text without a copy (copy-on-write pages, never
written); each decodes its range into compact columns and sends them back pickled (about a
tenth of the text's size), and the parent decodes the first range meanwhile.

When it is used (``process_count``): only where the machine gives this process more than one
core and the text is big enough that each range holds at least MIN_RANGE_BYTES. Only with the
``fork`` start method (Linux): a spawned child would have to import everything and be sent the
text, which costs more than it saves.
"""

from __future__ import annotations

import os
import pickle
import sys
from typing import Callable, TypeVar

T = TypeVar("T")

# The least text worth a worker. Forking a 100-200 MB process, sending its columns back and
# merging them cost the parent about 0.01-0.05 s (measured on the development machine, 2
# cores); the reader decodes 130-210 MB of real trace text a second, so a 32 MiB range saves up
# to about 0.2 s of wall time, several times the cost, when the second core is free. On a
# shared machine it often is not: two processes on 30-60 MB traces halved the parent's CPU time
# but seldom the wall time (docs/benchmarks.md, 2026-12-06). Hence the margin: below two such
# ranges (64 MiB of text) the trace is read in one process; the 1 GB trace gains 7.6 -> 4.3 s.
MIN_RANGE_BYTES = 32 << 20


class WorkerFailed(Exception):
    """A worker ended without a result (its error, or it died): the caller reads in one range."""


def cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def fork_is_safe() -> bool:
    """False in a process that has imported torch: the capture process analyses its own run
    folder after profiling, with CUDA's and OpenMP's threads started, and a fork copies any lock
    another thread holds at that moment, locked for good in the child (Python warns of forking a
    multi-threaded process for this reason). ``analyze`` on its own never imports torch."""
    return "torch" not in sys.modules


def process_count(n_bytes: int, requested: int | None = None) -> int:
    """How many ranges (processes, the caller's included) to read ``n_bytes`` of text in.
    requested: a fixed count (tests; 1 reads in one process), else one per core, each range
    at least MIN_RANGE_BYTES, and one where forking is not safe."""
    if requested is None and not fork_is_safe():
        return 1
    count = max(1, requested if requested is not None else min(cores(), n_bytes // MIN_RANGE_BYTES))
    if count > 1:
        import multiprocessing      # here: a small trace's command does not pay its import
        if "fork" not in multiprocessing.get_all_start_methods():
            return 1
    return count


def _child(send, work: Callable[[int, int], T], lo: int, hi: int) -> None:
    try:
        result = ("ok", work(lo, hi))
    except BaseException as exc:       # any failure: the parent reads in one range instead
        result = ("failed", f"{type(exc).__name__}: {exc}")
    try:
        send.send_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    finally:
        send.close()


def map_ranges(work: Callable[[int, int], T], ranges: list[tuple[int, int]]) -> list[T]:
    """[work(lo, hi) for each range], the first in this process, each other one in a forked
    child (which inherits ``work`` and everything it refers to, the trace text included).
    Raises WorkerFailed if a child fails; this process's own errors propagate."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    children = []
    done = False
    try:
        for lo, hi in ranges[1:]:
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(send, work, lo, hi), daemon=True)
            proc.start()
            send.close()
            children.append((proc, recv))
        results = [work(*ranges[0])]
        for proc, recv in children:
            try:
                status, value = pickle.loads(recv.recv_bytes())
            except (EOFError, OSError):
                raise WorkerFailed(f"worker {proc.pid} ended without a result "
                                   f"(exit code {proc.exitcode})") from None
            if status != "ok":
                raise WorkerFailed(value)
            results.append(value)
        done = True
        return results
    finally:
        for proc, recv in children:
            recv.close()
            if not done:               # this process failed or was interrupted: stop them
                proc.terminate()
            proc.join()

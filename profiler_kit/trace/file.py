"""A trace file's JSON text: read whole, gunzipped when it is gzip, errors as one-line TraceError.

Bounded: a file (or what it decompresses to) past ``ReadLimits.max_bytes`` is refused before it
is held, so a small gzip bomb cannot take the analyzer's memory; only regular files are opened,
so a named pipe or a device never blocks the reader.
"""

from __future__ import annotations

import mmap
import os
import stat
import threading
import zlib


class TraceError(ValueError):
    """The file is not a readable Kineto trace; the message says what to do."""
from dataclasses import dataclass

# The largest JSON text read by default. The reader peaks at about 1.4x the text on a real trace
# (docs/benchmarks.md: a 1.01 GB trace peaked at 1.41 GB RSS), so 1.25 GiB of text keeps any
# accepted input under about 2 GB RSS while a real 1 GB trace still reads without an option.
DEFAULT_MAX_BYTES = 1_250 * 2**20
# The most events read by default. A real trace averages 300-400 bytes an event (3M events in
# the 1 GB benchmark trace); each event costs the reader about 100 bytes of columns and a slice
# of its batch, so 8M events bound the columns to under 1 GB whatever the events hold (a gzip
# of millions of empty "{}" events is refused here, not after it filled the memory).
DEFAULT_MAX_EVENTS = 8_000_000


@dataclass(frozen=True)
class ReadLimits:
    """How much a trace may hold before the reader refuses it (the CLI's --max-trace-mb and
    --max-events raise them)."""
    max_bytes: int = DEFAULT_MAX_BYTES
    max_events: int = DEFAULT_MAX_EVENTS


DEFAULT_LIMITS = ReadLimits()


# The least file read by _read_in_halves; a smaller one is read into a bytearray (a few ms).
THREADED_READ_BYTES = 64 << 20


def _read_in_halves(fd: int, size: int) -> mmap.mmap:
    """The file's bytes in an anonymous private mapping, its halves read by two threads.

    Why: ``bytearray(size)`` writes zeros to every page before ``readinto`` copies the text
    over them, and the zeroing holds the GIL: 0.45 s of the 0.65 s it took to read a 1 GB
    trace (development machine), during which the command's imports, which the prefetch thread
    is meant to overlap, waited. A mapping's pages are made on first write, by the read
    itself, and ``os.preadv`` releases the GIL, so two threads make them on two cores: 0.35 s.
    Not a mapping of the file itself: a file truncated while it is read would end the process
    with SIGBUS instead of a one-line error. Private, as a bytearray is: a forked reader
    worker (workers.py) shares its pages copy-on-write. A file that shrank meanwhile leaves
    zeros at the end, as readinto did; an error in either half is raised here."""
    data = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    view = memoryview(data)
    errors: list[BaseException] = []

    def read(lo: int, hi: int) -> None:
        try:
            while lo < hi:
                got = os.preadv(fd, [view[lo:hi]], lo)
                if got <= 0:
                    break
                lo += got
        except BaseException as exc:
            errors.append(exc)

    mid = size // 2
    other = threading.Thread(target=read, args=(mid, size), name="read second half")
    other.start()
    read(0, mid)
    other.join()
    if errors:              # the mapping goes with the last reference (the traceback holds one)
        raise errors[0]
    view.release()
    return data


def _too_big(path: str, what: str, limits: ReadLimits) -> TraceError:
    return TraceError(f"{path}: {what} is over the {limits.max_bytes / 2**20:.0f} MiB limit of "
                      "JSON text; if the trace is real, raise it with --max-trace-mb")




def _gunzip(f, path: str, limits: ReadLimits) -> bytearray:
    """The decompressed text in one buffer sized up front from the gzip trailer (ISIZE: the
    uncompressed size mod 2**32), filled in 1 MiB pieces: peak memory is the text plus a piece.
    Growing a buffer instead over-allocates and copies on realloc (about 1.5x the text at peak
    on a 22 MB trace); gzip.decompress() holds the output twice and the whole input besides.
    Where the trailer does not give the size (several gzip members, text over 4 GiB), the
    buffer grows past it."""
    f.seek(-4, os.SEEK_END)
    size_hint = int.from_bytes(f.read(4), "little")
    f.seek(0)
    # the trailer is the file's word, not a fact: never allocate more than the limit from it
    out = bytearray(min(size_hint, limits.max_bytes))
    pos = 0
    z = zlib.decompressobj(wbits=31)
    piece_size = 1 << 20

    def put(piece: bytes) -> None:
        nonlocal pos
        end = pos + len(piece)
        if end > limits.max_bytes:
            raise _too_big(path, "the decompressed text", limits)
        if end <= len(out):
            out[pos:end] = piece
        else:
            del out[pos:]
            out.extend(piece)
        pos = end

    try:
        while chunk := f.read(1 << 20):
            while chunk:
                put(z.decompress(chunk, piece_size))
                chunk = z.unconsumed_tail
                if z.eof and z.unused_data:        # a multi-member gzip file
                    chunk = z.unused_data
                    z = zlib.decompressobj(wbits=31)
        put(z.flush())
    except zlib.error as exc:
        raise TraceError(f"{path}: corrupt gzip ({exc}); copy the trace again or "
                         "decompress it to check") from None
    if not z.eof:
        raise TraceError(f"{path}: truncated gzip (the file ends mid-stream); copy the trace "
                         "again") from None
    del out[pos:]
    return out


class _Prefetch(threading.Thread):
    def __init__(self, path: str, limits: ReadLimits):
        super().__init__(daemon=True, name=f"prefetch {path}")
        self.path, self.limits, self.data, self.error = path, limits, None, None

    def run(self) -> None:
        try:
            self.data = _load(self.path, self.limits)
        except BaseException as exc:          # handed to the reader, raised there
            self.error = exc


_prefetched: dict[str, _Prefetch] = {}


def prefetch(path: str, limits: ReadLimits = DEFAULT_LIMITS) -> None:
    """Start reading (and gunzipping) a trace in a background thread; ``load_trace_bytes``
    of the same path then waits for it. Why: zlib inflates without holding the GIL, so a
    command-line run inflates the trace on the second core while the main thread imports
    numpy and the analysis modules (about 0.1 s each on the development machine)."""
    path = os.fspath(path)
    if path not in _prefetched:
        _prefetched[path] = t = _Prefetch(path, limits)
        t.start()


def load_trace_bytes(path: str, limits: ReadLimits = DEFAULT_LIMITS) -> bytes | bytearray | mmap.mmap:
    """The trace file's JSON text, gunzipped if it is gzip. Raises TraceError."""
    pending = _prefetched.pop(os.fspath(path), None)
    if pending is not None:
        pending.join()
        if pending.error is not None:
            raise pending.error
        return pending.data
    return _load(path, limits)


def _load(path: str, limits: ReadLimits) -> bytes | bytearray | mmap.mmap:
    try:
        # O_NONBLOCK: opening a named pipe with no writer would otherwise wait forever; the
        # fstat below then refuses anything that is not a regular file.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as f:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError
            if not stat.S_ISREG(st.st_mode):
                raise TraceError(f"{path}: not a regular file (a pipe, socket or device); save "
                                 "the trace to a file and pass that")
            if f.read(2) == b"\x1f\x8b":
                f.seek(0)
                return _gunzip(f, path, limits)
            if st.st_size > limits.max_bytes:
                raise _too_big(path, f"the file ({st.st_size / 2**20:.0f} MiB)", limits)
            if st.st_size >= max(THREADED_READ_BYTES, 1) and hasattr(os, "preadv"):
                return _read_in_halves(fd, st.st_size)
            # readinto one buffer of the file's size: read() may over-allocate and copy.
            data = bytearray(st.st_size)
            f.seek(0)
            f.readinto(data)
            return data
    except FileNotFoundError:
        raise TraceError(f"{path}: no such file; pass the path of a Kineto trace "
                         "(.json or .json.gz written by torch.profiler)") from None
    except IsADirectoryError:
        raise TraceError(f"{path}: is a directory; pass the trace file inside it") from None
    except OSError as exc:
        raise TraceError(f"{path}: cannot read ({exc.strerror})") from None

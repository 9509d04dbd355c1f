"""A trace file's JSON text: read whole, gunzipped when it is gzip, errors as one-line TraceError."""

from __future__ import annotations

import os
import threading
import zlib


class TraceError(ValueError):
    """The file is not a readable Kineto trace; the message says what to do."""


def _gunzip(f, path: str) -> bytearray:
    """The decompressed text in one buffer sized up front from the gzip trailer (ISIZE: the
    uncompressed size mod 2**32), filled in 1 MiB pieces: peak memory is the text plus a piece.
    Growing a buffer instead over-allocates and copies on realloc (about 1.5x the text at peak
    on a 22 MB trace); gzip.decompress() holds the output twice and the whole input besides.
    Where the trailer does not give the size (several gzip members, text over 4 GiB), the
    buffer grows past it."""
    f.seek(-4, os.SEEK_END)
    size_hint = int.from_bytes(f.read(4), "little")
    f.seek(0)
    out = bytearray(size_hint)
    pos = 0
    z = zlib.decompressobj(wbits=31)
    piece_size = 1 << 20

    def put(piece: bytes) -> None:
        nonlocal pos
        end = pos + len(piece)
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
    def __init__(self, path: str):
        super().__init__(daemon=True, name=f"prefetch {path}")
        self.path, self.data, self.error = path, None, None

    def run(self) -> None:
        try:
            self.data = _load(self.path)
        except BaseException as exc:          # handed to the reader, raised there
            self.error = exc


_prefetched: dict[str, _Prefetch] = {}


def prefetch(path: str) -> None:
    """Start reading (and gunzipping) a trace in a background thread; ``load_trace_bytes``
    of the same path then waits for it. Why: zlib inflates without holding the GIL, so a
    command-line run inflates the trace on the second core while the main thread imports
    numpy and the analysis modules (about 0.1 s each on the development machine)."""
    path = os.fspath(path)
    if path not in _prefetched:
        _prefetched[path] = t = _Prefetch(path)
        t.start()


def load_trace_bytes(path: str) -> bytes | bytearray:
    """The trace file's JSON text, gunzipped if it is gzip. Raises TraceError."""
    pending = _prefetched.pop(os.fspath(path), None)
    if pending is not None:
        pending.join()
        if pending.error is not None:
            raise pending.error
        return pending.data
    return _load(path)


def _load(path: str) -> bytes | bytearray:
    try:
        with open(path, "rb") as f:
            if f.read(2) == b"\x1f\x8b":
                f.seek(0)
                return _gunzip(f, path)
            # readinto one buffer of the file's size: read() may over-allocate and copy.
            data = bytearray(os.fstat(f.fileno()).st_size)
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

"""A trace file's JSON text: read whole, gunzipped when it is gzip, errors as one-line TraceError."""

from __future__ import annotations

import os
import zlib


class TraceError(ValueError):
    """The file is not a readable Kineto trace; the message says what to do."""


def _gunzip(f, path: str) -> bytearray:
    # Stream into one growing buffer: gzip.decompress() would hold the output twice at its
    # peak, and the whole compressed file besides.
    out = bytearray()
    z = zlib.decompressobj(wbits=31)
    try:
        while chunk := f.read(1 << 20):
            while chunk:
                out += z.decompress(chunk)
                chunk = b""
                if z.eof and z.unused_data:        # a multi-member gzip file
                    chunk = z.unused_data
                    z = zlib.decompressobj(wbits=31)
        out += z.flush()
    except zlib.error as exc:
        raise TraceError(f"{path}: corrupt gzip ({exc}); copy the trace again or "
                         "decompress it to check") from None
    if not z.eof:
        raise TraceError(f"{path}: truncated gzip (the file ends mid-stream); copy the trace "
                         "again") from None
    return out


def load_trace_bytes(path: str) -> bytes | bytearray:
    """The trace file's JSON text, gunzipped if it is gzip. Raises TraceError."""
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

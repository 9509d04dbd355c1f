"""A big trace's text read by two threads into an anonymous mapping (trace/file.py
_read_in_halves) is the file's bytes, and the trace read from it is the trace read from a
bytearray, field for field; a read error still ends as the reader's one-line TraceError."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from test_trace_workers import _same   # field-by-field equality of two traces

from profiler_kit.trace import TraceError, file, read_trace

DATA = Path(__file__).parent / "data"


@pytest.fixture
def plain_trace(tmp_path):
    """A committed real trace, gunzipped (the threaded read is for plain JSON files)."""
    path = tmp_path / "trace.json"
    path.write_bytes(gzip.decompress((DATA / "sd" / "trace_vanilla.json.gz").read_bytes()))
    return path


@pytest.mark.parametrize("processes", [1, 2])
def test_read_in_halves_is_the_file(plain_trace, monkeypatch, processes):
    small = read_trace(plain_trace, processes=processes)
    monkeypatch.setattr(file, "THREADED_READ_BYTES", 0)      # every file read in halves
    data = file.load_trace_bytes(plain_trace)
    assert type(data).__name__ == "mmap" and data[:] == plain_trace.read_bytes()
    _same(small, read_trace(plain_trace, processes=processes))


@pytest.mark.parametrize("size", [1, 2, 3, 4097])
def test_read_in_halves_of_tiny_files(tmp_path, size):
    path = tmp_path / "f"
    path.write_bytes(os.urandom(size))
    fd = os.open(path, os.O_RDONLY)
    try:
        assert file._read_in_halves(fd, size)[:] == path.read_bytes()
    finally:
        os.close(fd)


def test_a_read_error_is_the_one_line_error(plain_trace, monkeypatch):
    def failing(fd, buffers, offset):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(file, "THREADED_READ_BYTES", 0)
    monkeypatch.setattr(os, "preadv", failing)
    with pytest.raises(TraceError, match="cannot read \\(Input/output error\\)"):
        read_trace(plain_trace)


def test_a_file_that_shrank_is_read_as_far_as_it_goes(tmp_path):
    """stat said more bytes than the file holds when read: the rest stays zero, as readinto
    left it, and the reader says the text is not valid JSON."""
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert file._read_in_halves(fd, 300)[:] == b"x" * 100 + bytes(200)
    finally:
        os.close(fd)

"""A file written by a forked child process while this one goes on with other work.

Why: kernels.csv of a 1 GB trace (318k rows, 185 MB) takes about 2 s to format and write, and
nothing else the analysis does needs it; what the analysis does after the cost walk (timeline,
critical path, what-ifs, attention, analysis.json) takes about as long. A forked child sees the
kernel table and the costs as they are (copy-on-write pages, only read) and writes the file on
the other core meanwhile (docs/benchmarks.md, "kernels.csv written ahead").

Safety: only where forking is safe (trace/workers.fork_is_safe: never in a process that
imported torch) and this process has more than one core (``worth_forking``). The child writes
to a temporary file, never to the destination: ``place(path)`` waits for it and moves the
finished file to ``path``; if the child failed in any way (an exception, killed, the move
failing), ``place`` writes the file in this process instead, so a failure costs time, never a
half-written or missing file. A file never placed (the analysis failed after the fork) is
removed and its child stopped when the handle is freed, or by ``discard``.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import sys
import tempfile
import weakref
from typing import Callable

from profiler_kit.trace import workers


def worth_forking() -> bool:
    """Whether a child can write on another core: fork exists and is safe here, and this
    process may run on more than one core (on one, the child would only take turns with it)."""
    return hasattr(os, "fork") and workers.fork_is_safe() and workers.cores() > 1


def _stop(pid: int | None, tmp: str) -> None:
    """Stop the child (if it still runs) and remove its temporary file: a file not placed."""
    if pid is not None:
        try:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


class BackgroundFile:
    """``write(path)`` run by a forked child into a temporary file ``.NAME.*.partial`` in
    ``folder`` (default: the system's temporary folder; one on the destination's file system
    makes ``place`` a rename). Raises OSError where the temporary file cannot be made."""

    def __init__(self, write: Callable[[str], None], folder: str | os.PathLike | None = None,
                 name: str = "background"):
        self._write = write
        self._taken = False
        fd, self._tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=folder)
        os.close(fd)
        for stream in (sys.stdout, sys.stderr):   # no buffered line copied into the child (it
            stream.flush()                         # exits unflushed, but then it cannot leak)
        try:
            pid = os.fork()
        except OSError:                            # no memory or process left: write in place()
            pid = None
        if pid == 0:
            self._child()
        self._pid = pid
        self._cleanup = weakref.finalize(self, _stop, pid, self._tmp)

    def _child(self) -> None:
        code = 1
        try:
            # The cycle collector writes to the header of every object it traverses: each
            # page of the parent's it touched would be copied (memory, and time).
            gc.disable()
            self._write(self._tmp)
            code = 0
        except BaseException:      # any failure: exit 1, the parent writes the file itself
            pass
        finally:
            os._exit(code)         # no atexit handlers, no flushing of the parent's buffers

    def _child_succeeded(self) -> bool:
        if self._pid is None:
            return False
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        return os.waitstatus_to_exitcode(status) == 0

    def take(self) -> bool:
        """True the first time only: the file is placed once (a second copy is written anew)."""
        taken, self._taken = self._taken, True
        return not taken

    def place(self, path: str | os.PathLike) -> None:
        """Wait for the child and move its file to ``path``; write it here if the child failed."""
        self._cleanup.detach()
        try:
            if self._child_succeeded():
                try:
                    umask = os.umask(0)
                    os.umask(umask)
                    os.chmod(self._tmp, 0o666 & ~umask)   # mkstemp's file is private
                    os.replace(self._tmp, path)
                    return
                except OSError:                     # another file system: copy it
                    try:
                        shutil.copyfile(self._tmp, path)
                        return
                    except OSError:
                        pass
            self._write(os.fspath(path))
        finally:
            _stop(self._pid, self._tmp)

    def discard(self) -> None:
        """Stop the child and remove its file (the file is not wanted after all)."""
        self._cleanup()

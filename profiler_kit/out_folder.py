"""The analyzer's --out folder: every analysis lands there whole, or not at all.

Why: two analyses into one folder at once used to interleave their files (the analysis.json of
one trace beside the report.html of the other), and a single-trace analysis into a folder that
held a comparison left the old comparison.json beside the new report. Here each analysis writes
its files (with records.write_atomic, as everywhere) into a fresh staging folder inside --out;
then, holding an exclusive lock on the --out folder, it removes every output an analysis writes that this
one did not, and moves its own into place. --out may be the working directory (the default), so
the folder itself is never swapped: only the names below, under the lock.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# Every name an analysis of traces writes into --out (a/ and b/ hold one trace each of a
# comparison). Nothing else in --out is touched.
OUTPUT_NAMES = ("analysis.json", "kernels.csv", "measured.csv", "comparison.json", "report.html", "a", "b")


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive flock on the folder itself (no lock file is left behind); a second
    analysis waits for the swap of the first (a few renames), then swaps its own."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                                  # closing releases the lock


def _swap(stage: Path, out: Path) -> None:
    # one folder per GPU of a multi-GPU trace (device0/, device1/, ...): whichever either holds
    per_device = sorted({p.name for d in (stage, out) for p in d.glob("device[0-9]*")})
    for name in (*OUTPUT_NAMES, *per_device):
        new, old = stage / name, out / name
        if old.is_dir() and not old.is_symlink():
            os.replace(old, stage / f".old-{name}")   # on the same file system: a rename
        elif old.exists() or old.is_symlink():
            if not new.exists():
                old.unlink()                          # stale: this analysis writes no such file
        if new.exists():
            os.replace(new, old)


@contextmanager
def staged_outputs(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh folder to write an analysis's outputs into; on a clean exit they replace,
    as a whole, the outputs in ``out``. On an error ``out`` is left as it was."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".analysis-", suffix=".partial", dir=out))
    try:
        yield stage
        with _locked(out):
            _swap(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)

"""kernels.csv written ahead by a forked child (profiler_kit/analysis/background_file.py) is
the file the analysis writes itself, byte for byte, on real traces; a child that fails or is
killed costs only time (the file is then written in the parent), and an analysis that fails
after the fork leaves no temporary file and no child behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

import profiler_kit.analysis as analysis
from profiler_kit import analyze
from profiler_kit.analysis import background_file
from profiler_kit.analysis import TraceError, analyze_trace
from profiler_kit.records import write_atomic

DATA = Path(__file__).parent / "data"
OPS = DATA / "sd_plain" / "sd15-512-vanilla-plain.json.gz"          # quoted op shapes
ROCM = DATA / "third_party" / "hta" / "mi250_minitoy_train_ROCm6_2_kineto.json.gz"


@pytest.fixture
def ahead_always(monkeypatch):
    """Fork for any trace (the committed ones are far below MIN_CSV_AHEAD_ROWS), on any machine."""
    monkeypatch.setattr(analysis, "MIN_CSV_AHEAD_ROWS", 0)
    monkeypatch.setattr(analysis, "worth_forking", lambda: True)


def _in_process(trace, path):
    analyze_trace(trace, spec="h100").write_kernels_csv(path)
    return path.read_bytes()


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("trace", [OPS, ROCM], ids=lambda p: p.name[:24])
def test_written_ahead_is_the_same_file(trace, tmp_path, ahead_always):
    a = analyze_trace(trace, spec="h100", kernels_csv_ahead=tmp_path)
    assert a.kernels_csv_pending is not None
    write_atomic(tmp_path / "kernels.csv", a.write_kernels_csv)
    assert (tmp_path / "kernels.csv").read_bytes() == _in_process(trace, tmp_path / "ref.csv")
    assert _leftovers(tmp_path) == []
    a.write_kernels_csv(tmp_path / "again.csv")           # a second copy: written here
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()


def test_a_failing_child_falls_back_to_writing_here(tmp_path, ahead_always, monkeypatch):
    parent = os.getpid()
    real = analysis.write_kernels_csv

    def fails_in_child(table, costs, path):
        if os.getpid() != parent:
            with open(path, "w") as f:
                f.write("half a file")
            raise OSError("disk full")
        real(table, costs, path)
    monkeypatch.setattr(analysis, "write_kernels_csv", fails_in_child)
    a = analyze_trace(OPS, spec="h100", kernels_csv_ahead=tmp_path)
    write_atomic(tmp_path / "kernels.csv", a.write_kernels_csv)
    monkeypatch.setattr(analysis, "write_kernels_csv", real)
    assert (tmp_path / "kernels.csv").read_bytes() == _in_process(OPS, tmp_path / "ref.csv")
    assert _leftovers(tmp_path) == []


def test_a_killed_child_falls_back_to_writing_here(tmp_path, ahead_always, monkeypatch):
    parent = os.getpid()
    real = analysis.write_kernels_csv

    def slow_in_child(table, costs, path):
        if os.getpid() != parent:
            time.sleep(60)                                 # killed before it writes
        real(table, costs, path)
    monkeypatch.setattr(analysis, "write_kernels_csv", slow_in_child)
    a = analyze_trace(OPS, spec="h100", kernels_csv_ahead=tmp_path)
    os.kill(a.kernels_csv_pending._pid, signal.SIGKILL)
    write_atomic(tmp_path / "kernels.csv", a.write_kernels_csv)
    monkeypatch.setattr(analysis, "write_kernels_csv", real)
    assert (tmp_path / "kernels.csv").read_bytes() == _in_process(OPS, tmp_path / "ref.csv")
    assert _leftovers(tmp_path) == []


def test_a_failed_analysis_leaves_no_file_and_no_child(tmp_path, ahead_always):
    forked = []
    real = background_file.BackgroundFile.__init__

    def remember(self, *args, **kwargs):
        real(self, *args, **kwargs)
        forked.append(self._pid)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(background_file.BackgroundFile, "__init__", remember)
        with pytest.raises(TraceError, match="no annotation named"):
            analyze_trace(OPS, spec="h100", kernels_csv_ahead=tmp_path, step="NoSuchStep")
    assert len(forked) == 1 and _leftovers(tmp_path) == []
    with pytest.raises(ChildProcessError):                 # stopped and reaped
        os.waitpid(forked[0], os.WNOHANG)


def test_analyze_command_writes_the_same_file(tmp_path, ahead_always, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert analyze.main([str(OPS), "--gpu", "h100", "--out", str(out), "--no-report"]) == 0
    assert (out / "kernels.csv").read_bytes() == _in_process(OPS, tmp_path / "ref.csv")
    assert sorted(p.name for p in out.iterdir()) == ["analysis.json", "kernels.csv"]


def test_no_fork_where_torch_was_imported(monkeypatch):
    import sys
    from profiler_kit.trace import workers
    monkeypatch.setattr(workers, "cores", lambda: 4)
    assert background_file.worth_forking() == ("torch" not in sys.modules and hasattr(os, "fork"))
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch") or object())
    assert not background_file.worth_forking()
    monkeypatch.setattr(workers, "cores", lambda: 1)
    monkeypatch.delitem(sys.modules, "torch")
    assert not background_file.worth_forking()


def test_analyze_command_into_a_folder_not_made_yet(tmp_path, ahead_always, capsys):
    """The temporary file goes to --out's nearest existing parent, and nothing is left there."""
    out = tmp_path / "new" / "out"
    assert analyze.main([str(OPS), "--gpu", "h100", "--out", str(out), "--no-report"]) == 0
    assert (out / "kernels.csv").read_bytes() == _in_process(OPS, tmp_path / "ref.csv")
    assert _leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["new", "ref.csv"]


def test_no_temporary_file_no_fork(tmp_path, ahead_always):
    """A folder the temporary file cannot be made in: kernels.csv is written when asked."""
    a = analyze_trace(OPS, spec="h100", kernels_csv_ahead=tmp_path / "missing")
    assert a.kernels_csv_pending is None
    a.write_kernels_csv(tmp_path / "kernels.csv")
    assert (tmp_path / "kernels.csv").read_bytes() == _in_process(OPS, tmp_path / "ref.csv")


def test_placed_file_has_the_usual_permissions(tmp_path, ahead_always):
    """Not mkstemp's private mode: what any file written here gets (the umask's)."""
    a = analyze_trace(OPS, spec="h100", kernels_csv_ahead=tmp_path)
    a.write_kernels_csv(tmp_path / "kernels.csv")
    (tmp_path / "plain").write_text("")
    mode = lambda p: p.stat().st_mode & 0o777
    assert mode(tmp_path / "kernels.csv") == mode(tmp_path / "plain")

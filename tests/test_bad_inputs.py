"""Every file of the bad-input corpus (tests/data/bad/, built by scripts/make_bad_corpus.py from
a committed trace) ends one of two ways: exit 0 with a sane analysis.json, or exit 2 with one
line. Plus what cannot be committed (a named pipe, a folder), outputs that cannot mix, and a
bounded fuzz of the reader with hypothesis: its only outcomes are a Trace or a TraceError."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from profiler_kit.analyze import main
from profiler_kit.trace.values import MAX_WINDOW_US

CORPUS = Path(__file__).parent / "data" / "bad"
CASES = sorted(p.name for p in CORPUS.iterdir())


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def assert_sane(analysis: dict) -> None:
    """What 'sane' means: no negative or absurd total, busy within the window, window under a
    day, peak memory non-negative; JSON numbers only (no NaN: the writer turns it into null)."""
    k, t = analysis["kernels"], analysis["timeline"]
    for key in ("total_us", "memcpy_us", "memset_us"):
        assert 0 <= k[key] <= MAX_WINDOW_US, key
    assert 0 <= t["window_us"] <= MAX_WINDOW_US
    assert 0 <= t["busy_us"] <= t["window_us"] * (1 + 1e-9) + 1e-6
    peak = analysis["memory"].get("peak_allocated_bytes")
    assert peak is None or 0 <= peak < 2**50
    for category, us in analysis["categories_us"].items():
        assert 0 <= us <= MAX_WINDOW_US, category
    assert all(math.isfinite(x) for x in _numbers(analysis))


def _run(tmp_path, capsys, *args):
    rc = main([*map(str, args), "--no-report", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    return rc, err


@pytest.mark.parametrize("name", CASES)
def test_corpus_case_ends_cleanly(name, tmp_path, capsys):
    rc, err = _run(tmp_path, capsys, CORPUS / name)
    if name.startswith("bad__"):
        assert rc == 2, err
        assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
        assert not (tmp_path / "out" / "analysis.json").exists()
    else:
        assert rc == 0, err
        analysis = json.loads((tmp_path / "out" / "analysis.json").read_text())
        assert_sane(analysis)


@pytest.mark.parametrize("name, warning", [
    ("ok__negative_duration.json", "skipped 1 event: negative duration"),
    ("ok__ts_zero_stretches_window.json", "skipped 1 event: more than a day away"),
    ("ok__correlation_2_64.json", "read 1 value as unknown: id past 64 bits"),
    ("ok__grid_past_int32.json", "read 1 value as unknown: grid/block"),
    ("ok__memory_negative_total.json", "skipped 1 event: memory figure"),
])
def test_dropped_values_are_counted_in_the_warnings(name, warning, tmp_path, capsys):
    assert _run(tmp_path, capsys, CORPUS / name)[0] == 0
    warnings = json.loads((tmp_path / "out" / "analysis.json").read_text())["warnings"]
    assert any(w.startswith(warning) for w in warnings), warnings


def test_named_pipe_is_refused_without_blocking(tmp_path, capsys):
    pipe = tmp_path / "trace.json"
    os.mkfifo(pipe)
    rc, err = _run(tmp_path, capsys, pipe)
    assert rc == 2 and "not a regular file" in err


def test_folder_without_summary_is_refused(tmp_path, capsys):
    rc, err = _run(tmp_path, capsys, tmp_path)
    assert rc == 2 and "is a directory" in err


def test_limits_refuse_and_can_be_raised(tmp_path, capsys):
    trace = CORPUS / "ok__gzip.json.gz"
    rc, err = _run(tmp_path, capsys, trace, "--max-events", "10")
    assert rc == 2 and "--max-events" in err
    rc, err = _run(tmp_path, capsys, trace, "--max-trace-mb", "0.01")
    assert rc == 2 and "--max-trace-mb" in err
    assert _run(tmp_path, capsys, trace, "--max-events", "100000")[0] == 0


def test_a_new_analysis_leaves_no_stale_file_beside_it(tmp_path, capsys):
    a, b = CORPUS / "ok__gzip.json.gz", CORPUS / "ok__negative_duration.json"
    assert _run(tmp_path, capsys, a, b)[0] == 0
    out = tmp_path / "out"
    assert (out / "comparison.json").exists() and (out / "a").is_dir()
    (out / "mine.txt").write_text("not the analyzer's")
    assert _run(tmp_path, capsys, b)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["analysis.json", "kernels.csv", "mine.txt"]
    assert json.loads((out / "analysis.json").read_text())["source"]["path"] == str(b)


# --- bounded fuzz of the reader: a Trace or a TraceError, nothing else ---------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from profiler_kit.analysis import analyze_trace  # noqa: E402
from profiler_kit.trace import TraceError  # noqa: E402

_SMALL = (CORPUS / "ok__bare_event_array.json").read_bytes()
_EVENTS = json.loads(_SMALL)[:120]
_ODD = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                 st.floats(allow_nan=False), st.text(max_size=8),
                 st.lists(st.integers(min_value=-2**40, max_value=2**40), max_size=5),
                 st.just({}), st.just([[1]]))
_KEYS = ("ph", "cat", "name", "ts", "dur", "pid", "tid")
_ARG_KEYS = ("correlation", "External id", "stream", "device", "grid", "block", "bytes",
             "Total Allocated", "Total Reserved", "Bytes", "Addr", "Device Id", "Input Dims")
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _outcome(path) -> None:
    try:
        result = analyze_trace(path)
    except TraceError as exc:
        assert "\n" not in str(exc)
        return
    assert_sane(result.to_dict())


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, len(_EVENTS) - 1),
                                st.sampled_from(_KEYS + _ARG_KEYS), _ODD), max_size=12))
def test_fuzzed_fields_give_a_result_or_the_clean_error(edits, tmp_path_factory):
    events = [dict(e, args=dict(e.get("args") or {})) for e in _EVENTS]
    for i, key, value in edits:
        (events[i] if key in _KEYS else events[i]["args"])[key] = value
    path = tmp_path_factory.mktemp("fuzz") / "t.json"
    path.write_text(json.dumps(events))
    _outcome(path)


@FUZZ
@given(cuts=st.lists(st.tuples(st.integers(0, len(_SMALL) - 1), st.binary(max_size=4)),
                     max_size=6))
def test_fuzzed_bytes_give_a_result_or_the_clean_error(cuts, tmp_path_factory):
    data = bytearray(_SMALL[:60_000])                  # a prefix: mostly truncated JSON too
    for pos, junk in cuts:
        pos %= len(data)
        data[pos:pos + len(junk)] = junk
    path = tmp_path_factory.mktemp("fuzz") / "t.json"
    path.write_bytes(bytes(data))
    _outcome(path)


def test_single_run_on_cuda_without_cuda_is_refused_before_any_folder(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from profiler_kit.__main__ import preflight
    from profiler_kit.config import ConfigError, register
    register()                                        # what main() does before preflight
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="no CUDA device"):
        preflight(["device=cuda"])
    preflight(["-m", "device=cuda"])                  # a multirun's jobs may run elsewhere
    assert not any(tmp_path.iterdir())


def test_two_analyses_into_one_folder_at_once_never_mix(tmp_path):
    """Two processes analysing different traces into the same --out at the same moment: each
    publishes its whole set under the lock, so the folder ends with one trace's files, never
    analysis.json of one beside kernels.csv or report.html of the other."""
    import csv
    import subprocess
    import sys

    third = Path(__file__).parent / "data" / "third_party" / "tracelens"
    traces = sorted(third.glob("*.json.gz"))[:2]
    out = tmp_path / "out"
    for _ in range(3):                                  # a few rounds: the race must never show
        procs = [subprocess.Popen([sys.executable, "-m", "profiler_kit.analyze", str(t), "--out", str(out)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for t in traces]
        assert all(p.wait(timeout=120) == 0 for p in procs)
        analysis = json.loads((out / "analysis.json").read_text())
        with open(out / "kernels.csv", newline="") as f:
            rows = sum(1 for _ in csv.reader(f)) - 1
        counts = analysis["kernels"]
        assert rows == counts["count"] + counts["memcpy_count"] + counts["memset_count"]
        assert Path(analysis["source"]["path"]).name in (out / "report.html").read_text(encoding="utf-8")


def test_text_not_utf8_is_said_so(tmp_path, capsys):
    """msgspec reports bytes that are not UTF-8 as a DecodeError (a ValueError): the reader counts
    them as text not UTF-8, and the CLI no longer blames --gpu for them."""
    rc, err = _run(tmp_path, capsys, CORPUS / "bad__invalid_utf8_everywhere.json")
    assert rc == 2 and "not UTF-8" in err and "--gpu" not in err

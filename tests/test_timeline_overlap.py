"""Busy time on traces whose steps overlap on the GPU, and GPU work with no launch record.

Both traces are built here from a real one (the plain SD 1.5 UNet trace of tests/data/sd_plain,
H200): its single CPU-side ProfilerStep is split in two at the launch of a long attention
kernel, so work launched in the first step is still running when the second step's first
launch has happened; and the launch records of the first kernels are dropped, as for kernels
queued before the profiler started.
"""

import gzip
import json
from pathlib import Path

import pytest

from profiler_kit.analysis import analyze_trace

PLAIN = Path(__file__).parent / "data" / "sd_plain" / "sd15-512-vanilla-plain.json.gz"
DROPPED = 20        # kernels whose launch record is removed


def _events():
    with gzip.open(PLAIN, "rt") as f:
        return json.load(f)


def _split_step(doc: dict) -> dict:
    ev = doc["traceEvents"]
    step = next(e for e in ev if e.get("cat") == "user_annotation"
                and e["name"].startswith("ProfilerStep#"))
    # split before the launch whose kernel starts while earlier-launched work still runs the
    # longest (the deepest GPU queue): the first step's GPU window then reaches into the second
    launches = {e["args"]["correlation"]: e for e in ev
                if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})}
    kernels = sorted(((launches[k["args"]["correlation"]]["ts"], k) for k in ev
                      if k.get("cat") == "kernel" and k["args"].get("correlation") in launches),
                     key=lambda x: x[0])
    best, cut, reach = 0.0, None, -1.0
    for ts, k in kernels:
        if reach - k["ts"] > best:
            best, cut = reach - k["ts"], ts - 0.001
        reach = max(reach, k["ts"] + k["dur"])
    assert cut is not None, "no launch found behind a busy GPU"
    doc["overlap_us"] = best
    end = step["ts"] + step["dur"]
    first = dict(step, dur=cut - step["ts"])
    second = dict(step, name=step["name"] + "0", ts=cut, dur=end - cut)
    doc["traceEvents"] = [e for e in ev if e is not step and not (
        e.get("cat") == "gpu_user_annotation" and e["name"].startswith("ProfilerStep#"))]
    doc["traceEvents"] += [first, second]
    return doc


def _write(tmp_path, doc, name) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def test_overlapping_steps_never_count_a_moment_twice(tmp_path):
    doc = _split_step(_events())
    t = analyze_trace(_write(tmp_path, doc, "overlap.json")).to_dict()["timeline"]
    whole = analyze_trace(PLAIN).to_dict()["timeline"]
    assert len(t["steps"]) == 2
    s1, s2 = t["steps"]
    # the construction really overlaps (GPU work of step 1 runs past step 2's first kernel
    # start), and the second window is clipped to start where the first ended
    assert doc["overlap_us"] > 0
    assert s2["start_us"] == pytest.approx(s1["start_us"] + s1["window_us"])
    for s in (*t["steps"], t):
        assert s["busy_us"] <= s["window_us"] + 1e-6
        assert s["idle_us"] >= -1e-6
    # the two steps cover what the one step covered, no more
    assert t["window_us"] <= whole["window_us"] + 1e-6
    assert t["busy_us"] == pytest.approx(whole["busy_us"], rel=1e-6)


def test_gpu_work_without_launch_record_is_reported_apart(tmp_path):
    doc = _events()
    ev = doc["traceEvents"]
    kernels = sorted((e for e in ev if e.get("cat") == "kernel"), key=lambda e: e["ts"])
    dropped = {k["args"]["correlation"] for k in kernels[:DROPPED]}
    doc["traceEvents"] = [e for e in ev if not (
        e.get("cat") in ("cuda_runtime", "cuda_driver")
        and e.get("args", {}).get("correlation") in dropped)]
    # as if queued before the profiler started: nothing ties them to an op either
    for k in kernels[:DROPPED]:
        k["args"].pop("External id", None)
    t = analyze_trace(_write(tmp_path, doc, "unlaunched.json")).to_dict()["timeline"]
    whole = analyze_trace(PLAIN).to_dict()["timeline"]
    assert whole["unlaunched_count"] == 0
    assert t["unlaunched_count"] == DROPPED
    assert t["unlaunched_us"] == pytest.approx(sum(k["dur"] for k in kernels[:DROPPED]),
                                               rel=1e-6)
    # not charged to the step: busy shrinks by (at most) their time
    assert t["busy_us"] <= whole["busy_us"] - t["unlaunched_us"] + 1e-3

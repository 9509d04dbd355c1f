"""An interrupted run says what it is: Ctrl-C (SIGINT) or SIGTERM during the capture keeps the
modes measured so far, marks the run "interrupted" with one line and no traceback, and the
analyzer then works on the folder without passing it off as complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ARGS = ["model=tiny", "resolution=256", "warmup=1", "iterations=400", "modes=[vanilla,sdpa]",
        "profiler.enabled=true", "report.enabled=false"]


def _interrupt_while_timing(tmp_path: Path, sig: int) -> tuple[subprocess.CompletedProcess, Path]:
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "profiler_kit", *ARGS, f"hydra.run.dir={run_dir}"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # Ctrl-C reaches a foreground run; a suite started as a background job
                            # (`.ci/run &`) has SIGINT ignored, and the child would inherit that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while time.time() < deadline:       # both modes prepared: the timing (400 steps each) has begun
        try:
            modes = json.loads((run_dir / "summary.json").read_text())["modes"]
            if len(modes) == 2:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), run_dir


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_keeps_its_modes_and_says_so(tmp_path, sig):
    proc, run_dir = _interrupt_while_timing(tmp_path, sig)
    assert proc.returncode == 130, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("profiler_kit: ")]
    assert len(lines) == 1 and lines[0].startswith("profiler_kit: interrupted") and "while timing the modes" in lines[0]
    assert ("(signal SIGTERM)" in lines[0]) == (sig == signal.SIGTERM)      # says which signal stopped it
    assert "Traceback" not in proc.stderr
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "interrupted" and "timing" in s["reason"]
    assert {m: (r["status"], r["phase"]) for m, r in s["modes"].items()} == \
        {"vanilla": ("ok", "prepared"), "sdpa": ("ok", "prepared")}
    assert all(r.get("step_ms") is None for r in s["modes"].values())
    # the analyzer works on it, keeps it "interrupted", compares nothing untimed
    analyzed = subprocess.run([sys.executable, "-m", "profiler_kit.analyze", str(run_dir)],
                              capture_output=True, text=True, env={**os.environ})
    assert analyzed.returncode == 0, analyzed.stderr
    after = json.loads((run_dir / "summary.json").read_text())
    assert after["status"] == "interrupted" and after["analyzed"] is True and after["comparison"] == {}
    assert all(r["analysis"] is not None for r in after["modes"].values())
    assert "interrupted" in (run_dir / "report.html").read_text(encoding="utf-8")

"""The run folder's files: summary.json written atomically, the readable table for the log, and
the command that reproduces the run."""

from __future__ import annotations

import json
import math
import os
import shlex
import tempfile
from typing import Any, Dict, List

SCHEMA_VERSION = 1


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):                       # numpy / torch scalars
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: write null rather than an invalid file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_json_atomic(path: str, data: Dict[str, Any]) -> str:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".partial-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(_finite(data), fh, indent=1, default=_json_default, allow_nan=False)
            fh.write("\n")
        os.chmod(tmp, 0o644)          # mkstemp makes it private; a summary is for sharing
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def reproduce_command(argv: List[str]) -> str:
    return " ".join(["python", "-m", "profiler_kit"] + [shlex.quote(a) for a in argv[1:]])


def _gib(value: Any) -> str:
    return f"{value / 2**30:.2f}" if isinstance(value, (int, float)) else "-"


def log_table(summary: Dict[str, Any]) -> str:
    """A fixed-width table of the modes: until the HTML report, and for terminals and logs."""
    ref = summary["reference_mode"]
    head = f"{'mode':<15} {'status':<11} {'step ms (median)':>17} {'IQR':>7} {'n':>3} {'it/s':>7} " \
           f"{'peak GiB':>9} {'speed-up':>9} {'rel err':>9}"
    rows = [head, "-" * len(head)]
    for mode, rec in summary["modes"].items():
        if rec.get("status") != "ok":
            rows.append(f"{mode:<15} {rec.get('status', '?'):<11} {(rec.get('reason') or '')[:70]}")
            continue
        st = rec["step_ms"]
        cmp = summary.get("comparison", {}).get(mode, {})
        speed = "1.00x (ref)" if mode == ref else (f"{cmp['speedup']:.2f}x" if "speedup" in cmp else "-")
        err = rec.get("output_rel_error")
        rows.append(f"{mode:<15} {'ok':<11} {st['median']:>17.2f} {st['iqr']:>7.2f} {st['n']:>3} "
                    f"{rec['loop_it_per_s']:>7.2f} {_gib(rec.get('peak_allocated_bytes')):>9} {speed:>9} "
                    f"{(f'{err:.1e}' if err is not None else '-'):>9}")
    env = summary["environment"]
    rows.append(f"device: {env.get('gpu_name') or env.get('cpu')} | dtype {summary['run']['dtype']} | "
                f"batch {summary['run']['batch']} | latents {summary['run']['latent_shape']}")
    return "\n".join(rows)

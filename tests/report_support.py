"""Data for the report tests: committed real traces, run through the real analyzer.

Third-party traces (tests/data/third_party, see its README for sources) and this project's own
SD UNet traces and summary.json (tests/data/sd) are analysed here with
profiler_kit.analysis.analyze_trace, so the reports under test are built from what the analyzer
really produces. `poisoned` then plants HTML and script fragments in the names a trace carries.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
THIRD_PARTY = DATA / "third_party"
SD = DATA / "sd"
# The two TraceLens H100 traces: real flash-attention models with shapes, modules and memory.
VIT = "tracelens/Falconsai_nsfw_image_detection__1016002.json.gz"
BERT = "tracelens/gaunernst_bert-small-uncased__1016001.json.gz"

# Each payload, if it ever ran, sets window.__pwned or opens a dialog; the browser test checks
# neither happens. The first closes the report's <script> if embedded JSON were not escaped,
# the second runs if a name reached the DOM as markup.
SCRIPT_PAYLOAD = "</script><script>window.__pwned=1;alert(1)</script><!--"
IMG_PAYLOAD = '<img src=x onerror="window.__pwned=2;alert(2)">'
PAYLOADS = (SCRIPT_PAYLOAD, IMG_PAYLOAD)
_NAME_KEYS = {"name", "op", "scope", "level", "shapes", "kernels", "backend", "a_backend",
              "b_backend", "warnings", "path"}


def third_party_traces() -> list[Path]:
    return sorted(THIRD_PARTY.rglob("*.json.gz"))


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path.relative_to(DATA.parent)} is not committed yet")
    return path


@functools.lru_cache(maxsize=None)
def _analysis_json(path: str, spec: str | None) -> str:
    from profiler_kit.analysis import analyze_trace
    return json.dumps(analyze_trace(path, spec=spec).to_dict())


def analysis(trace: str | Path, spec: str | None = None) -> dict:
    """The analyzer's dict for a committed trace (a fresh copy each call; analysed once)."""
    path = Path(trace) if Path(trace).is_absolute() else THIRD_PARTY / trace
    return json.loads(_analysis_json(str(_require(path)), spec))


def compare(a: dict, b: dict, label_a: str, label_b: str) -> dict:
    """The analyzer's comparison of two analysis dicts, under the given labels."""
    from profiler_kit.analysis import compare as _compare
    return _compare({**a, "label": label_a}, {**b, "label": label_b})


def sd_summary() -> dict:
    """The committed summary.json of a real GPU run, each mode's analysis rebuilt from its
    committed trace by the current analyzer (so the test follows the analyzer as it changes)."""
    summary = json.loads(_require(SD / "summary.json").read_text())
    spec = (summary.get("gpu_spec") or {}).get("key")
    for record in summary.get("modes", {}).values():
        trace = record.get("trace")
        if trace and (SD / trace).exists():
            record["analysis"] = json.loads(_analysis_json(str(SD / trace), spec))
            record["analysis"]["gpu_spec"] = summary.get("gpu_spec") or record["analysis"]["gpu_spec"]
    return summary


def poisoned(value):
    """A deep copy of an analysis, comparison or summary dict with a payload appended to every
    name a trace can carry: kernel, op and module names, block keys, warnings, file paths."""
    counter = iter(range(10**9))

    def payload() -> str:
        return PAYLOADS[next(counter) % len(PAYLOADS)]

    def walk(node, key: str | None):
        if isinstance(node, dict):
            rename = key == "blocks_us"            # module names are this mapping's keys
            return {(f"{k}{payload()}" if rename else k): walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        if isinstance(node, str) and key in _NAME_KEYS:
            return node + payload()
        return node

    return walk(copy.deepcopy(value), None)

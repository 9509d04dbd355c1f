"""Data for the report tests: committed real traces, run through the real analyzer.

Third-party traces (tests/data/third_party, see its README for sources) and this project's own
SD UNet traces and summary.json (tests/data/sd) are analysed here with
profiler_kit.analysis.analyze_trace and analysis.run.analyze_run, so the reports under test are
built from the records the analyzer really produces. `poisoned` then plants HTML and script
fragments in the names a trace carries.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import tempfile
from pathlib import Path

import msgspec
import pytest

from profiler_kit import records

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
              "b_backend", "warnings", "path", "title", "detail", "label", "job", "mode", "group",
              "model", "card", "subject"}


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


def analysis(trace: str | Path, spec: str | None = None) -> records.Analysis:
    """The analyzer's record for a committed trace (analysed once per test session)."""
    path = Path(trace) if Path(trace).is_absolute() else THIRD_PARTY / trace
    return records.analysis_from_builtins(json.loads(_analysis_json(str(_require(path)), spec)))


def compare(a: records.Analysis, b: records.Analysis, label_a: str, label_b: str) -> records.Comparison:
    """The analyzer's comparison of two analysis records, under the given labels."""
    from profiler_kit.analysis import compare as _compare
    return _compare(msgspec.structs.replace(a, label=label_a), msgspec.structs.replace(b, label=label_b))


@functools.lru_cache(maxsize=1)
def sd_run_folder() -> Path:
    """A copy of the committed run folder of a real H200 run (tests/data/sd), analysed by
    analysis.run.analyze_run exactly as `python -m profiler_kit` does after its capture."""
    from profiler_kit.analysis.run import analyze_run
    _require(SD / "summary.json")
    folder = Path(tempfile.mkdtemp(prefix="pk-sd-run-")) / "run"
    shutil.copytree(SD, folder)
    analyze_run(str(folder))
    return folder


def sd_summary() -> records.Summary:
    """The analysed summary of the committed H200 run (follows the analyzer as it changes)."""
    return records.read_summary(sd_run_folder() / "summary.json")


def plotly_figures(html: str) -> dict[str, dict]:
    """Every figure a page draws, by div id: {"data", "layout", "config"} as the page passes them to
    Plotly.newPlot, parsed (the call is Plotly.newPlot("id", data, layout, config))."""
    decoder = json.JSONDecoder()
    figures = {}
    for m in re.finditer(r'Plotly\.newPlot\(\s*', html):
        args, i = [], m.end()
        for _ in range(4):
            value, i = decoder.raw_decode(html, i)
            args.append(value)
            while html[i] in " ,\n":
                i += 1
        figures[args[0]] = dict(zip(("data", "layout", "config"), args[1:]))
    return figures


def poisoned(value):
    """A copy of an analysis, comparison or summary record (or dict) with a payload appended to
    every name a trace can carry: kernel, op and module names, block keys, warnings, paths."""
    counter = iter(range(10**9))

    def payload() -> str:
        return PAYLOADS[next(counter) % len(PAYLOADS)]

    def walk(node, key: str | None):
        if isinstance(node, dict):
            rename = key == "blocks_us"            # module names are this mapping's keys
            return {(f"{k}{payload()}" if rename else k): walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        if isinstance(node, str) and key in _NAME_KEYS and node not in ("key", "warn", "info"):  # finding levels
            return node + payload()
        return node

    if isinstance(value, msgspec.Struct):
        return msgspec.convert(walk(value.to_builtins(), None), type(value))
    return walk(copy.deepcopy(value), None)


def modules_loaded_by_rendering(tmp_path: Path) -> set[str]:
    """The modules a fresh interpreter has loaded after rendering the ViT trace's report (what
    a user's `analyze` pays for at start-up): read by the tests that keep torch and plotly out."""
    import subprocess
    import sys

    (tmp_path / "a.json").write_text(json.dumps(analysis(VIT).to_builtins()))
    code = (
        "import json, sys\n"
        "from profiler_kit.records import read_analysis\n"
        "from profiler_kit.report import render_trace_report\n"
        f"a = read_analysis({str(tmp_path / 'a.json')!r})\n"
        f"render_trace_report({{'vit': a}}, None, {str(tmp_path / 'r.html')!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))

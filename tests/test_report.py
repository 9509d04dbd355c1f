"""Reports rendered from committed real traces through the real analyzer (see report_support)."""

from __future__ import annotations

import json
import re
from markupsafe import escape as html_escape
import subprocess
import sys
from pathlib import Path

import pytest
from plotly.offline import get_plotlyjs

import msgspec
import shutil

from profiler_kit.analysis.run import analyze_run
from profiler_kit.report import render_run_folder, render_run_report, render_trace_report
from report_support import (BERT, VIT, analysis, compare, modules_loaded_by_rendering, sd_run_folder, sd_summary,
                            third_party_traces)

MAX_BYTES = 6 * 1024 * 1024
PLOTLY_JS = get_plotlyjs().replace("</script", "<\\/script")
PLOTLY_HEAD = PLOTLY_JS[:300]               # plotly.js's licence banner and first statements
# Anything that would make the browser fetch: an absolute URL in src/href, CSS url() or @import.
FETCH = re.compile(r"""(?:\bsrc|\bhref)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import""", re.I)


def page_checks(html: str) -> None:
    assert len(html.encode()) <= MAX_BYTES
    assert html.count(PLOTLY_HEAD) == 1, "plotly.js must be inlined exactly once"
    # plotly.js itself holds URL strings (links it can draw); the browser test proves it fetches
    # nothing. Everything else on the page must not even mention a remote resource.
    ours = html.replace(PLOTLY_JS, "")
    assert not FETCH.search(ours), FETCH.search(ours)
    # Figures carry no plotly.js of their own and each reports when drawn.
    figures = re.findall(r'<div id="(fig-[a-z_]+)" class="plotly-graph-div"', html)
    assert html.count("window.pkPlotDone(") >= len(figures)
    assert f"expected: {len(figures)}," in html


@pytest.mark.parametrize("trace", third_party_traces(), ids=lambda p: p.name[:40])
def test_trace_report_for_every_committed_third_party_trace(tmp_path: Path, trace: Path) -> None:
    a = analysis(trace)
    out = render_trace_report({trace.stem: a}, None, tmp_path / "report.html")
    html = out.read_text(encoding="utf-8")
    page_checks(html)
    gpu_sections = ("time", "categories", "attention", "roofline", "kernels", "memory")
    assert '<section id="overview">' in html and '<section id="sources">' in html
    if a.kernels.count:
        assert all(f'<section id="{s}">' in html for s in gpu_sections)
        assert 'id="fig-time"' in html and 'id="fig-categories"' in html
    else:       # a CPU-only trace: only what it has, no empty GPU charts
        assert "no GPU activity in this trace" in html
        assert not any(f'<section id="{s}">' in html for s in gpu_sections)
    for warning in a.warnings:
        assert str(html_escape(warning))[:40] in html


def test_trace_report_shows_flash_attention_layers_with_roofline(tmp_path: Path) -> None:
    a = analysis(VIT)
    html = render_trace_report({"vit": a}, None, tmp_path / "r.html").read_text(encoding="utf-8")
    assert a.gpu_spec.key in html and a.gpu_spec.source[:40] in html
    assert 'id="fig-roofline"' in html and 'id="fig-attention"' in html
    calls = a.attention.calls
    assert calls, "the ViT trace runs SDPA flash attention in every layer"
    for call in calls:
        assert call.scope.replace(".transformer_blocks.0.", ".") in html
    assert "flash" in html
    # Units chosen for reading; the embedded data keeps base units.
    assert " µs" in html and "GFLOP" in html
    embedded = re.search(r'<script type="application/json" id="pk-data">(.*?)</script>', html, re.S).group(1)
    assert json.loads(embedded)["analyses"]["vit"]["kernels"]["total_us"] == a.kernels.total_us


def test_two_traces_render_their_comparison(tmp_path: Path) -> None:
    a, b = analysis(VIT), analysis(BERT)
    cmp = compare(a, b, "vit", "bert")
    html = render_trace_report({"vit": a, "bert": b}, cmp, tmp_path / "r.html").read_text(encoding="utf-8")
    page_checks(html)
    assert '<section id="comparison">' in html and 'id="fig-comparison"' in html
    assert "Per attention layer" in html
    assert html.index('id="overview"') < html.index('id="comparison"') < html.index('id="time"')


def test_directory_mode_writes_plotly_once_beside_many_reports(tmp_path: Path) -> None:
    a, b = analysis(VIT), analysis(BERT)
    one = render_trace_report({"vit": a}, None, tmp_path / "vit.html", plotly_js="directory")
    two = render_trace_report({"bert": b}, None, tmp_path / "bert.html", plotly_js="directory")
    js = tmp_path / "plotly.min.js"
    assert js.read_text(encoding="utf-8").startswith(PLOTLY_HEAD[:100])
    for page in (one, two):
        html = page.read_text(encoding="utf-8")
        assert '<script src="plotly.min.js"></script>' in html
        assert PLOTLY_HEAD not in html and len(html.encode()) < 1_000_000
    with pytest.raises(ValueError, match="inline"):
        render_trace_report({"vit": a}, None, tmp_path / "x.html", plotly_js="cdn")


def test_report_package_never_imports_torch(tmp_path: Path) -> None:
    """The report renders on machines without torch: importing it and rendering must not load it."""
    assert "torch" not in modules_loaded_by_rendering(tmp_path), "torch was imported"
    for source in Path(__file__).parent.parent.joinpath("profiler_kit", "report").rglob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+torch\b", source.read_text(), re.M), source


def test_run_report_from_the_committed_gpu_run(tmp_path: Path) -> None:
    summary = sd_summary()
    html = render_run_report(summary, tmp_path / "report.html").read_text(encoding="utf-8")
    page_checks(html)
    order = ["verdict", "time", "categories", "attention", "roofline", "kernels", "memory", "timing", "environment"]
    positions = [html.index(f'<section id="{s}">') for s in order]
    assert positions == sorted(positions), "sections follow the order of issue 4"
    assert summary.command.replace('"', "&#34;") in html or summary.command in html
    for mode, record in summary.modes.items():
        assert mode in html
        if record.status != "ok":
            assert (record.reason or "no reason recorded")[:30] in html
    assert "ui.perfetto.dev" in html


def test_embedded_copy_drops_bulky_lists_first_and_leaves_the_data_alone() -> None:
    """Over its budget the copy loses the bulky lists in order, then the analyses; the data it is
    made from (shared with the copy, not deep-copied) is never written to."""
    from profiler_kit.report import _BULKY, embedded_json
    data = sd_summary().to_builtins()
    untouched = json.dumps(data)
    full = json.loads(embedded_json(data, 10**9))
    assert "_omitted_from_embedded_copy" not in full
    paths = [".".join(p) for p in _BULKY]
    trimmed = json.loads(embedded_json(data, len(embedded_json(data, 10**9)) - 1))
    omitted = trimmed["_omitted_from_embedded_copy"]
    assert omitted == paths[:len(omitted)] and "memory.timeline" in omitted and "top_kernels" not in omitted
    for mode, record in trimmed["modes"].items():
        analysis, kept = record["analysis"], full["modes"][mode]["analysis"]
        if analysis is not None:
            assert analysis["memory"]["timeline"] is None, mode
            assert analysis["top_kernels"] == kept["top_kernels"] and analysis["kernels"] == kept["kernels"], mode
    bare = json.loads(embedded_json(data, 1000))
    assert bare["_omitted_from_embedded_copy"][-1] == "analysis"
    assert all("analysis" not in r for r in bare["modes"].values())
    assert bare["modes"].keys() == full["modes"].keys() and bare["config"] == full["config"]
    assert json.dumps(data) == untouched


def test_run_report_shows_failed_modes_with_their_reason(tmp_path: Path) -> None:
    """An OOM or unavailable mode appears with its reason, not as an empty chart."""
    run = tmp_path / "run"
    shutil.copytree(sd_run_folder(), run)
    data = json.loads((run / "summary.json").read_text())
    victim = [m for m, r in data["modes"].items() if r["status"] == "ok"][-1]
    data["modes"][victim] = {"status": "oom", "reason": "CUDA out of memory. Tried to allocate 9.00 GiB",
                             "oom_requested_bytes": 9 * 2**30}
    (run / "summary.json").write_text(json.dumps(data))
    analyze_run(str(run))                 # the findings are the analysis's, as after a real run
    html = render_run_folder(run).read_text(encoding="utf-8")
    assert "CUDA out of memory. Tried to allocate 9.00 GiB" in html
    assert f"{victim} ran out of GPU memory" in html


def test_run_report_without_traces_keeps_timing_memory_and_checks(tmp_path: Path) -> None:
    """A run with profiling off: the committed summary.json as written (no per-mode analysis)."""
    summary = sd_summary()
    summary = msgspec.structs.replace(summary, modes={m: msgspec.structs.replace(r, analysis=None, trace=None)
                                                      for m, r in summary.modes.items()})
    html = render_run_report(summary, tmp_path / "report.html").read_text(encoding="utf-8")
    page_checks(html)
    assert '<section id="traces-missing">' in html and '<section id="time">' not in html
    assert 'id="fig-memory_peaks"' in html and '<section id="timing">' in html


def test_compiled_templates_are_kept_in_the_cache_and_an_unusable_cache_costs_nothing(tmp_path):
    """The report's templates compile once per user (cache_folder/templates); where that folder
    cannot be made the report is still written."""
    import os
    import subprocess
    import sys

    trace = sorted((Path(__file__).parent / "data" / "hf_eager").glob("*.json.gz"))[0]
    cache = tmp_path / "cache"
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    for where, out in ((cache, "a"), (cache, "b"), (blocked, "c")):
        env = {**os.environ, "PROFILER_KIT_CACHE": str(where), "PYTHONPATH": str(Path(__file__).parents[1])}
        proc = subprocess.run([sys.executable, "-m", "profiler_kit.analyze", str(trace), "--out", str(tmp_path / out)],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / out / "report.html").stat().st_size > 100_000
    assert list((cache / "templates").glob("*.cache"))
    assert (tmp_path / "a" / "report.html").read_bytes().count(b"<table") == (tmp_path / "b" / "report.html").read_bytes().count(b"<table")

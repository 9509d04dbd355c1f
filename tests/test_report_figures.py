"""Figures drawn from real analyzer output: what they keep when they thin or trim data, and that
the plain-dict figures are the ones plotly.graph_objects drew."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import msgspec
import pytest

from profiler_kit.report import figures, plotly_json
from report_support import BERT, VIT, analysis, compare, modules_loaded_by_rendering, plotly_figures, sd_summary


def test_memory_timeline_thinning_keeps_the_peak_and_order():
    tl = sd_summary().modes["vanilla"].analysis.memory.timeline
    assert len(tl.ts_us) > figures.MEMORY_POINTS, "the SD trace's timeline is long enough to thin"
    xs, ys = figures.downsample_keep_extremes(tl.ts_us, tl.allocated_bytes)
    assert len(xs) <= figures.MEMORY_POINTS and xs == sorted(xs)
    assert max(ys) == max(tl.allocated_bytes)
    assert min(ys) == min(tl.allocated_bytes)


def test_time_split_reaches_the_measured_step():
    """Run reports: kernel time by bound plus the GPU waiting on the host add up to the median step."""
    summary = sd_summary()
    modes = summary.ok_modes()
    fig = figures.time_split({m: r.analysis for m, r in modes.items()}, {m: r.step_ms for m, r in modes.items()})
    bars = [t for t in fig["data"] if t["type"] == "bar"]
    for i, (mode, record) in enumerate(modes.items()):
        total = sum(t["x"][i] for t in bars)
        kernel_ms = record.analysis.kernel_us_per_step / 1e3
        assert abs(total - max(record.step_ms.median_ms, kernel_ms)) < 0.05 * kernel_ms, mode


def test_roofline_draws_exactly_the_roofs_the_analysis_used():
    """One owner for the roofs: the chart's ceilings are the analysis's recorded roofs, no more."""
    a = analysis(VIT)
    fig = figures.roofline({"vit": a})
    notes = [ann["text"] for ann in fig["layout"]["annotations"]]
    roof_notes = [n for n in notes if "TFLOP/s" in n]
    assert len(roof_notes) == len({r.peak_flops_per_s for r in a.roofs.compute})
    for roof in a.roofs.compute:
        assert any(roof.label in n and f"{roof.peak_flops_per_s / 1e12:,.4g} TFLOP/s" in n for n in roof_notes)
    assert any(f"{a.gpu_spec.memory_bandwidth_gbps:,.4g} GB/s" in n for n in notes)
    dashed = [t for t in fig["data"] if t["mode"] == "lines" and t["line"].get("dash") == "dash"]
    assert sorted(t["y"][0] for t in dashed) == sorted({r.peak_flops_per_s / 1e12 for r in a.roofs.compute})
    assert figures.roofline({"vit": msgspec.structs.replace(a, roofs=None)}) is None


# --------------------------------------------------------------------------------------------
# Figures are plain dicts (report/plotly_json.py), no longer plotly.graph_objects: the pages must
# draw exactly what graph_objects drew, and every dict must be what graph_objects would write.
# --------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "data" / "report_figures" / "graph_objects.json.gz"
SWEEP = REPO / "reports" / "h200-2026-11-29-standard" / "sweep.json"
NCU_RUN = Path(__file__).parent / "data" / "sd-ncu" / "512"


def _pages(tmp: Path) -> dict[str, str]:
    """Pages of every kind, from real data through the real analyzer: one trace; two traces and
    their comparison (a subplot grid); the committed H200 run; a run joined to Nsight Compute
    measurements (the measured figures); a published sweep (grids with shared y axes and lines)."""
    from profiler_kit.analysis.run import analyze_run
    from profiler_kit.records import read_sweep
    from profiler_kit.report import render_run_report, render_sweep_report, render_trace_report

    vit, bert = analysis(VIT), analysis(BERT)
    ncu = tmp / "ncu-run"
    shutil.copytree(NCU_RUN, ncu)
    written = {
        "vit": render_trace_report({"vit": vit}, None, tmp / "vit.html"),
        "vit_bert": render_trace_report({"vit": vit, "bert": bert}, compare(vit, bert, "vit", "bert"),
                                        tmp / "vit_bert.html"),
        "sd_run": render_run_report(sd_summary(), tmp / "sd_run.html"),
        "ncu_run": render_run_report(analyze_run(str(ncu)), tmp / "ncu_run.html"),
        "sweep": render_sweep_report(read_sweep(SWEEP), tmp / "sweep.html"),
    }
    return {name: path.read_text(encoding="utf-8") for name, path in written.items()}


def _drawn(pages: dict[str, str]) -> dict[str, dict]:
    """page -> figure id -> {data, layout without its template, config}."""
    out = {}
    for name, html in pages.items():
        figs = plotly_figures(html)
        for fig in figs.values():
            fig["layout"].pop("template")
        out[name] = figs
    return out


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, str]:
    return _pages(tmp_path_factory.mktemp("pages"))


def test_pages_draw_what_graph_objects_drew(pages):
    """Each figure of each page carries the traces, data and layout it carried when the report was
    built with plotly.graph_objects (tests/data/report_figures: written at that commit)."""
    golden = json.loads(gzip.decompress(GOLDEN.read_bytes()))
    drawn = _drawn(pages)
    assert sum(len(figs) for figs in golden.values()) >= 30, "every kind of figure is in the golden file"
    assert drawn.keys() == golden.keys()
    for name in golden:
        assert drawn[name].keys() == golden[name].keys(), name
        for fig_id, fig in golden[name].items():
            assert drawn[name][fig_id] == fig, f"{name}: {fig_id}"


def test_every_figure_is_what_graph_objects_writes(pages):
    """graph_objects validates each figure (a misspelt or misplaced property raises) and hands it
    back unchanged: the dicts are plotly's own normal form, template included."""
    import plotly.graph_objects as go
    import plotly.io as pio

    assert plotly_json.template() == pio.templates["plotly_white"].to_plotly_json()
    count = 0
    for name, html in pages.items():
        for fig_id, fig in plotly_figures(html).items():
            figure = {"data": fig["data"], "layout": fig["layout"]}
            assert go.Figure(figure).to_plotly_json() == figure, f"{name}: {fig_id}"
            assert fig["layout"]["template"] == plotly_json.template()
            assert fig["config"] == figures._CONFIG
            count += 1
    assert count >= 30


@pytest.mark.parametrize("grid", [
    dict(rows=2, cols=1, titles=["a", "b"], row_heights=[3, 11], vertical_spacing=110 / 412),
    dict(rows=2, cols=1, titles=["a", ""], row_heights=[1, 1], vertical_spacing=0.3),
    dict(rows=1, cols=6, titles=list("abcdef"), column_widths=[3, 2, 1, 1, 3, 2], horizontal_spacing=0.04,
         shared_y=True),
    dict(rows=1, cols=1, titles=["only"], horizontal_spacing=0.04, shared_y=True),
    dict(rows=2, cols=3, shared_y=True),
])
def test_grid_lays_out_what_make_subplots_does(grid):
    from plotly.subplots import make_subplots

    names = dict(titles="subplot_titles", shared_y="shared_yaxes")
    fig = make_subplots(**{names.get(k, k): v for k, v in grid.items()})
    ours = plotly_json.grid(**grid)
    cells = grid["rows"] * grid["cols"]
    for cell in range(1, cells + 1):             # a trace in every other cell, a line in each
        row, col = (cell - 1) // grid["cols"] + 1, (cell - 1) % grid["cols"] + 1
        if cell % 2:
            fig.add_scatter(x=[1], y=[2], row=row, col=col)
            plotly_json.in_cell(ours, cell, plotly_json.scatter(x=[1], y=[2]))
        fig.add_hline(y=1.0, line=dict(color="#1a202c", width=1), row=row, col=col)
        plotly_json.hline(ours, cell, 1.0, line=dict(color="#1a202c", width=1))
    fig.update_xaxes(title_text="x of the last cell", row=grid["rows"], col=grid["cols"])
    plotly_json.update_axes(ours, "x", cell=cells, title={"text": "x of the last cell"})
    fig.update_yaxes(automargin=False)
    plotly_json.update_axes(ours, "y", automargin=False)
    expected = fig.to_plotly_json()
    expected["layout"].pop("template")
    assert ours == expected


def test_div_is_what_plotly_to_html_writes(pages):
    """The <div> and script around a figure are plotly.io.to_html's, byte for byte but for the
    order of keys inside the JSON."""
    import plotly.graph_objects as go
    import plotly.io as pio

    fig = plotly_figures(pages["vit_bert"])["fig-comparison"]
    ours = figures.render_div({"data": fig["data"], "layout": fig["layout"]}, "fig-comparison")
    theirs = pio.to_html(go.Figure({"data": fig["data"], "layout": fig["layout"]}), include_plotlyjs=False,
                         full_html=False, div_id="fig-comparison", config=figures._CONFIG,
                         default_width="100%", post_script="window.pkPlotDone('{plot_id}');")
    assert plotly_figures(ours) == plotly_figures(theirs)

    def frame(html):                         # the page around the JSON arguments
        return re.sub(r"\[\{.*\}\],\s*\{.*\},\s*\{.*?\}\s*\)", "ARGS)", html, flags=re.S)
    assert frame(ours) == frame(theirs) and "ARGS)" in frame(ours)


def test_rendering_never_imports_plotly(tmp_path: Path) -> None:
    """plotly.js, the template and the version come from the package's files: rendering a report
    loads no plotly module (graph_objects alone took about 0.05 s to import)."""
    loaded = sorted(m for m in modules_loaded_by_rendering(tmp_path)
                    if m == "plotly" or m.startswith(("plotly.", "_plotly")))
    assert not loaded, loaded


def test_page_names_the_plotly_js_it_embeds(tmp_path: Path) -> None:
    """The footer's version is the embedded bundle's banner ("plotly.js v4.1.1"), not the Python
    package's (plotly 7.1.0 ships plotly.js 4.1.1: pages said "plotly.js 7.1.0")."""
    from profiler_kit.report import plotly_json, render_trace_report

    bundle = plotly_json.plotly_js()
    banner = re.search(rb"plotly\.js v([0-9.]+)", bundle[:512]).group(1).decode()
    assert plotly_json.plotly_js_version() == banner
    page = render_trace_report({"vit": analysis(VIT)}, None, tmp_path / "r.html").read_text()
    footer = re.search(r"the charts \(plotly\.js ([0-9.]+)\)", page)
    assert footer and footer.group(1) == banner


if __name__ == "__main__":
    # Rewrite the golden file from the current code, once a figure is meant to change:
    #   PYTHONPATH=.:tests python tests/test_report_figures.py
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        drawn = _drawn(_pages(Path(tmp)))
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_bytes(gzip.compress(json.dumps(drawn, sort_keys=True).encode(), mtime=0))
    print(f"wrote {GOLDEN}: {sum(len(f) for f in drawn.values())} figures")

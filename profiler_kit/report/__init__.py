"""HTML reports: one self-contained file per experiment run or analyzed trace.

    render_run_folder("outputs/.../RUN")                           # RUN/summary.json -> RUN/report.html
    render_run_report(summary, "run/report.html")                 # a records.Summary
    render_trace_report({"a": analysis_a, "b": analysis_b}, comparison, "out/report.html")  # records

Jinja2 templates (autoescaped) lay out what `context` computes; `figures` draws with Plotly.
plotly.js comes from the installed plotly package and is inlined once per page
(plotly_js="inline"), or written once as plotly.min.js beside the report and referenced
relatively (plotly_js="directory", for folders holding many reports). Nothing is fetched when
the page is opened.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import uuid
from pathlib import Path
from typing import Literal

import jinja2
from markupsafe import Markup

from profiler_kit import __version__, cache_folder, units
from profiler_kit.records import Analysis, Comparison, Summary, Sweep, read_summary, write_atomic
from profiler_kit.run_folder import REPORT_FILE, SUMMARY_FILE

from . import context, plotly_json
from .embed import json_for_script

__all__ = ["render_run_folder", "render_run_report", "render_sweep_report", "render_trace_report"]

PlotlyJs = Literal["inline", "directory"]
PLOTLY_FILE = "plotly.min.js"
# A report may weigh at most 6 MB. The page embeds its source data (base units) for anyone who
# wants the numbers back out; whatever room the page leaves under the limit (less a margin) is
# the budget for that copy, and the bulky lists, already drawn in the figures and tables, are
# left out of the copy first when it does not fit.
MAX_PAGE_BYTES = 6_000_000
EMBED_MARGIN_BYTES = 150_000
_BULKY = (("measured", "kernels"), ("memory", "timeline"), ("roofline_points",), ("attention", "calls"),
          ("top_kernels",))

class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept in the user's cache (cache_folder): compiling the templates was
    0.05-0.1 s of every report, a fifth of a small trace's whole analyze command (issue 24).
    Jinja keys each entry by the template's source checksum and its own version, and writes it
    atomically. A cache that cannot be read or written costs only the compile."""

    def load_bytecode(self, bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError):
            bucket.reset()

    def dump_bytecode(self, bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _template_cache() -> jinja2.BytecodeCache | None:
    folder = cache_folder.cache_dir() / "templates"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return _TemplateCache(str(folder))


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("profiler_kit.report", "templates"),
    bytecode_cache=_template_cache(),
    autoescape=True,                  # every template: all trace-derived strings are untrusted
    undefined=jinja2.StrictUndefined,
    trim_blocks=True, lstrip_blocks=True,
)
_env.filters.update({
    "us": units.duration_us, "ms": units.duration_ms, "pct": units.percent, "flops": units.flops,
    "bytes10": units.bytes_decimal, "gib": units.bytes_binary, "count": units.count,
    "tflops": units.tflops_per_s, "gbps": units.gb_per_s, "kshort": units.short_kernel_name,
})


@functools.lru_cache(maxsize=1)
def _plotly_js() -> bytes:
    # plotly.js is inlined inside <script>; it must not contain a closing tag of its own.
    return plotly_json.plotly_js().replace(b"</script", b"<\\/script")


def _with_analyses(data: dict, change) -> dict:
    """data with change(analysis) in place of each per-trace analysis, the containers on the way
    copied and everything else shared."""
    if "modes" in data:
        return {**data, "modes": {m: {**r, "analysis": change(r["analysis"])} if isinstance(r.get("analysis"), dict)
                                  else r for m, r in data["modes"].items()}}
    if isinstance(data.get("analyses"), dict):
        return {**data, "analyses": {k: change(a) if isinstance(a, dict) else a for k, a in data["analyses"].items()}}
    return data


def _without(node: dict, path: tuple[str, ...]) -> dict:
    """node with the entry at `path` set to None (where the path exists): the dicts along the
    path copied, the rest shared."""
    if not isinstance(node, dict) or path[0] not in node:
        return node
    return {**node, path[0]: None if len(path) == 1 else _without(node[path[0]], path[1:])}


def embedded_json(data: dict, budget: int) -> bytes:
    """The report's data as script-safe JSON (UTF-8), trimmed of bulky lists if over `budget`
    bytes. Trimming copies only the dicts on the way to what it drops: a deep copy of a run's
    data took longer than writing it."""
    text = json_for_script(data).encode()
    if len(text) <= budget:
        return text
    omitted: list[str] = []
    for path in _BULKY:
        data = _with_analyses(data, lambda a, path=path: _without(a, path))
        omitted.append(".".join(path))
        data = {**data, "_omitted_from_embedded_copy": list(omitted)}
        text = json_for_script(data).encode()
        if len(text) <= budget:
            return text
    # Still too big: keep everything but the per-trace analyses (the figures hold those).
    data = {k: v for k, v in data.items() if k != "analyses"}
    if "modes" in data:
        data["modes"] = {m: {k: v for k, v in r.items() if k != "analysis"} for m, r in data["modes"].items()}
    data["_omitted_from_embedded_copy"] = omitted + ["analysis"]
    return json_for_script(data).encode()


def _render(template: str, ctx: dict, data: dict, out_path: Path, plotly_js: PlotlyJs,
            plotly_js_dir: Path | None = None) -> Path:
    if plotly_js not in ("inline", "directory"):
        raise ValueError(f'plotly_js must be "inline" or "directory", not {plotly_js!r}')
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    plotly_src = None
    if plotly_js == "directory":
        # one plotly.min.js for a folder of reports (a sweep: its root), referenced relatively
        js_dir = Path(plotly_js_dir) if plotly_js_dir is not None else out_path.parent
        js_dir.mkdir(parents=True, exist_ok=True)
        js_path = js_dir / PLOTLY_FILE
        plotly_src = Path(os.path.relpath(js_path, out_path.parent)).as_posix()
        if not js_path.exists() or js_path.read_bytes() != _plotly_js():
            js_path.write_bytes(_plotly_js())
    # Rendered with markers where plotly.js and the data go, then put together as bytes: the
    # page's own size sets the data's budget, and plotly.js (4.8 MB) passes through no template,
    # join, encode or replace (those took about 0.03 s a page). The markers are random, so no
    # string from a trace can collide with them.
    token = uuid.uuid4().hex
    js_marker, data_marker = f"pk-plotly-{token}", f"pk-data-{token}"
    page = _env.get_template(template).render(
        **ctx, version=__version__, plotly_js_version=plotly_json.plotly_js_version(),
        generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        plotly_src=plotly_src,
        plotly_js=Markup(js_marker) if plotly_js == "inline" else "",
        data_json=Markup(data_marker)).encode()
    top, _, bottom = page.partition(data_marker.encode())
    parts = [top]
    if plotly_js == "inline":
        head, _, rest = top.partition(js_marker.encode())
        parts = [head, _plotly_js(), rest]
    room = MAX_PAGE_BYTES - EMBED_MARGIN_BYTES - sum(map(len, parts)) - len(bottom)
    parts += [embedded_json(data, room), bottom]

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.writelines(parts)
    write_atomic(out_path, write)
    return out_path


def render_run_report(summary: Summary, out_path: str | Path, plotly_js: PlotlyJs = "inline",
                      plotly_js_dir: Path | None = None) -> Path:
    """report.html for an experiment run from its summary record; returns the path written.
    plotly_js_dir: where plotly_js="directory" keeps plotly.min.js (default: beside the report)."""
    return _render("run.html.j2", context.run_context(summary), summary.to_builtins(), Path(out_path), plotly_js,
                   plotly_js_dir)


def render_run_folder(run_dir: str | Path, plotly_js: PlotlyJs | None = None) -> Path:
    """RUN_DIR/report.html from RUN_DIR/summary.json (the report step of a run: disk in, disk out).
    plotly_js: None takes the run's own report.plotly_js setting."""
    summary = read_summary(Path(run_dir) / SUMMARY_FILE)
    if plotly_js is None:
        plotly_js = (summary.config.get("report") or {}).get("plotly_js") or "inline"
    return render_run_report(summary, Path(run_dir) / REPORT_FILE, plotly_js=plotly_js)


def render_trace_report(analyses: dict[str, Analysis], comparison: Comparison | None, out_path: str | Path,
                        plotly_js: PlotlyJs = "inline") -> Path:
    """report.html for one or more analyzed traces (label -> analysis record), with the
    comparison of two of them when given; returns the path written."""
    if not analyses:
        raise ValueError("render_trace_report needs at least one analysis")
    data = {"analyses": {label: a.to_builtins() for label, a in analyses.items()},
            "comparison": comparison.to_builtins() if comparison is not None else None}
    out_path = Path(out_path)
    return _render("trace.html.j2", context.trace_context(analyses, comparison, out_path.parent), data,
                   out_path, plotly_js)


def render_sweep_report(sweep: Sweep, out_path: str | Path, plotly_js: PlotlyJs = "inline",
                        plotly_js_dir: Path | None = None) -> Path:
    """sweep.html for an aggregated sweep (records.Sweep); returns the path written."""
    from . import sweep_context
    return _render("sweep.html.j2", sweep_context.sweep_context(sweep), {"sweep": sweep.to_builtins()},
                   Path(out_path), plotly_js, plotly_js_dir)

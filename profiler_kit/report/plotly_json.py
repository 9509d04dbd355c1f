"""Plotly figures as the plain dicts plotly.js reads, and the <div> that draws one.

The report used to build its figures with plotly.graph_objects, which validates every property
on the way in and deep-copies (and validates again) the whole "plotly_white" template into each
figure: about 0.2 s of a one-trace report's 0.3 s render, plus 0.05 s importing graph_objects,
spent checking values this package writes itself (issue 24, docs/benchmarks.md "Report").
Figures are now the JSON-ready dicts plotly.js takes, ``{"data": [trace, ...], "layout": {...}}``,
written as graph_objects would have written them: nested properties spelled out (``marker:
{color}``, not ``marker_color``), titles as ``{"text": ...}``, the template's contents in
``layout.template``. tests/test_report_figures.py holds that to account: every figure of real
reports must pass graph_objects' validation and come back from it unchanged, and `grid` must
lay out what make_subplots does.

Nothing here imports plotly: plotly.js, its version and the template are read from the
installed package's files.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import msgspec

Figure = dict[str, Any]        # {"data": [trace, ...], "layout": {...}}: what Plotly.newPlot takes

TEMPLATE = "plotly_white"


@functools.lru_cache(maxsize=1)
def _package_dir() -> Path:
    spec = importlib.util.find_spec("plotly")      # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the report needs the plotly package (for plotly.js): pip install plotly")
    return Path(next(iter(spec.submodule_search_locations)))


def plotly_js() -> bytes:
    """plotly.min.js as the installed plotly package ships it (what plotly.offline.get_plotlyjs
    reads), UTF-8; the report keeps its own script-safe copy."""
    return (_package_dir() / "package_data" / "plotly.min.js").read_bytes()


# The bundle's own banner, "* plotly.js v4.1.1", in its first lines
_BUNDLE_VERSION = re.compile(rb"plotly\.js v(\d+(?:\.\d+)*)")


@functools.lru_cache(maxsize=1)
def plotly_js_version() -> str:
    """The version of plotly.js the report embeds, from the bundle's banner ("" if it has none).

    Not the Python package's version: plotly 7.1.0 ships plotly.js 4.1.1, and the page names the
    JavaScript that draws it. Reads the banner only (the bundle is 4.8 MB); no
    importlib.metadata, whose import and lookup cost every report 15 ms and 2 MB."""
    with open(_package_dir() / "package_data" / "plotly.min.js", "rb") as f:
        found = _BUNDLE_VERSION.search(f.read(512))
    return found.group(1).decode() if found else ""


@functools.lru_cache(maxsize=1)
def template() -> dict:
    """The plotly_white template's contents, as graph_objects puts them in layout.template.
    Shared by every figure: read-only."""
    path = _package_dir() / "package_data" / "templates" / f"{TEMPLATE}.json"
    return json.loads(path.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------------
# Building
# ----------------------------------------------------------------------------------------------

def figure(*traces: dict) -> Figure:
    return {"data": list(traces), "layout": {}}


def bar(**props) -> dict:
    return {"type": "bar", **props}


def scatter(**props) -> dict:
    return {"type": "scatter", **props}


def treemap(**props) -> dict:
    return {"type": "treemap", **props}


def _copy(value):
    """Dicts copied level by level (a merge must never write into a shared constant); leaves shared."""
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value


def merge(target: dict, props: dict) -> dict:
    """props into target, nested dicts merged key by key and anything else replaced: what
    graph_objects' update_layout / update_xaxes do with a dict."""
    for key, value in props.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = _copy(value)
    return target


def update_layout(fig: Figure, **props) -> Figure:
    merge(fig["layout"], props)
    return fig


def axes(fig: Figure, letter: str, cell: int | None = None) -> list[dict]:
    """The layout's x (letter "x") or y axes as update_xaxes / update_yaxes reach them: every one
    (the first always, created if absent), or those of one `grid` cell (numbered from 1, row
    by row from the top left)."""
    layout = fig["layout"]
    if cell is not None:
        names = [f"{letter}axis{_suffix(cell)}"]
    else:
        pattern = re.compile(rf"{letter}axis(\d*)")
        found = {int(m.group(1) or 1): key for key in layout if (m := pattern.fullmatch(key))}
        found.setdefault(1, f"{letter}axis")
        names = [found[n] for n in sorted(found)]
    return [layout.setdefault(name, {}) for name in names]


def update_axes(fig: Figure, letter: str, cell: int | None = None, **props) -> Figure:
    for axis in axes(fig, letter, cell):
        merge(axis, props)
    return fig


def annotate(fig: Figure, **props) -> Figure:
    fig["layout"].setdefault("annotations", []).append(props)
    return fig


# ----------------------------------------------------------------------------------------------
# Subplot grids: the layout plotly.subplots.make_subplots writes, for the grids the report draws
# (x/y plots, one cell each, numbered from 1 row by row from the top left)
# ----------------------------------------------------------------------------------------------

def grid(rows: int = 1, cols: int = 1, titles: list[str] | None = None,
         row_heights: list[float] | None = None, column_widths: list[float] | None = None,
         vertical_spacing: float | None = None, horizontal_spacing: float | None = None,
         shared_y: bool = False) -> Figure:
    """An empty figure laid out as make_subplots(rows, cols, subplot_titles=titles, ...,
    shared_yaxes=shared_y) lays it out, in its arithmetic (the domains come out bit for bit)."""
    if horizontal_spacing is None:
        horizontal_spacing = 0.2 / cols
    if vertical_spacing is None:
        vertical_spacing = (0.5 if titles is not None else 0.3) / rows
    if column_widths is None:
        widths = [(1.0 - horizontal_spacing * (cols - 1)) / cols] * cols
    else:
        total = float(sum(column_widths))
        widths = [(1.0 - horizontal_spacing * (cols - 1)) * (w / total) for w in column_widths]
    if row_heights is None:
        heights = [(1.0 - vertical_spacing * (rows - 1)) / rows] * rows
    else:
        total = float(sum(row_heights))
        heights = [(1.0 - vertical_spacing * (rows - 1)) * (h / total) for h in row_heights][::-1]
    # make_subplots stacks rows from the bottom of the page up: each cell's start, top row first
    starts = [[(sum(widths[:c]) + c * horizontal_spacing, sum(heights[:r]) + r * vertical_spacing)
               for c in range(cols)] for r in reversed(range(rows))]
    fig = figure()
    layout = fig["layout"]
    domains = []
    for r in range(rows):
        for c in range(cols):
            x0, y0 = starts[r][c]
            x_domain = [x0, x0 + widths[c]]
            y_domain = [_round(y0), _round(y0 + heights[-1 - r])]
            n = _suffix(r * cols + c + 1)
            # the axes' domains clamped into [0, 1], the titles placed on the unclamped ones
            layout[f"xaxis{n}"] = {"domain": [max(0.0, x_domain[0]), min(1.0, x_domain[1])], "anchor": f"y{n}"}
            layout[f"yaxis{n}"] = {"domain": [max(0.0, y_domain[0]), min(1.0, y_domain[1])], "anchor": f"x{n}"}
            if shared_y and c > 0:          # a row's axes follow the y axis of its first cell
                layout[f"yaxis{n}"].update(matches=f"y{_suffix(r * cols + 1)}", showticklabels=False)
            domains.append((x_domain, y_domain))
    titled = [{"y": y[1], "xref": "paper", "x": sum(x) / 2.0, "yref": "paper", "text": title,
               "showarrow": False, "font": {"size": 16}, "xanchor": "center", "yanchor": "bottom"}
              for title, (x, y) in zip(titles or [], domains) if title]
    if titled:
        layout["annotations"] = titled
    return fig


def _round(v: float) -> float:
    """make_subplots' rounding of a y domain end that floating point put just outside [0, 1]."""
    return 0.0 if -0.01 < v < 0.0 else 1.0 if 1.0 < v < 1.01 else v


def _suffix(cell: int) -> str:
    return str(cell) if cell > 1 else ""


def in_cell(fig: Figure, cell: int, trace: dict) -> dict:
    """The trace drawn in a `grid` cell: add_trace(trace, row=, col=)."""
    trace.update(xaxis=f"x{_suffix(cell)}", yaxis=f"y{_suffix(cell)}")
    fig["data"].append(trace)
    return trace


def hline(fig: Figure, cell: int, y: float, line: dict) -> Figure:
    """A horizontal line across a `grid` cell at data height y, as add_hline(row=, col=) draws
    it: only in a cell that holds a trace (add_hline's exclude_empty_subplots)."""
    n = _suffix(cell)
    if any(t.get("xaxis") == f"x{n}" and t.get("yaxis") == f"y{n}" for t in fig["data"]):
        fig["layout"].setdefault("shapes", []).append(
            {"line": _copy(line), "type": "line", "x0": 0, "x1": 1, "xref": f"x{n} domain",
             "y0": y, "y1": y, "yref": f"y{n}"})
    return fig


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------

# What plotly.io.json.to_json_plotly escapes: nothing in a figure can close the <script> it sits
# in, and U+2028/2029 stay escaped for older JS engines. Trace strings are untrusted input.
_UNSAFE = (("<", "\\u003c"), (">", "\\u003e"), ("/", "\\u002f"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def to_json(value: Any) -> str:
    """Compact JSON for a <script>, NaN and infinity as null (as plotly's orjson engine writes them)."""
    text = msgspec.json.encode(value).decode("utf-8")
    for char, escaped in _UNSAFE:
        if char in text:
            text = text.replace(char, escaped)
    return text


def div(fig: Figure, div_id: str, config: dict, post_script: str) -> str:
    """The figure's <div> and the script that draws it, as plotly.io.to_html(fig,
    include_plotlyjs=False, full_html=False, div_id=div_id, config=config, default_width="100%",
    post_script=post_script) writes it. `post_script` runs once the figure is drawn ({plot_id}:
    div_id)."""
    height = fig["layout"].get("height")
    then = """.then(function(){{
                            {post_script}
                        }})""".format(post_script=post_script.replace("{plot_id}", div_id))
    script = """\
                if (document.getElementById("{id}")) {{\
                    Plotly.newPlot(\
                        "{id}",\
                        {data},\
                        {layout},\
                        {config}\
                    ){then}\
                }}""".format(id=div_id, data=to_json(fig["data"]), layout=to_json(fig["layout"]),
                             config=json.dumps(config), then=then)
    return """\
<div style="height:{height}; width:100%;">\
        \
        \
            <div id="{id}" class="plotly-graph-div" \
style="height:100%; width:100%;"></div>\
            <script>\
                window.PLOTLYENV=window.PLOTLYENV || {{}};\
                {script};\
            </script>\
        </div>""".format(id=div_id, height=f"{height}px" if height is not None else "100%",
                         script=script).strip()

"""Names from a trace are untrusted: planted HTML and script fragments must render as text.

The records are real analyzer output for committed traces, with every kernel, op and module name
(and the labels) extended by payloads (report_support.poisoned). The browser test opens the same
kind of page and checks that nothing runs; here the HTML itself is checked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec

from profiler_kit.report import render_run_report, render_trace_report
from report_support import BERT, IMG_PAYLOAD, SCRIPT_PAYLOAD, VIT, analysis, compare, poisoned, sd_summary

SCRIPT_TAG = re.compile(r"<script\b", re.I)
CLOSE_TAG = re.compile(r"</script", re.I)


def render_poisoned_traces(tmp_path: Path) -> tuple[str, str, dict]:
    a, b = analysis(VIT), analysis(BERT)
    clean = render_trace_report({"vit": a, "bert": b}, compare(a, b, "vit", "bert"),
                                tmp_path / "clean.html").read_text(encoding="utf-8")
    labels = ("vit" + IMG_PAYLOAD, "bert" + SCRIPT_PAYLOAD)
    pa, pb = poisoned(a), poisoned(b)
    data = {labels[0]: pa, labels[1]: pb}
    cmp = poisoned(compare(pa, pb, *labels))
    dirty = render_trace_report(data, cmp, tmp_path / "dirty.html").read_text(encoding="utf-8")
    return clean, dirty, data


def assert_inert(clean: str, dirty: str) -> None:
    # The payloads add no <script> element and close none early.
    assert len(SCRIPT_TAG.findall(dirty)) == len(SCRIPT_TAG.findall(clean))
    assert len(CLOSE_TAG.findall(dirty)) == len(CLOSE_TAG.findall(clean))
    assert "<img" not in dirty.lower()
    assert dirty.count("<!--") == clean.count("<!--")
    # ... and the names still show, as text.
    assert "&lt;img src=x onerror=" in dirty
    assert "&lt;/script&gt;&lt;script&gt;window.__pwned=1" in dirty


def test_trace_and_module_names_render_as_text(tmp_path: Path) -> None:
    clean, dirty, data = render_poisoned_traces(tmp_path)
    assert_inert(clean, dirty)
    # The embedded data reads back exactly, payloads included.
    embedded = re.search(r'<script type="application/json" id="pk-data">(.*?)</script>', dirty, re.S).group(1)
    assert json.loads(embedded)["analyses"] == {label: a.to_builtins() for label, a in data.items()}


def test_run_report_names_config_and_command_render_as_text(tmp_path: Path) -> None:
    summary = sd_summary()
    clean = render_run_report(summary, tmp_path / "clean.html").read_text(encoding="utf-8")
    dirty_summary = poisoned(summary)
    dirty_summary = msgspec.structs.replace(
        dirty_summary, command=dirty_summary.command + SCRIPT_PAYLOAD,
        environment={**dirty_summary.environment, "host": IMG_PAYLOAD},
        config={**dirty_summary.config, "note": SCRIPT_PAYLOAD}, warnings=[IMG_PAYLOAD])
    dirty = render_run_report(dirty_summary, tmp_path / "dirty.html").read_text(encoding="utf-8")
    assert_inert(clean, dirty)

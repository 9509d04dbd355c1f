"""The report in a real browser: Debian's Chromium driven by Playwright, offline.

Every request that is not file:// is aborted and recorded: a report that tried to fetch anything
fails. Runs in CI (.ci/run installs chromium); skipped elsewhere only when Chromium is missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pytest

from profiler_kit.report import render_run_report, render_trace_report
from report_support import (BERT, IMG_PAYLOAD, SCRIPT_PAYLOAD, VIT, analysis, compare, poisoned,
                            sd_summary, third_party_traces)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAPTOP = {"width": 1366, "height": 768}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
                       reason=f"{CHROMIUM} is missing (apt-get install -y chromium); required when CI=true"),
]


@dataclass
class Opened:
    page: object
    requests: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    dialogs: list = field(default_factory=list)


@pytest.fixture(scope="module")
def browser():
    if os.environ.get("CI") == "true":
        from playwright.sync_api import sync_playwright      # CI installs the dev extra: must work
    else:
        sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def open_report(browser):
    pages = []

    def _open(path: Path) -> Opened:
        page = browser.new_page(viewport=LAPTOP)
        pages.append(page)
        opened = Opened(page)

        def route(r):
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                opened.requests.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: opened.errors.append(str(e)))
        page.on("dialog", lambda d: (opened.dialogs.append(d.message), d.dismiss()))
        page.goto(path.resolve().as_uri())
        page.wait_for_function("window.pkReport && window.pkReport.ready", timeout=30_000)
        return opened

    yield _open
    for page in pages:
        page.close()


def assert_clean(opened: Opened) -> None:
    page = opened.page
    assert opened.requests == [], "the report tried to fetch from the network"
    assert opened.errors == []
    assert opened.dialogs == []
    expected = page.evaluate("window.pkReport.expected")
    plots = page.locator("div.plotly-graph-div")
    assert plots.count() == expected
    for i in range(plots.count()):
        assert plots.nth(i).locator(".main-svg").count() > 0, plots.nth(i).get_attribute("id")
    # Each figure fits its own box (a figure sized before its neighbours were laid out would
    # spill over them).
    overflowing = page.evaluate("""Array.from(document.querySelectorAll('div.plotly-graph-div'))
        .filter(d => d.querySelector('.main-svg').getBoundingClientRect().width >
                     d.parentElement.getBoundingClientRect().width + 1).map(d => d.id)""")
    assert overflowing == []
    # Laptop width: the page never scrolls sideways, and no table hides its right-most columns
    # behind its box's scroll bar (long names wrap inside their cells instead).
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    clipped = page.evaluate("""Array.from(document.querySelectorAll('table'))
        .filter(t => t.parentElement.scrollWidth > t.parentElement.clientWidth + 1)
        .map(t => (t.closest('section') || {}).id + ' ' + (t.id || t.className))""")
    assert clipped == []


def test_trace_comparison_report_renders_offline(tmp_path, open_report):
    a, b = analysis(VIT), analysis(BERT)
    path = render_trace_report({"vit": a, "bert": b}, compare(a, b, "vit", "bert"), tmp_path / "report.html")
    opened = open_report(path)
    assert_clean(opened)
    assert opened.page.locator("#fig-comparison .main-svg").count() > 0


@pytest.mark.parametrize("trace", third_party_traces(), ids=lambda p: p.name[:40])
def test_every_third_party_trace_report_renders(tmp_path, open_report, trace):
    assert_clean(open_report(render_trace_report({trace.stem: analysis(trace)}, None, tmp_path / "r.html")))


def column_values(page, index: int) -> list[float]:
    return page.evaluate(
        """(i) => Array.from(document.querySelectorAll('#kernel-table tbody tr'))
                 .filter(r => !r.hidden).map(r => parseFloat(r.cells[i].dataset.v))""", index)


def test_kernel_table_sorts_and_filters(tmp_path, open_report):
    a, b = analysis(VIT), analysis(BERT)
    opened = open_report(render_trace_report({"vit": a, "bert": b}, None, tmp_path / "report.html"))
    page = opened.page
    names = page.evaluate("Array.from(document.querySelectorAll('#kernel-table thead th'))"
                          ".map(th => th.textContent.trim())")
    calls, total = names.index("calls"), names.index("total")
    page.locator("#kernel-table thead th").nth(calls).click()
    values = column_values(page, calls)
    assert values == sorted(values, reverse=True) and values[0] > values[-1]
    page.locator("#kernel-table thead th").nth(calls).click()
    assert column_values(page, calls) == sorted(values)
    assert page.locator("#kernel-table thead th").nth(calls).get_attribute("aria-sort") == "ascending"
    page.locator("#kernel-table thead th").nth(total).click()
    totals = column_values(page, total)
    assert totals == sorted(totals, reverse=True)

    rows = page.locator("#kernel-table tbody tr")
    n = rows.count()
    page.select_option("[data-filter-for=kernel-table] select[name=mode]", "bert")
    shown = [r for r in page.evaluate(
        "Array.from(document.querySelectorAll('#kernel-table tbody tr')).filter(r => !r.hidden).map(r => r.dataset.mode)")]
    assert shown and set(shown) == {"bert"} and len(shown) < n
    page.select_option("[data-filter-for=kernel-table] select[name=mode]", "")
    page.fill("[data-filter-for=kernel-table] input[type=search]", "flash_fwd")
    texts = page.evaluate("Array.from(document.querySelectorAll('#kernel-table tbody tr')).filter(r => !r.hidden)"
                          ".map(r => r.textContent)")
    assert texts and all("flash_fwd" in t for t in texts)
    assert page.locator("[data-filter-for=kernel-table] .count").inner_text() == f"{len(texts)} of {n} rows"


def test_planted_html_and_script_in_names_never_run(tmp_path, open_report):
    a, b = poisoned(analysis(VIT)), poisoned(analysis(BERT))
    labels = ("vit" + IMG_PAYLOAD, "bert" + SCRIPT_PAYLOAD)
    cmp = poisoned(compare(a, b, *labels))
    opened = open_report(render_trace_report({labels[0]: a, labels[1]: b}, cmp, tmp_path / "report.html"))
    assert_clean(opened)
    page = opened.page
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("img").count() == 0
    # The names are there, as text.
    assert IMG_PAYLOAD in page.locator("#kernel-table").inner_text()
    assert SCRIPT_PAYLOAD in page.locator("#attention-table").inner_text()


def test_run_report_renders_offline(tmp_path, open_report):
    opened = open_report(render_run_report(sd_summary(), tmp_path / "report.html"))
    assert_clean(opened)
    for fig in ("time", "categories", "blocks", "attention", "roofline", "memory_peaks"):
        assert opened.page.locator(f"#fig-{fig} .main-svg").count() > 0, fig


def test_planted_html_in_a_run_report_never_runs(tmp_path, open_report):
    summary = poisoned(sd_summary())
    summary = msgspec.structs.replace(summary, command=summary.command + SCRIPT_PAYLOAD,
                                      environment={**summary.environment, "host": IMG_PAYLOAD})
    opened = open_report(render_run_report(summary, tmp_path / "report.html"))
    assert_clean(opened)
    assert opened.page.evaluate("typeof window.__pwned") == "undefined"
    assert opened.page.locator("img").count() == 0
    assert SCRIPT_PAYLOAD in opened.page.locator("#environment").inner_text()


PUBLISHED_SWEEP = Path(__file__).resolve().parents[1] / "reports" / "h200-2026-11-29-standard" / "sweep.json"


def test_sweep_report_renders_offline(tmp_path, open_report):
    """The standard sweep measured on an H200, rendered as sweep.html: same checks as a run report."""
    from profiler_kit.records import read_sweep
    from profiler_kit.report import render_sweep_report

    sweep = read_sweep(PUBLISHED_SWEEP)
    path = render_sweep_report(sweep, tmp_path / "sweep.html")
    assert path.stat().st_size <= 6_000_000
    opened = open_report(path)
    assert_clean(opened)
    for fig in ("speedup", "time", "memory", "bounds", "scaling"):
        assert opened.page.locator(f"#fig-{fig} .main-svg").count() > 0, fig
    assert opened.page.locator("#jobs-table tbody tr").count() == len(sweep.rows)


def test_planted_html_in_a_sweep_report_never_runs(tmp_path, open_report):
    from profiler_kit.records import read_sweep
    from profiler_kit.report import render_sweep_report

    sweep = poisoned(read_sweep(PUBLISHED_SWEEP))
    sweep = msgspec.structs.replace(sweep, jobs=[msgspec.structs.replace(
        j, reason=IMG_PAYLOAD, overrides=[SCRIPT_PAYLOAD]) for j in sweep.jobs], warnings=[SCRIPT_PAYLOAD])
    opened = open_report(render_sweep_report(sweep, tmp_path / "sweep.html"))
    assert_clean(opened)
    assert opened.page.evaluate("typeof window.__pwned") == "undefined"
    assert opened.page.locator("img").count() == 0
    assert SCRIPT_PAYLOAD in opened.page.locator("#jobs").inner_text()


def test_a_report_judged_against_measured_roofs_renders(tmp_path, open_report):
    """The Roofs table (datasheet beside measured) and the dotted roofs of the other basis."""
    from profiler_kit.analysis import analyze_trace
    from profiler_kit.records import read_roof_calibration
    data = Path(__file__).parent / "data"
    record = analyze_trace(data / "sd" / "trace_vanilla.json.gz", label="vanilla", roof_basis="measured",
                           calibration=read_roof_calibration(data / "roofs" / "h200_measured.json")).record
    opened = open_report(render_trace_report({"vanilla": record}, None, tmp_path / "report.html"))
    assert_clean(opened)
    assert opened.page.locator("table.roofs tbody tr").count() >= 5
    assert opened.page.locator("#fig-roofline .main-svg").count() > 0


def test_a_run_report_with_measured_traffic_renders(tmp_path, open_report):
    """The H200 run joined to its Nsight Compute measurements (tests/data/sd-ncu/512): the measured
    section renders clean at laptop width (its tables do not clip), with both of its figures."""
    import shutil
    from profiler_kit.analysis.run import analyze_run
    folder = tmp_path / "run"
    shutil.copytree(Path(__file__).parent / "data" / "sd-ncu" / "512", folder)
    summary = analyze_run(str(folder))
    opened = open_report(render_run_report(summary, tmp_path / "report.html"))
    assert_clean(opened)
    page = opened.page
    for fig in ("measured_bytes", "measured_roofline"):
        assert page.locator(f"#fig-{fig} .main-svg").count() > 0, fig
    # one verdict line per measured mode, as the analysis stored it
    assert page.locator("#measured .verdict-line").count() == 4
    assert page.locator("#measured .verdict-line.warn").count() == 1      # xformers' flash kernel

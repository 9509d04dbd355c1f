"""One owner per rule, checked across layers on real data: what a record decides is what every
later layer (analysis, log table, report) shows, and old artifacts still load.

The data is this project's own H200 run (tests/data/sd, analysed by analysis.run.analyze_run as
after a real run) and the run summaries published in reports/h200-2026-11-26 (schema version 1).
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import msgspec
from markupsafe import escape
import pytest

from profiler_kit import records
from profiler_kit.records import NOISE_IQR_FRACTION, RecordError, StepStats
from profiler_kit.report import render_run_report
from profiler_kit.run_folder import log_table
from report_support import sd_summary

REPO = Path(__file__).resolve().parents[1]
PUBLISHED_V1 = sorted((REPO / "reports" / "h200-2026-11-26").glob("*.summary.json"))


def _timing_badges(page: str) -> dict[str, bool]:
    """mode -> whether the timing table marks it noisy."""
    table = page[page.index('<section id="timing">'):page.index('<section id="environment">')]
    rows = re.findall(r"<tr><td><b>([^<]+)</b>(.*?)</tr>", table, re.S)
    return {mode: 'badge noisy' in row for mode, row in rows}


def test_the_noise_flag_shown_is_the_records_own(tmp_path):
    """A 6 % IQR (flagged by the report's old 5 % rule) and a 12 % IQR: only the record decides."""
    summary = sd_summary()
    modes = dict(summary.modes)
    just_under = StepStats(median_ms=40.0, iqr_ms=40.0 * (NOISE_IQR_FRACTION - 0.04), min_ms=38.0, n=20)
    over = StepStats(median_ms=40.0, iqr_ms=40.0 * (NOISE_IQR_FRACTION + 0.02), min_ms=38.0, n=20)
    modes["vanilla"] = msgspec.structs.replace(modes["vanilla"], step_ms=just_under)
    modes["xformers"] = msgspec.structs.replace(modes["xformers"], step_ms=over)
    summary = msgspec.structs.replace(summary, modes=modes)
    assert (just_under.noisy, over.noisy) == (False, True)
    page = render_run_report(summary, tmp_path / "report.html").read_text(encoding="utf-8")
    shown = _timing_badges(page)
    assert shown == {m: bool(r.step_ms and r.step_ms.noisy) for m, r in summary.modes.items()}
    assert f"IQR above {NOISE_IQR_FRACTION:.0%}".replace("%", " %") in page
    table = log_table(summary).splitlines()
    starred = {line.split()[0] for line in table[2:] if len(line.split()) > 4 and line.split()[3].endswith("*")}
    assert starred == {m for m, r in summary.modes.items() if r.step_ms and r.step_ms.noisy}


def test_a_stored_noise_flag_cannot_disagree_with_the_rule():
    data = {"median_ms": 10.0, "iqr_ms": 5.0, "min_ms": 9.0, "n": 5, "noisy": False}
    assert msgspec.convert(data, StepStats).noisy is True
    assert StepStats.of([10.0, 10.1, 9.9, 10.0]).noisy is False


def test_findings_are_stored_by_the_analysis_and_narrated_as_stored(tmp_path):
    summary = sd_summary()
    rules = [f.rule for f in summary.findings]
    # What an expert expects first on this run (SD 1.5, 512 px, H200): unfused attention is
    # memory-bound with the softmax on top, the fused modes save memory, the step is host-bound.
    assert {"memory_bound_attention", "softmax_on_top", "peak_memory", "host_bound_step"} <= set(rules)
    mb = next(f for f in summary.findings if f.rule == "memory_bound_attention" and f.subject == "vanilla")
    vanilla = summary.modes["vanilla"].analysis
    unfused_us = sum(c.time_us for c in vanilla.attention.calls)
    assert mb.figures["attention_us"] == pytest.approx(unfused_us)
    assert mb.figures["memory_bound_fraction"] > 0.5
    fp16_tensor = vanilla.roofs.roof("tensor", "fp16")
    assert mb.figures["ridge_flops_per_byte"] == fp16_tensor.ridge_flops_per_byte   # the roof it used
    page = render_run_report(summary, tmp_path / "report.html").read_text(encoding="utf-8")
    verdict = page[page.index('<section id="verdict">'):page.index("</section>")]
    titles = [html.unescape(t) for t in re.findall(r'<div class="t">(.*?)</div>', verdict)]
    assert titles == [f.title for f in summary.findings]


def test_fastest_mode_names_pytorchs_default_sdpa_mode():
    """The rule looks for the `sdpa` mode the experiment really runs (it once looked for
    `sdpa_default`, which does not exist)."""
    summary = sd_summary()
    fastest = next(f for f in summary.findings if f.rule == "fastest_mode")
    timed = {m: r.step_ms.median_ms for m, r in summary.modes.items() if r.step_ms}
    assert fastest.subject == min(timed, key=timed.get)
    if fastest.subject != "sdpa":
        assert "PyTorch's default SDPA (sdpa" in fastest.title
        assert fastest.figures["default_sdpa_median_ms"] == timed["sdpa"]


def test_the_gpu_mismatch_is_warned_about_once(tmp_path):
    summary = sd_summary()
    mismatch = "+gpu=a100 (NVIDIA A100 SXM4 80GB) but the device is 'NVIDIA H200': roofline figures use the configured spec"
    summary = msgspec.structs.replace(
        summary, gpu_spec=msgspec.structs.replace(summary.gpu_spec, mismatch=mismatch),
        warnings=[*summary.warnings, mismatch])          # as experiment.resolve_gpu_spec records it
    page = render_run_report(summary, tmp_path / "report.html").read_text(encoding="utf-8")
    warnings = page[page.index('<ul class="warnings">'):]
    assert warnings[:warnings.index("</ul>")].count(str(escape(mismatch))) == 1


@pytest.mark.parametrize("path", PUBLISHED_V1, ids=lambda p: p.name)
def test_published_v1_summaries_still_load_and_render(tmp_path, path):
    old = json.loads(path.read_text())
    assert old["schema_version"] == 1
    summary = records.read_summary(path)
    assert summary.schema_version == records.SCHEMA_VERSION and summary.analyzed is False
    for mode, rec in old["modes"].items():
        new = summary.modes[mode]
        assert new.status == rec["status"]
        if rec.get("step_ms"):
            assert new.step_ms.median_ms == rec["step_ms"]["median"] and new.step_ms.n == rec["step_ms"]["n"]
        if rec.get("oom_requested"):
            assert new.oom_requested_bytes == records.parse_size_bytes(rec["oom_requested"]) > 2**30
    page = render_run_report(summary, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "holds no findings" in page and "python -m profiler_kit.analyze RUN_DIR" in page


def test_unreadable_or_newer_artifacts_fail_with_one_line(tmp_path):
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"schema_version": records.SCHEMA_VERSION + 1}))
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": 2, "modes": ')
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"schema_version": 2, "reference_mode": "vanilla", "run": {"device": "cpu"}}))
    for path, says in ((newer, "upgrade profiler_kit"), (broken, "not valid JSON"), (wrong, "not a valid Summary"),
                       (tmp_path / "missing.json", "cannot read")):
        with pytest.raises(RecordError) as err:
            records.read_summary(path)
        assert says in str(err.value) and "\n" not in str(err.value)


def test_the_one_writer_never_leaves_half_a_file(tmp_path):
    """A write that dies half-way (disk full, Ctrl-C) leaves the previous file whole, no debris."""
    path = tmp_path / "summary.json"
    records.write_record(path, sd_summary())
    before = path.read_bytes()

    def dies_half_way(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(before[: len(before) // 2].decode(errors="ignore"))
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        records.write_atomic(path, dies_half_way)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    assert records.read_summary(path) == sd_summary()


FP32 = REPO / "tests" / "data" / "sd-fp32"


def _analysed_fp32(tmp_path, which: str):
    from profiler_kit.analysis.run import analyze_run
    run = tmp_path / which
    shutil.copytree(FP32 / which, run)
    return analyze_run(str(run))


def test_tf32_reaches_the_gemm_roof_and_bound(tmp_path):
    """Real fp32 runs on an H200: tf32=false judges the attention GEMMs against the FP32 CUDA-core
    roof (67 TFLOP/s: compute-bound), tf32=true against the TF32 tensor roof (495 TFLOP/s: the
    same unfused attention becomes memory-bound). The run's setting reaches the cost model."""
    off = _analysed_fp32(tmp_path, "tf32off").modes["vanilla"].analysis
    on = _analysed_fp32(tmp_path, "tf32on").modes["vanilla"].analysis
    assert off.roofs.allow_tf32 is False and on.roofs.allow_tf32 is True
    assert off.roofs.roof("tensor", "tf32") is None and off.roofs.roof("cuda", "fp32").judged_us > 0
    assert on.roofs.roof("tensor", "tf32").judged_us > 0
    gemm_dtypes = {(p.engine, p.dtype) for p in on.roofline_points if p.category in ("gemm", "conv")}
    assert ("tensor", "tf32") in gemm_dtypes
    off_att, on_att = off.bound_by_category_us["attention"], on.bound_by_category_us["attention"]
    assert off_att["compute"] > off_att["memory"]          # fp32 CUDA cores: the GEMMs' math limits
    assert on_att["memory"] > 10 * on_att["compute"]       # tensor cores: the N×N traffic limits
    # The same trace judged both ways: only the TF32 setting differs.
    from profiler_kit.analysis import analyze_trace
    trace = FP32 / "tf32off" / "trace_vanilla.json.gz"
    as_if_on = analyze_trace(trace, spec="h200", allow_tf32=True).record
    assert as_if_on.roofs.roof("tensor", "tf32") is not None
    assert as_if_on.bound_by_category_us["attention"]["memory"] > off_att["memory"]
    assert as_if_on.flops_estimate == pytest.approx(off.flops_estimate)    # same work, other roof
    # ... and the findings follow: memory-bound attention only where the roofline says so.
    rules_on = [f.rule for f in _analysed_fp32(tmp_path / "again", "tf32on").findings]
    rules_off = [f.rule for f in _analysed_fp32(tmp_path / "again", "tf32off").findings]
    assert "memory_bound_attention" in rules_on and "memory_bound_attention" not in rules_off


def test_the_host_hides_a_gain_only_beyond_the_noise():
    """Measured pairs (docs/gpu-results.md): SD3 1024 px on the H200, xformers 3.77x under CUDA
    graphs and 3.72x eagerly (the same measurement); SD 1.5 512 px on the H100, xformers 1.39x
    replayed and 0.95x eagerly (the host sets the eager step)."""
    from profiler_kit.records.stats import host_hides_gain
    from profiler_kit.records.summary import ModeComparison
    from profiler_kit.records.sweep import ExecutionPair

    assert not host_hides_gain(3.77, 3.72)
    assert host_hides_gain(1.39, 0.95)
    assert not host_hides_gain(1.39, None)
    # the eager steps' own spread widens the margin: 20 % apart but 25 % of spread is no finding
    assert host_hides_gain(1.20, 1.0) and not host_hides_gain(1.20, 1.0, eager_spread=0.25)
    cmp = ModeComparison(speedup=3.77, min_speedup=3.7, loop_speedup=3.7, eager_speedup=3.72)
    assert not cmp.host_hides_gain
    pair = ExecutionPair(group="sd15", resolution=512, mode="xformers", execution="cuda_graphs",
                         replayed_job="j", replayed_speedup=1.39, eager_speedup=0.95)
    assert pair.host_hides_gain

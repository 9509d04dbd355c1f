"""The critical path of each step and the what-ifs re-timed on it (issue 22), on real traces:
HTA's own critical-path test trace (against HTA's figures), this project's H200 SD 1.5 traces
(eager and graph-replayed), checked against the step times the same card measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from profiler_kit.analysis import analyze_trace
from profiler_kit.analysis.critical_path import build_path_model, walk
from profiler_kit.analysis.what_if import replay, with_mode_what_ifs
from profiler_kit.records import CriticalPath, analysis_from_builtins, read_summary, to_json

DATA = Path(__file__).parent / "data"
HTA_ALEXNET = DATA / "third_party" / "hta" / "benchmark_result_2869224_1695835535_trace.json.gz"
HTA_STEP = "[param|pytorch.model.alex_net|0|0|0|measure|forward]"
# HTA's critical path of the same annotation, instance_id=1 (traceinsight 0.6.1, HTA's current
# release; `critical_path_analysis(rank=0, annotation=HTA_STEP, instance_id=1)`): the sum of its
# path edges' durations, of which GPU compute (gpu_compute_bound)
HTA_PATH_US = 35_834.0
HTA_GPU_COMPUTE_US = 3_712.0
SD = DATA / "sd"                        # eager, SD 1.5 512 px, H200
SD_GRAPHS = DATA / "sd-graphs"          # the same point replayed from CUDA graphs, H200


@pytest.fixture(scope="module")
def alexnet():
    return analyze_trace(HTA_ALEXNET, step=HTA_STEP)


@pytest.fixture(scope="module")
def sd_eager():
    return {m: analyze_trace(SD / f"trace_{m}.json.gz", label=m)
            for m in ("vanilla", "xformers", "sdpa_cudnn")}


def test_path_length_within_one_percent_of_hta(alexnet):
    cp = alexnet.record.critical_path
    assert cp.step_source == f"--step {HTA_STEP}"
    # the annotation is nested in another of the same name: HTA's instance 1 is the inner one
    inner = cp.steps[1]
    assert inner.name.endswith("[1]")
    assert abs(inner.length_us / HTA_PATH_US - 1) < 0.01
    assert inner.breakdown_us["gpu"] == pytest.approx(HTA_GPU_COMPUTE_US, abs=1.0)
    assert inner.breakdown_us["sync"] > 0          # its cudaStreamSynchronize calls
    assert inner.balanced and cp.steps[0].balanced


def test_path_spans_the_step_and_its_parts_sum_to_it(sd_eager):
    a = sd_eager["vanilla"]
    trace = a.table.trace
    step = a.record.critical_path.steps[0]
    spans = trace.spans
    i = next(i for i in range(len(spans)) if trace.names[spans.name_id[i]] == step.name)
    gpu_end = (trace.gpu.start_ns + trace.gpu.dur_ns).max() / 1000.0
    assert step.start_us == pytest.approx(spans.start_ns[i] / 1000.0)
    assert step.length_us == pytest.approx(gpu_end - step.start_us)
    assert step.balanced
    assert sum(step.gpu_by_category_us.values()) == pytest.approx(step.breakdown_us["gpu"])
    assert sum(step.cpu_by_name_us.values()) == pytest.approx(step.breakdown_us["cpu"], rel=1e-6)
    # the profiled eager step at 512 px is host-bound: almost all of its path is on the host
    assert (step.breakdown_us["cpu"] + step.breakdown_us["launch"]) / step.length_us > 0.9
    assert step.launch_bound > step.activities / 2


def test_replay_of_the_unchanged_step_is_its_path_length(sd_eager, alexnet):
    for a in (*sd_eager.values(), alexnet):
        model = a.path_model
        for g in model.steps:
            dur = (g.end - g.start).astype(np.float64)
            assert replay(g, dur, model.launch_latency_ns) == pytest.approx(g.end.max() - g.t0)


def test_segments_cover_the_path_back_to_back(sd_eager):
    g = sd_eager["xformers"].path_model.steps[0]
    segs, _ = walk(g)
    forward = list(reversed(segs))
    assert forward[0][2] == g.t0 and forward[-1][3] == g.end.max()
    assert all(a[3] == b[2] for a, b in zip(forward, forward[1:]))


def test_attention_what_if_is_retimed_not_amdahl(sd_eager):
    rec = sd_eager["vanilla"].record
    cp = rec.critical_path
    x2 = next(w for w in cp.what_if if w.scenario == "attention_x2")
    amdahl = cp.length_us - rec.attention.total_us / 2
    # host-bound: halving 6.6 ms of attention buys almost nothing of the 100 ms step
    assert x2.predicted_step_us <= x2.baseline_step_us
    assert x2.predicted_step_us > amdahl + 0.9 * rec.attention.total_us / 2


def _measured_ms(summary_dir: Path, mode: str) -> float:
    return read_summary(summary_dir / "summary.json").modes[mode].step_ms.median_ms


def test_launches_free_predicts_the_graph_replay_within_ten_percent(sd_eager):
    for mode, a in sd_eager.items():
        free = next(w for w in a.record.critical_path.what_if if w.scenario == "launches_free")
        measured_us = _measured_ms(SD_GRAPHS, mode) * 1000.0
        assert abs(free.predicted_step_us / measured_us - 1) < 0.10, mode


def test_attention_as_fast_as_another_mode_under_graphs(sd_eager):
    records = with_mode_what_ifs(sd_eager)
    scenarios = {w.scenario: w for w in records["vanilla"].critical_path.what_if}
    assert {"attention_as:sdpa_cudnn", "attention_as:xformers"} <= set(scenarios)
    assert "attention_as:vanilla" not in {w.scenario for w in records["sdpa_cudnn"].critical_path.what_if}
    for mode in ("sdpa_cudnn", "xformers"):
        predicted = scenarios[f"launches_free+attention_as:{mode}"].predicted_step_us
        measured_us = _measured_ms(SD_GRAPHS, mode) * 1000.0
        assert abs(predicted / measured_us - 1) < 0.10, mode


def test_graph_replay_kernels_stay_on_the_path():
    """HTA issue #290: kernels launched by cudaGraphLaunch fell off HTA's path."""
    a = analyze_trace(SD_GRAPHS / "trace_vanilla.json.gz")
    step = a.record.critical_path.steps[0]
    assert step.activities > 1000
    assert step.breakdown_us["gpu"] / step.length_us > 0.9
    assert step.breakdown_us["launch"] > 0          # the graph launch starts it


def test_record_round_trip(alexnet):
    data = json.loads(to_json(alexnet.record))
    back = analysis_from_builtins(data)
    assert isinstance(back.critical_path, CriticalPath)
    assert back.critical_path == alexnet.record.critical_path


def test_unknown_step_name_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "profiler_kit.analyze", str(HTA_ALEXNET),
                           "--step", "no such range", "--out", str(tmp_path), "--no-report"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no annotation named 'no such range'" in proc.stderr


def test_sweep_sets_predictions_against_the_replayed_steps(tmp_path):
    """An eager job and a CUDA-graph job of the same point (SD 1.5 512 px, H200): each pair
    carries the eager profile's predictions and their error against the replayed step."""
    import shutil

    from profiler_kit.aggregate import main as aggregate
    from profiler_kit.analysis.run import analyze_run
    from profiler_kit.records import PREDICTION_TOLERANCE, read_sweep

    shutil.copytree(SD, tmp_path / "eager")
    shutil.copytree(SD_GRAPHS, tmp_path / "graphs")
    for job in ("eager", "graphs"):
        analyze_run(str(tmp_path / job))
    assert aggregate([str(tmp_path)]) == 0
    sweep = read_sweep(tmp_path / "sweep.json")
    pairs = {p.mode: p for p in sweep.execution_pairs}
    assert set(pairs) == {"vanilla", "xformers", "sdpa_cudnn"}
    for mode, p in pairs.items():
        assert p.reference_mode == "vanilla"
        assert abs(p.prediction_error) < PREDICTION_TOLERANCE, mode
        assert abs(p.reference_prediction_error) < PREDICTION_TOLERANCE, mode
    assert pairs["vanilla"].predicted_from_reference_ms == pairs["vanilla"].predicted_replayed_ms
    checked = [f for f in sweep.findings if f.rule == "what_if_checked"]
    assert len(checked) == 1 and checked[0].level == "info"
    assert checked[0].figures["checks"] == 5
    html = (tmp_path / "sweep.html").read_text()
    assert 'id="fig-predicted"' in html and "12.50 (+5.2 %) (vanilla)" in html
    eager_rows = [r for r in sweep.rows if r.execution == "eager" and r.mode == "vanilla"]
    assert eager_rows[0].path_ms_per_step > eager_rows[0].step_median_ms   # profiler overhead on the host


def test_figure_segments_cover_the_path_end_to_end():
    """A graph replay's path (1,347 kernels) is drawn with stretches under 1/1500 of it absorbed:
    still from 0 to the path's length, back to back."""
    a = analyze_trace(DATA / "sd-graphs-capture" / "run" / "trace_vanilla.json.gz",
                      capture=DATA / "sd-graphs-capture" / "run" / "capture_vanilla.json.gz")
    step = a.record.critical_path.steps[0]
    seg = step.segments
    assert 10 < len(seg) <= 1500
    assert seg[0].start_us == 0.0
    assert seg[-1].start_us + seg[-1].dur_us == pytest.approx(step.length_us)
    assert all(x.start_us + x.dur_us == pytest.approx(y.start_us) for x, y in zip(seg, seg[1:]))
    assert {"attention", "conv", "gemm"} <= {s.label for s in seg}


def test_report_shows_the_path_and_the_what_ifs(tmp_path, sd_eager):
    from profiler_kit.report import render_trace_report

    out = tmp_path / "report.html"
    render_trace_report({m: a.record for m, a in sd_eager.items()}, None, out)
    html = out.read_text()
    assert 'id="path"' in html and 'id="fig-path"' in html
    assert "every launch free (CUDA graphs)" in html
    assert "launch overhead" in html


def test_checks_of_the_profiling_guide(sd_eager):
    """Syncs with their cause, GPU gaps with the host op beside, launch latency, kernels per
    step and memory growth, on the SD 1.5 eager trace (one step, 1,324 kernels)."""
    a = sd_eager["vanilla"]
    c = a.record.critical_path.checks
    assert c.kernels_per_step == [a.record.kernels.count]
    assert [s.call for s in c.syncs] == ["cudaDeviceSynchronize"] and c.syncs[0].mid_step == 0
    lat = c.launch_latency_us
    assert lat["p10"] <= lat["p50"] <= lat["p90"] <= lat["p99"]
    assert lat["p50"] == pytest.approx(a.record.critical_path.launch_latency_us)
    assert 5 < lat["p50"] < 20                   # an H200's eager launch: about 10 µs
    assert c.gap_count > 100 and c.gaps[0].dur_us >= c.gaps[-1].dur_us >= c.gap_min_us
    assert all(g.host for g in c.gaps)
    assert c.memory_growth_bytes == [0]          # one step: what it allocates, it frees
    rules = {f.rule for f in a.record.findings}
    assert {"host_bound_path", "gpu_gaps"} <= rules
    assert "host_sync" not in rules and "memory_growth" not in rules


def test_memory_growth_over_twelve_steps_is_none():
    """The 12-step SD 1.5 H200 trace frees in every step what it allocates: no finding."""
    a = analyze_trace(Path(__file__).parent.parent / "benchmarks" / "data"
                      / "sd15-512-vanilla-12steps-opheavy-h200.trace.json.gz")
    cp = a.record.critical_path
    assert len(cp.steps) == 12 and all(s.balanced for s in cp.steps)
    assert cp.checks.memory_growth_bytes == [0] * 12
    assert cp.checks.kernels_per_step == [1324] * 12
    assert "memory_growth" not in {f.rule for f in a.record.findings}


def test_mid_step_sync_is_a_finding():
    """TraceLens' ViT trace: a cudaDeviceSynchronize followed by more launches in the step."""
    a = analyze_trace(DATA / "third_party" / "tracelens" / "Falconsai_nsfw_image_detection__1016002.json.gz")
    found = [f for f in a.record.findings if f.rule == "host_sync"]
    assert len(found) == 1 and found[0].figures["mid_step_syncs"] == 1


def test_kernels_per_step_eager_against_compile():
    from profiler_kit.analysis import compare

    eager = analyze_trace(SD / "trace_vanilla.json.gz", label="eager").record
    compiled = analyze_trace(DATA / "sd-graphs-capture" / "compile-default" / "trace_vanilla.json.gz",
                             label="compile").record
    found = [f for f in compare(eager, compiled).findings if f.rule == "kernels_per_step"]
    assert len(found) == 1 and found[0].subject == "compile"
    assert found[0].figures == {"kernels_per_step_eager": 1324.0, "kernels_per_step_compile": 899.0}


def test_item_sync_named_by_its_op_and_module():
    """The H200 BERT eager trace: an .item() in the model (cudaStreamSynchronize under
    aten::_local_scalar_dense, in BertModel) mid-step, in each of its two steps."""
    a = analyze_trace(DATA / "hf_eager" / "bert-eager-modules-h200.json.gz")
    cp = a.record.critical_path
    item = [s for s in cp.checks.syncs if s.op == "aten::_local_scalar_dense"]
    assert len(item) == 1
    assert item[0].call == "cudaStreamSynchronize" and item[0].count == 2 and item[0].mid_step == 2
    assert "BertModel" in item[0].frame
    assert all(s.breakdown_us["sync"] > 0 and s.balanced for s in cp.steps)
    found = [f for f in a.record.findings if f.rule == "host_sync"]
    assert len(found) == 1 and "aten::_local_scalar_dense" in found[0].detail


def test_waiting_on_work_launched_before_the_step():
    """TraceLens' vLLM decode replay (MI300X): the graph launch is issued while the stream still
    runs earlier work; that wait is GPU time on the path, not launch overhead."""
    tl = DATA / "third_party" / "tracelens" / "2026"
    a = analyze_trace(tl / "vllm_decode_full_graph_execution.json.gz",
                      capture=tl / "vllm_decode_full_graph_capture.json.gz")
    cp = a.record.critical_path
    step = cp.steps[0]
    assert cp.step_source == "graph replay" and step.balanced
    assert step.gpu_by_category_us["(launched before the step)"] > 0.3 * step.length_us
    assert step.breakdown_us["launch"] < 0.01 * step.length_us
    for g in a.path_model.steps:
        dur = (g.end - g.start).astype(np.float64)
        assert replay(g, dur, a.path_model.launch_latency_ns) == pytest.approx(g.end.max() - g.t0)


H100 = DATA / "sd-h100-paths"


@pytest.mark.parametrize("px", [512, 768])
def test_h100_sweep_predictions_within_tolerance(px):
    """One standard sweep on an H100 (SD 1.5, eager and cuda_graphs jobs of the same run): the
    eager profiles' 'every launch free' predicts each mode's replayed step, and vanilla's profile
    with a fused mode's attention predicts that mode's replayed step, within 10 %."""
    from profiler_kit.records import PREDICTION_TOLERANCE

    modes = ("vanilla", "xformers", "sdpa_cudnn")
    eager = {m: analyze_trace(H100 / f"eager-{px}" / f"trace_{m}.json.gz", label=m) for m in modes}
    records = with_mode_what_ifs(eager)
    replayed = read_summary(H100 / f"graphs-{px}" / "summary.json").modes
    for m in modes:
        measured_us = replayed[m].step_ms.median_ms * 1000.0
        free = next(w for w in records[m].critical_path.what_if if w.scenario == "launches_free")
        assert abs(free.predicted_step_us / measured_us - 1) < PREDICTION_TOLERANCE, (px, m)
        if m != "vanilla":
            as_m = next(w for w in records["vanilla"].critical_path.what_if
                        if w.scenario == f"launches_free+attention_as:{m}")
            assert abs(as_m.predicted_step_us / measured_us - 1) < PREDICTION_TOLERANCE, (px, m)
            # the profiled eager step (host-bound) buys nothing from vanilla's attention alone
            eager_as = next(w for w in records["vanilla"].critical_path.what_if if w.scenario == f"attention_as:{m}")
            assert eager_as.predicted_step_us <= eager_as.baseline_step_us


def test_cli_step_writes_the_path_per_instance(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "profiler_kit.analyze", str(HTA_ALEXNET), "--step", HTA_STEP,
                           "--out", str(tmp_path), "--no-report"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "analysis.json").read_text())
    cp = data["critical_path"]
    assert cp["step_source"] == f"--step {HTA_STEP}"
    assert [s["name"] for s in cp["steps"]] == [f"{HTA_STEP} [0]", f"{HTA_STEP} [1]"]
    assert {w["scenario"] for w in cp["what_if"]} == {"launches_free"}     # no attention in AlexNet
    for s in cp["steps"]:
        assert sum(s["breakdown_us"].values()) == pytest.approx(s["length_us"])

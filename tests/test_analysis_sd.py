"""This project's own SD UNet traces (captured on an H100/H200 by ``python -m profiler_kit``):
vanilla attention against a fused mode. Skipped until tests/data/sd/ holds both traces.

What an expert expects, and the analysis must show: vanilla attention moves the N x N scores
through HBM several times and is memory-bound; the fused kernel moves a small fraction of those
bytes; cross-attention (attn2) reads the 77 text tokens.
"""

from pathlib import Path

import pytest

from profiler_kit.analysis import analyze_trace, compare
from profiler_kit.records import analysis_from_builtins

SD = Path(__file__).parent / "data" / "sd"
VANILLA = SD / "trace_vanilla.json.gz"
# every mode but the two unfused ones (SDPA's math backend materialises the scores like vanilla)
FUSED = sorted(p for p in SD.glob("trace_*.json.gz")
               if p.name not in ("trace_vanilla.json.gz", "trace_sdpa_math.json.gz"))
MATH = SD / "trace_sdpa_math.json.gz"

pytestmark = pytest.mark.skipif(not VANILLA.exists() or not FUSED,
                                reason="tests/data/sd/ has no vanilla + fused SD UNet traces yet")


@pytest.fixture(scope="module")
def vanilla():
    return analyze_trace(VANILLA, label="vanilla").to_dict()


@pytest.fixture(scope="module", params=FUSED, ids=lambda p: p.name.split(".")[0])
def fused(request):
    return analyze_trace(request.param, label=request.param.stem).to_dict()


def test_vanilla_attention_is_memory_bound(vanilla):
    att = vanilla["attention"]
    assert att["backends"]["vanilla"] == pytest.approx(att["total_us"])
    bound = vanilla["bound_by_category_us"]["attention"]
    assert bound["memory"] > 0.5 * att["total_us"]
    assert bound["memory"] > bound["compute"]
    assert vanilla["categories_us"]["softmax"] < att["total_us"]   # its softmax is attention


def test_fused_attention_moves_far_fewer_bytes(vanilla, fused):
    assert fused["attention"]["backends"]["vanilla"] == 0
    assert fused["attention"]["hbm_bytes_estimate"] * 5 < vanilla["attention"]["hbm_bytes_estimate"]
    cmp_ = compare(analysis_from_builtins(vanilla), analysis_from_builtins(fused))
    matched = [c for c in cmp_.attention_calls if c.a_us and c.b_us]
    assert len(matched) == len(vanilla["attention"]["calls"])
    # every layer moves fewer bytes fused, except where FlashAttention-2 split the keys (the SD
    # 1.5 512 px trace: down_blocks.2, up_blocks.1 and mid_block's cross-attention, 64-256
    # tokens): there its fp32 partials (kernel_costs._split_kv_traffic, checked against Nsight
    # Compute) move more than the unfused path's small score matrices
    kernels = {c["scope"]: c["kernels"] for c in fused["attention"]["calls"]}
    split = {c.scope for c in matched if any("splitkv" in k for k in kernels[c.scope])}
    assert all(c.b_bytes_estimate < c.a_bytes_estimate for c in matched if c.scope not in split)
    if "xformers" in fused["label"] or "flash" in fused["label"]:
        assert len(split) == 11
        assert all(c.b_bytes_estimate > c.a_bytes_estimate for c in matched if c.scope in split)
    else:
        assert not split


def test_attention_calls_are_the_unet_attention_modules(vanilla, fused):
    for d in (vanilla, fused):
        calls = d["attention"]["calls"]
        assert calls and all(c["scope"].endswith(("attn1", "attn2")) for c in calls)
        cross = [c for c in calls if c["kind"] == "cross"]
        assert cross and all(c["scope"].endswith("attn2") for c in cross)
        assert {c["kv_tokens"] for c in cross} == {77}
        assert all(c["level"] == "mid_block" or c["level"].startswith(("down_blocks.",
                                                                       "up_blocks."))
                   for c in calls)
        assert d["memory"]["peak_allocated_bytes"] > 0
    assert vanilla["memory"]["peak_allocated_bytes"] > fused["memory"]["peak_allocated_bytes"]


@pytest.mark.skipif(not MATH.exists(), reason="no SDPA math-backend trace")
def test_sdpa_math_backend_is_flagged_and_costed_by_its_parts(vanilla):
    d = analyze_trace(MATH, label="sdpa_math").to_dict()
    att = d["attention"]
    assert att["fallback"] and att["backends"]["math"] == pytest.approx(att["total_us"])
    assert {c["backend"] for c in att["calls"]} == {"math"}
    # costed as the bmm/softmax chain it runs, so its N x N traffic shows like vanilla's
    assert att["hbm_bytes_estimate"] > 0.5 * vanilla["attention"]["hbm_bytes_estimate"]
    assert d["bound_by_category_us"]["attention"]["memory"] > 0.5 * att["total_us"]


def test_eager_unet_at_512px_waits_on_the_host(vanilla, fused):
    """Profiled eager UNet at 512 px: the GPU idles between small kernels, and the idle time is
    launch overhead (the next kernel launched only after the GPU ran dry), not syncs."""
    for d in (vanilla, fused):
        t = d["timeline"]
        assert [s["name"] for s in t["steps"]] == ["ProfilerStep#1"]
        assert t["busy_us"] == pytest.approx(
            d["kernels"]["total_us"] + d["kernels"]["memcpy_us"] + d["kernels"]["memset_us"],
            rel=0.01)                              # one stream: almost nothing overlaps
        assert t["idle_us"] > t["busy_us"]
        assert max(t["idle_breakdown_us"], key=t["idle_breakdown_us"].get) == "host_launch"


def test_attention_shapes_follow_the_unet_levels(vanilla, fused):
    for d in (vanilla, fused):
        by_level = {}
        for c in d["attention"]["calls"]:
            by_level.setdefault(c["level"], set()).add((c["q_tokens"], c["batch_x_heads"]))
        # 512 px -> 64x64 latent: 4096 tokens at the top level, /4 per level down; batch 2 x 8
        assert by_level["down_blocks.0"] == {(4096, 16)}
        assert by_level["down_blocks.1"] == {(1024, 16)}
        assert by_level["mid_block"] == {(64, 16)}


SDXL = Path(__file__).parent.parent / "benchmarks" / "data" / "sdxl-1024-vanilla-h200.trace.json.gz"


@pytest.mark.skipif(not SDXL.exists(), reason="benchmarks/data has no SDXL trace")
def test_sdxl_1024_two_steps_vanilla():
    """The benchmark input: SDXL base UNet, 1024 px, vanilla, two profiled calls, Python stacks
    and memory events (H200; benchmarks/data/README.md)."""
    d = analyze_trace(SDXL).to_dict()
    assert [s["name"] for s in d["timeline"]["steps"]] == ["ProfilerStep#1", "ProfilerStep#2"]
    assert d["source"]["scope_source"] == "record_function"      # module:: beats nn.Module
    calls = d["attention"]["calls"]
    # SDXL: 70 transformer blocks x (attn1 + attn2) x 2 steps; 128x128 latent -> 4096 and 1024
    assert len(calls) == 280
    assert {(c["q_tokens"], c["kv_tokens"]) for c in calls} == {
        (4096, 4096), (4096, 77), (1024, 1024), (1024, 77)}
    assert d["bound_by_category_us"]["attention"]["memory"] > 0.9 * d["attention"]["total_us"]
    mem = d["memory"]
    assert mem["events"] > 2000 and len(mem["timeline"]["allocated_bytes"]) == 2000
    assert max(mem["timeline"]["allocated_bytes"]) == mem["peak_allocated_bytes"]
    # at the peak, the largest live block is an attention score matrix (N x N per head)
    top = mem["live_at_peak"][0]
    assert top["scope"].endswith("attn1") and top["bytes"] >= 2 * 10 * 4096 * 4096 * 2

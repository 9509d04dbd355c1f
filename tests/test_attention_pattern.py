"""Unfused attention found by its op pattern (QK^T -> softmax -> PV), on real traces.

- tests/data/sd_plain/: the SD 1.5 UNet at 512 px, vanilla attention (diffusers AttnProcessor),
  captured twice in one process on an H200, once plain (no module scopes, as most users record)
  and once with this project's module:: scopes (scripts/gpu/capture_plain_and_opheavy.py).
- tests/data/hf_eager/: Hugging Face ViT and BERT with attn_implementation="eager", each followed
  by a classifier softmax over the logits, plain and with nn.Module scopes
  (scripts/gpu/capture_hf_eager.py).
"""

import json
from pathlib import Path

import pytest

from profiler_kit.analysis import analyze_trace

DATA = Path(__file__).parent / "data"
PLAIN = DATA / "sd_plain" / "sd15-512-vanilla-plain.json.gz"
SCOPED = DATA / "sd_plain" / "sd15-512-vanilla-scoped.json.gz"
HF = DATA / "hf_eager"
# SD 1.5 has 16 transformer blocks, each with attn1 (self) and attn2 (cross)
SD15_ATTENTION_CALLS = 32
# ViT-base and BERT-base: 12 layers, 2 profiled steps
HF_CALLS = 12 * 2
LOGITS = {"vit": 1000, "bert": 2}         # classes of the classifier heads in the capture


@pytest.fixture(scope="module")
def plain():
    return analyze_trace(PLAIN).to_dict()


@pytest.fixture(scope="module")
def scoped():
    return analyze_trace(SCOPED).to_dict()


def test_plain_trace_has_no_scopes_and_the_scoped_one_has(plain, scoped):
    assert plain["source"]["scope_source"] == "none"
    assert scoped["source"]["scope_source"] == "record_function"


def test_plain_sd_attention_time_matches_the_scoped_capture(plain, scoped):
    # Same process, same UNet calls: the attention share must not depend on scopes (±2 %).
    a, b = plain["attention"]["total_us"], scoped["attention"]["total_us"]
    assert b > 0.2 * scoped["kernels"]["total_us"]       # vanilla attention is a large share
    assert a == pytest.approx(b, rel=0.02)
    assert plain["attention"]["backends"]["vanilla"] == pytest.approx(a)
    assert plain["categories_us"]["softmax"] == 0.0       # every softmax is attention's


def test_plain_sd_calls_keep_shape_and_cost(plain, scoped):
    pc, sc = plain["attention"]["calls"], scoped["attention"]["calls"]
    assert len(pc) == len(sc) == SD15_ATTENTION_CALLS
    for p, s in zip(pc, sc):
        for key in ("kind", "q_tokens", "kv_tokens", "head_dim", "batch_x_heads", "backend"):
            assert p[key] == s[key], key
        assert p["flops_estimate"] == pytest.approx(s["flops_estimate"])
        assert p["hbm_bytes_estimate"] == pytest.approx(s["hbm_bytes_estimate"])
        assert p["time_us"] == pytest.approx(s["time_us"], rel=0.1)


def test_calls_are_named_by_module_where_scoped_else_by_position(plain, scoped):
    assert all(c["named_by"] == "module" and c["scope"].endswith(("attn1", "attn2"))
               for c in scoped["attention"]["calls"])
    names = [c["scope"] for c in plain["attention"]["calls"]]
    assert all(c["named_by"] == "position" for c in plain["attention"]["calls"])
    assert len(set(names)) == len(names)                  # one name per layer
    first = plain["attention"]["calls"][0]
    assert names[0] == (f"attention#0 {first['kind']} {first['q_tokens']}x{first['kv_tokens']} "
                        f"e{first['head_dim']}")
    # self/cross alternate as attn1/attn2 do
    assert [c["kind"] for c in plain["attention"]["calls"]] == \
        [c["kind"] for c in scoped["attention"]["calls"]]


@pytest.mark.parametrize("model", ["vit", "bert"])
def test_hf_eager_attention_found_with_and_without_modules(model):
    plain = analyze_trace(HF / f"{model}-eager-plain-h200.json.gz").to_dict()
    mods = analyze_trace(HF / f"{model}-eager-modules-h200.json.gz").to_dict()
    assert plain["source"]["scope_source"] == "none"
    assert mods["source"]["scope_source"] == "nn.Module"
    for a in (plain, mods):
        att = a["attention"]
        assert len(att["calls"]) == HF_CALLS
        assert att["backends"]["vanilla"] == pytest.approx(att["total_us"])
        call = att["calls"][0]
        # HF eager is 4-D: matmul(Q[B,H,L,E], K^T[B,H,E,S]): heads visible
        assert call["heads"] == 12 and call["head_dim"] == 64
        assert call["batch_x_heads"] == 8 * 12
        assert call["q_tokens"] == call["kv_tokens"] == (197 if model == "vit" else 128)
    assert plain["attention"]["total_us"] == pytest.approx(mods["attention"]["total_us"],
                                                           rel=0.02)
    assert mods["attention"]["calls"][0]["scope"].endswith(("SelfAttention_0", "ViTAttention_0"))


@pytest.mark.parametrize("trace", sorted(HF.glob("*.json.gz")), ids=lambda p: p.name)
def test_classifier_softmax_is_not_attention(trace):
    # logits.float().softmax(-1) over [batch, classes] after each step: rank 2, no QK^T before
    a = analyze_trace(trace)
    rows = [r for r in a.kernel_rows() if "softmax" in r["name"].lower()]
    outside = [r for r in rows if r["category"] == "softmax"]
    assert outside, "the classifier softmax should stay a softmax"
    assert all(json.loads(r["op_shapes"])[0] == [8, LOGITS[trace.name.split("-")[0]]]
               for r in outside)
    assert all(r["category"] == "attention" for r in rows if r not in outside)


def test_sdpa_math_calls_stay_math():
    # SDPA's math decomposition matches the pattern too; the call is the SDPA op and the
    # backend stays "math" (the fallback the report flags), not "vanilla".
    a = analyze_trace(DATA / "sd" / "trace_sdpa_math.json.gz").to_dict()["attention"]
    assert len(a["calls"]) == SD15_ATTENTION_CALLS
    assert a["backends"]["math"] == pytest.approx(a["total_us"])
    assert a["backends"]["vanilla"] == 0.0


def test_report_attention_view_on_a_plain_trace(plain, tmp_path):
    # one row per layer, named by position and shape, as with scopes it is per module
    from profiler_kit.report import render_trace_report
    from profiler_kit.records import analysis_from_builtins
    html = render_trace_report({"plain": analysis_from_builtins(plain)}, None, tmp_path / "r.html").read_text(
        encoding="utf-8")
    assert 'id="fig-attention"' in html
    for call in plain["attention"]["calls"]:
        assert call["scope"] in html
    assert "(unknown scope)" not in html

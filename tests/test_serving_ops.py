"""vLLM's custom ops costed from the shapes TraceLens' B200 vLLM trace records (issue 21).

tests/data/third_party/tracelens/2026/b200_eager_trace.json.gz (MIT): gpt-oss on a B200, 888
tokens a step, hidden 2880, 8 query heads and 1 KV head of 64. Every byte figure by hand.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from profiler_kit.analysis import analyze_trace

B200 = Path(__file__).parent / "data" / "third_party" / "tracelens" / "2026" / "b200_eager_trace.json.gz"
BF16, FP8, I64 = 2, 1, 8
T, H = 888, 2880


@functools.lru_cache(maxsize=None)
def _by_op() -> dict:
    out = {}
    for r in analyze_trace(B200, spec="b200").kernel_rows():
        out.setdefault(r["cost_op"], r)
    return out


def test_rms_norms_read_and_write_their_tensors_once():
    rows = _by_op()
    # rms_norm(out [888, 2880], input [888, 2880], weight [2880], eps)
    assert rows["_C::rms_norm"]["hbm_bytes_estimate"] == (2 * T * H + H) * BF16
    # fused_add_rms_norm(input, residual, weight, eps): both read and written in place
    fused = rows["_C::fused_add_rms_norm"]
    assert fused["hbm_bytes_estimate"] == (4 * T * H + H) * BF16
    assert fused["category"] == "norm" and fused["bound"] == "memory"


def test_rotary_reads_one_cache_row_per_token_not_the_cache():
    # rotary_embedding(positions [888] int64, query [888, 512], key [888, 64], 64,
    #                  cos_sin_cache [131072, 64] bf16, True)
    row = _by_op()["_C::rotary_embedding"]
    assert row["hbm_bytes_estimate"] == 2 * (T * 512 + T * 64) * BF16 + T * I64 + T * 64 * BF16


def test_fp8_quant_and_kv_cache_write():
    rows = _by_op()
    # static_scaled_fp8_quant(out [888, 512] fp8, input [888, 512] bf16, scale fp32 scalar)
    assert rows["_C::static_scaled_fp8_quant"]["hbm_bytes_estimate"] == T * 512 * (BF16 + FP8)
    # reshape_and_cache_flash(key [888, 1, 64], value, key_cache [4213816, 16, 1, 64] uint8, ...,
    # slot_mapping [888]): K and V read in bf16, written into the FP8 cache, not the 4 GB cache
    cache = rows["_C_cache_ops::reshape_and_cache_flash"]
    assert cache["hbm_bytes_estimate"] == 2 * T * 64 * (BF16 + FP8) + T * I64
    assert cache["category"] == "copy"


def test_b200_bound_decided_share_rises_with_the_vllm_ops():
    rec = analyze_trace(B200, spec="b200").record
    decided = 1 - rec.bound_us["unknown"] / sum(rec.bound_us.values())
    # measured: 36.4 % -> 43.7 %; the MoE expert GEMMs (47 %) stay unknown: vllm::moe_forward
    # records the activations and router logits only, not the expert weights
    assert decided == pytest.approx(0.437, abs=0.002)


def test_aiter_rms_norm_with_add_on_rocm():
    """vLLM decode on an MI300X (TraceLens, MIT): aiter::rmsnorm2d_fwd_with_add_ck(out, input,
    residual_in, residual_out [32, 2880] bf16, weight [2880], eps, ...)."""
    t26 = B200.parent
    a = analyze_trace(t26 / "vllm_decode_full_graph_execution.json.gz",
                      capture=t26 / "vllm_decode_full_graph_capture.json.gz", spec="mi300x")
    rows = [r for r in a.kernel_rows() if r["cost_op"] == "aiter::rmsnorm2d_fwd_with_add_ck"]
    assert rows and all(r["category"] == "norm" and r["bound"] != "unknown" for r in rows)
    per_call = (4 * 32 * H + H) * BF16
    assert {r["hbm_bytes_estimate"] for r in rows} == {per_call}

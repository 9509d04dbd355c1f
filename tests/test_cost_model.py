"""Cost model: FLOPs and ideal bytes against hand calculations and TraceLens' committed figures."""

from __future__ import annotations

import ast
import csv
import math
from pathlib import Path

import pytest

from profiler_kit.analysis.cost_model import (OpCost, conv_output_shape, estimate_from_args, estimate_op,
                                             is_modeled)

H, BF, F32 = "c10::Half", "c10::BFloat16", "float"
TRACELENS = Path(__file__).parent / "data" / "third_party" / "tracelens"
MB = 2**20  # TraceLens' "Data Moved (MB)" is in MiB


def _rows(kind: str):
    for path in sorted(TRACELENS.glob(f"*_expected/{kind}.csv")):
        with path.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                yield pytest.param(row, id=f"{path.parent.name[:12]}-{row['UID_first']}")


def _op_inputs(row):
    return (ast.literal_eval(row["Input Dims_first"]), ast.literal_eval(row["Input type_first"]),
            ast.literal_eval(row["Concrete Inputs_first"]))


# --- GEMM -----------------------------------------------------------------------------------

@pytest.mark.parametrize("row", list(_rows("GEMM")))
def test_gemm_flops_and_bytes_match_tracelens(row):
    # TraceLens (AMD-AGI/TraceLens, MIT) computed these from the same trace events; see
    # tests/data/third_party/tracelens/README.md. Its convention: 2·M·N·K + M·N for the bias,
    # data moved = A + B + bias + C.
    dims, types, concrete = _op_inputs(row)
    cost = estimate_op(row["name"], dims, types, concrete)
    assert cost is not None and cost.formula == "gemm.addmm"
    assert cost.flops == pytest.approx(float(row["GFLOPS_first"]) * 1e9, rel=1e-9)
    assert cost.bytes == pytest.approx(float(row["Data Moved (MB)_first"]) * MB, rel=1e-9)
    assert (cost.engine, cost.dtype, cost.kind) == ("tensor", "bf16", "gemm")


def test_gemm_family_by_hand():
    mm = estimate_op("aten::mm", [[64, 32], [32, 16]], [H, H], ["", ""])
    assert mm.flops == 2 * 64 * 16 * 32
    assert mm.bytes == 2 * (64 * 32 + 32 * 16 + 64 * 16)

    bmm = estimate_op("aten::bmm", [[8, 64, 32], [8, 32, 16]], [BF, BF], ["", ""])
    assert bmm.flops == 8 * 2 * 64 * 16 * 32 and bmm.dtype == "bf16"

    # linear on a 3-D input: M = batch x tokens.
    lin = estimate_op("aten::linear", [[2, 77, 768], [320, 768], [320]], [H, H, H], ["", "", ""])
    assert lin.flops == 2 * (2 * 77) * 320 * 768 + (2 * 77) * 320
    assert lin.bytes == 2 * (2 * 77 * 768 + 320 * 768 + 320 + 2 * 77 * 320)
    no_bias = estimate_op("aten::linear", [[2, 77, 768], [320, 768], []], [H, H, ""], ["", "", ""])
    assert no_bias.flops == 2 * (2 * 77) * 320 * 768

    # matmul broadcasts leading dims: (2, 8, 64, 40) @ (40, 64) -> batch 16.
    mat = estimate_op("aten::matmul", [[2, 8, 64, 40], [40, 64]], [H, H], ["", ""])
    assert mat.flops == 2 * 16 * 64 * 64 * 40
    vec = estimate_op("aten::matmul", [[10], [10]], [F32, F32], ["", ""])
    assert vec.flops == 20 and vec.engine == "cuda"


def test_fp32_gemm_runs_on_cuda_cores_unless_tf32_allowed():
    args = ([[128, 64], [64, 32]], [F32, F32], ["", ""])
    assert (estimate_op("aten::mm", *args).engine, estimate_op("aten::mm", *args).dtype) == ("cuda", "fp32")
    tf32 = estimate_op("aten::mm", *args, allow_tf32=True)
    assert (tf32.engine, tf32.dtype) == ("tensor", "tf32")


def test_baddbmm_with_beta_zero_reads_no_input():
    # diffusers' AttnProcessor: baddbmm(empty, q, kᵀ, beta=0, alpha=scale)
    dims = [[16, 4096, 4096], [16, 4096, 40], [16, 40, 4096], [], []]
    types = [H, H, H, "Scalar", "Scalar"]
    beta0 = estimate_op("aten::baddbmm", dims, types, ["", "", "", "0", "0.15811388300841897"])
    beta1 = estimate_op("aten::baddbmm", dims, types, ["", "", "", "1", "1"])
    scores = 16 * 4096 * 4096
    qk = 2 * 16 * 4096 * 40
    assert beta0.bytes == 2 * (qk + scores)
    assert beta1.bytes == 2 * (qk + 2 * scores)
    assert beta0.flops == 2 * 16 * 4096 * 4096 * 40
    assert beta1.flops == beta0.flops + scores


# --- Convolution ----------------------------------------------------------------------------

def test_conv_patch_embedding_from_the_vit_trace():
    # aten::conv2d exactly as recorded in the TraceLens ViT trace: 16x16 patches, stride 16.
    dims = [[4, 3, 224, 224], [768, 3, 16, 16], [768], [], [], [], []]
    types = [BF, BF, BF, "ScalarList", "ScalarList", "ScalarList", "Scalar"]
    concrete = ["", "", "", "[16, 16]", "[0, 0]", "[1, 1]", "1"]
    assert conv_output_shape("aten::conv2d", dims, types, concrete) == (4, 768, 14, 14)
    cost = estimate_op("aten::conv2d", dims, types, concrete)
    macs = 4 * 768 * 14 * 14 * 3 * 16 * 16
    out = 4 * 768 * 14 * 14
    assert cost.flops == 2 * macs + out
    assert cost.bytes == 2 * (4 * 3 * 224 * 224 + 768 * 3 * 16 * 16 + 768 + out)
    assert (cost.engine, cost.kind, cost.formula) == ("tensor", "conv", "conv.direct")


def test_cudnn_convolution_argument_order_and_no_bias():
    # cudnn_convolution(input, weight, padding, stride, dilation, groups, benchmark, deterministic, allow_tf32)
    dims = [[4, 3, 224, 224], [768, 3, 16, 16], [], [], [], [], [], [], []]
    types = [BF, BF, "ScalarList", "ScalarList", "ScalarList", "Scalar", "Scalar", "Scalar", "Scalar"]
    concrete = ["", "", "[0, 0]", "[16, 16]", "[1, 1]", "1", "False", "False", "True"]
    assert conv_output_shape("aten::cudnn_convolution", dims, types, concrete) == (4, 768, 14, 14)
    cost = estimate_op("aten::cudnn_convolution", dims, types, concrete)
    assert cost.flops == 2 * 4 * 768 * 14 * 14 * 3 * 16 * 16   # the bias add is its own kernel


@pytest.mark.parametrize("name,dims,concrete,expected_shape,macs", [
    # SD UNet conv_in: 3x3, padding 1 keeps 64x64.
    ("aten::convolution", [[2, 4, 64, 64], [320, 4, 3, 3], [320]],
     ["", "", "", "[1, 1]", "[1, 1]", "[1, 1]", "False", "[0, 0]", "1"],
     (2, 320, 64, 64), 2 * 320 * 64 * 64 * 4 * 9),
    # Downsampler: 3x3, stride 2, padding 1: 64 -> 32.
    ("aten::_convolution", [[2, 320, 64, 64], [320, 320, 3, 3], [320]],
     ["", "", "", "[2, 2]", "[1, 1]", "[1, 1]", "False", "[0, 0]", "1", "False", "False", "True", "True"],
     (2, 320, 32, 32), 2 * 320 * 32 * 32 * 320 * 9),
    # Dilation 2, no padding: 32 - 2·(3-1) = 28.
    ("aten::conv2d", [[1, 8, 32, 32], [16, 8, 3, 3], []],
     ["", "", "", "[1, 1]", "[0, 0]", "[2, 2]", "1"], (1, 16, 28, 28), 16 * 28 * 28 * 8 * 9),
    # Depthwise (groups = channels): each output channel sees one input channel.
    ("aten::conv2d", [[1, 32, 16, 16], [32, 1, 3, 3], []],
     ["", "", "", "[1, 1]", "[1, 1]", "[1, 1]", "32"], (1, 32, 16, 16), 32 * 16 * 16 * 1 * 9),
    # 1x1 projection.
    ("aten::conv2d", [[2, 640, 32, 32], [320, 640, 1, 1], []],
     ["", "", "", "[1, 1]", "[0, 0]", "[1, 1]", "1"], (2, 320, 32, 32), 2 * 320 * 32 * 32 * 640),
    # Transposed conv, stride 2, kernel 4, padding 1: (16 - 1)·2 - 2 + 3 + 1 = 32.
    ("aten::conv_transpose2d", [[1, 64, 16, 16], [64, 32, 4, 4], []],
     ["", "", "", "[2, 2]", "[1, 1]", "[0, 0]", "1", "[1, 1]"], (1, 32, 32, 32), 64 * 16 * 16 * 32 * 16),
])
def test_conv_shapes_and_flops_by_hand(name, dims, concrete, expected_shape, macs):
    n_tensors = sum(1 for d in dims if d)
    types = [H] * n_tensors + [""] * (len(dims) - n_tensors)
    types += ["Scalar"] * (len(concrete) - len(types))
    dims = dims + [[]] * (len(concrete) - len(dims))
    assert conv_output_shape(name, dims, types, concrete) == expected_shape
    cost = estimate_op(name, dims, types, concrete)
    has_bias = n_tensors == 3
    out = math.prod(expected_shape)
    assert cost.flops == 2 * macs + (out if has_bias else 0)


def test_fp32_conv_follows_the_recorded_cudnn_tf32_flag():
    dims = [[1, 8, 32, 32], [16, 8, 3, 3], [], [], [], [], [], [], []]
    types = [F32, F32] + ["Scalar"] * 7
    on = estimate_op("aten::cudnn_convolution", dims, types, ["", "", "[1, 1]", "[1, 1]", "[1, 1]", "1", "False", "False", "True"])
    off = estimate_op("aten::cudnn_convolution", dims, types, ["", "", "[1, 1]", "[1, 1]", "[1, 1]", "1", "False", "False", "False"])
    assert (on.engine, on.dtype) == ("tensor", "tf32")
    assert (off.engine, off.dtype) == ("cuda", "fp32")


# --- Attention ------------------------------------------------------------------------------

@pytest.mark.parametrize("row", list(_rows("SDPA_fwd")))
def test_flash_attention_matches_tracelens(row):
    dims, types, concrete = _op_inputs(row)
    cost = estimate_op(row["name"], dims, types, concrete)
    b, h, n, d = (int(row[k]) for k in ("param: B", "param: H_Q", "param: N_Q", "param: d_h_qk"))
    assert cost.flops == pytest.approx(float(row["GFLOPS_first"]) * 1e9, rel=1e-9)   # 4·B·H·N²·d
    # TraceLens moves Q + K + V + O; FlashAttention also writes the fp32 log-sum-exp per row.
    lse = b * h * n * 4
    assert cost.bytes == pytest.approx(float(row["Data Moved (MB)_first"]) * MB + lse, rel=1e-9)
    shape = cost.attention
    assert (shape.batch, shape.heads, shape.q_tokens, shape.head_dim) == (b, h, n, d)


def _sd15_self_attention():
    """SD 1.5 at 512 px, top level: 64x64 latents = 4096 tokens, 8 heads of 40, CFG batch 2, fp16."""
    b, heads, n, d = 2, 8, 4096, 40
    bh = b * heads
    vanilla = [
        estimate_op("aten::baddbmm", [[bh, n, n], [bh, n, d], [bh, d, n], [], []],
                    [H, H, H, "Scalar", "Scalar"], ["", "", "", "0", "0.15811388300841897"]),
        estimate_op("aten::softmax", [[bh, n, n], [], []], [H, "Scalar", ""], ["", "-1", ""]),
        estimate_op("aten::bmm", [[bh, n, n], [bh, n, d]], [H, H], ["", ""]),
    ]
    fused = {
        "sdpa_efficient": estimate_op(
            "aten::_scaled_dot_product_efficient_attention", [[b, heads, n, d]] * 3 + [[]] * 5,
            [H] * 3 + ["", "Scalar", "Scalar", "Scalar", ""], ["", "", "", "", "False", "0.", "False", ""]),
        "sdpa_flash": estimate_op(
            "aten::_scaled_dot_product_flash_attention", [[b, heads, n, d]] * 3 + [[]] * 4,
            [H] * 3 + ["Scalar"] * 4, ["", "", "", "0.", "False", "False", ""]),
        "xformers": estimate_op("xformers::efficient_attention_forward_cutlass",
                                [[b, n, heads, d]] * 3, [H] * 3, ["", "", ""]),
        "flash_fwd": estimate_op("aten::_flash_attention_forward", [[b, n, heads, d]] * 3 + [[]] * 6,
                                 [H] * 3 + [""] * 6, ["", "", "", "", "", "4096", "4096", "0.", "False"]),
    }
    return vanilla, fused


def test_vanilla_attention_moves_over_50x_the_bytes_of_fused():
    vanilla, fused = _sd15_self_attention()
    scores = 2 * 8 * 4096 * 4096 * 2            # one fp16 N x N matrix: 512 MiB
    qkvo = 2 * 8 * 4096 * 40 * 2                # one of Q, K, V, O: 5 MiB
    vanilla_bytes = sum(c.bytes for c in vanilla)
    # baddbmm writes the scores, softmax reads + writes them, bmm reads them: 4 passes.
    assert vanilla_bytes == 4 * scores + 4 * qkvo
    for name, cost in fused.items():
        assert cost.bytes <= 4 * qkvo + 2 * 8 * 4096 * 4, name    # + log-sum-exp at most
        assert vanilla_bytes / cost.bytes > 50, name
        # Both paths do the same two GEMMs.
        assert cost.flops == pytest.approx(vanilla[0].flops + vanilla[2].flops), name
    assert vanilla_bytes / fused["xformers"].bytes == pytest.approx(103.4, rel=0.01)


def test_layouts_give_the_same_shape():
    _, fused = _sd15_self_attention()
    shapes = {(c.attention.batch, c.attention.heads, c.attention.q_tokens, c.attention.head_dim)
              for c in fused.values()}
    assert shapes == {(2, 8, 4096, 40)}
    assert fused["xformers"].attention.layout == "BMHK"
    assert fused["sdpa_flash"].attention.layout == "BHMK"


def test_kv_reread_factor():
    _, fused = _sd15_self_attention()
    qkvo = 2 * 8 * 4096 * 40 * 2
    eff = fused["sdpa_efficient"]       # 64-row query tiles: K and V streamed 4096/64 = 64 times
    assert eff.bytes_with_rereads == 2 * qkvo + 2 * qkvo * 64
    flash = fused["sdpa_flash"]         # 128-row tiles: 32 passes, plus the log-sum-exp
    assert flash.bytes_with_rereads == 2 * qkvo + 2 * qkvo * 32 + 2 * 8 * 4096 * 4


def test_cross_attention_and_causal():
    # SD cross-attention: 4096 queries against 77 text tokens, head_dim 40.
    cross = estimate_op("aten::scaled_dot_product_attention",
                        [[2, 8, 4096, 40], [2, 8, 77, 40], [2, 8, 77, 40], [], [], [], [], []],
                        [H] * 3 + ["", "Scalar", "Scalar", "", "Scalar"], ["", "", "", "", "0.", "False", "", "False"])
    assert cross.flops == 4 * 2 * 8 * 4096 * 77 * 40
    assert (cross.attention.q_tokens, cross.attention.kv_tokens) == (4096, 77)
    causal = estimate_op("aten::_scaled_dot_product_flash_attention", [[1, 4, 256, 64]] * 3 + [[]] * 4,
                         [BF] * 3 + ["Scalar"] * 4, ["", "", "", "0.", "True", "False", ""])
    assert causal.attention.causal and causal.flops == 0.5 * 4 * 4 * 256 * 256 * 64


# --- Softmax, norms, element-wise -----------------------------------------------------------

def test_softmax_reads_and_writes_once():
    c = estimate_op("aten::_softmax", [[16, 1024, 1024], [], []], [H, "Scalar", "Scalar"], ["", "-1", "False"])
    assert c.bytes == 2 * 2 * 16 * 1024 * 1024 and c.kind == "softmax" and c.engine == "cuda"
    # half_to_float=True writes fp32.
    up = estimate_op("aten::_softmax", [[16, 1024, 1024], [], []], [H, "Scalar", "Scalar"], ["", "-1", "True"])
    assert up.bytes == (2 + 4) * 16 * 1024 * 1024


def test_layer_and_group_norm():
    ln = estimate_op("aten::layer_norm", [[2, 4096, 320], [], [320], [320], [], []],
                     [H, "ScalarList", H, H, "Scalar", "Scalar"], ["", "[320]", "", "", "1e-05", "True"])
    x = 2 * 4096 * 320
    assert ln.bytes == 2 * (2 * x + 2 * 320) and ln.flops == 8 * x and ln.transcendentals == 2 * 4096
    gn = estimate_op("aten::group_norm", [[2, 320, 64, 64], [], [320], [320], [], []],
                     [H, "Scalar", H, H, "Scalar", "Scalar"], ["", "32", "", "", "1e-05", "True"])
    # two passes over x (moments, then normalize): x read twice, written once (3 |x|), as an
    # H200 measured PyTorch's kernels (tests/data/sd-ncu)
    assert gn.bytes == 3 * (2 * 2 * 320 * 64 * 64) + 2 * (2 * 320) and gn.transcendentals == 2 * 32
    native = estimate_op("aten::native_group_norm", [[2, 320, 64, 64], [320], [320], [], [], [], [], []],
                         [H, H, H] + ["Scalar"] * 5, ["", "", "", "2", "320", "4096", "32", "1e-05"])
    assert native.bytes == gn.bytes + 2 * 2 * 32 * 4      # + mean and rstd, fp32


def test_elementwise_bytes_are_inputs_plus_output():
    # Broadcast bias add from the ViT trace: the [1, 768, 1, 1] bias is read once.
    add = estimate_op("aten::add_", [[4, 768, 14, 14], [1, 768, 1, 1], []], [BF, BF, "Scalar"], ["", "", "1"])
    out = 4 * 768 * 14 * 14
    assert add.bytes == 2 * (out + 768 + out) and add.flops == out
    silu = estimate_op("aten::silu", [[2, 1280]], [H], [""])
    assert silu.bytes == 2 * 2 * 2 * 1280 and silu.transcendentals == 2 * 1280
    gelu = estimate_op("aten::gelu", [[4, 197, 3072], []], [BF, ""], ["", ""])
    assert gelu.flops == 8 * 4 * 197 * 3072
    # Mixed precision: fp16 * fp32 promotes to fp32 output.
    mixed = estimate_op("aten::mul", [[1024], [1024]], [H, F32], ["", ""])
    assert mixed.bytes == 1024 * (2 + 4 + 4) and mixed.dtype == "fp32"


def test_copies_and_conversions():
    to = estimate_op("aten::_to_copy", [[4, 10], [], [], [], [], [], []], [F32] + ["Scalar"] * 6,
                     ["", "5", "", "", "", "", ""])
    assert to.bytes == 40 * 4 + 40 * 2 and to.flops == 0        # fp32 -> fp16 (ScalarType 5)
    copy = estimate_op("aten::copy_", [[2, 320, 64, 64], [2, 320, 64, 64], []], [H, F32, "Scalar"], ["", "", "False"])
    assert copy.bytes == 2 * 320 * 64 * 64 * (4 + 2)
    up = estimate_op("aten::upsample_nearest2d", [[2, 1280, 8, 8], [], []], [H, "ScalarList", ""], ["", "[16, 16]", ""])
    assert up.bytes == 2 * (2 * 1280 * 8 * 8 + 2 * 1280 * 16 * 16)
    scaled = estimate_op("aten::upsample_nearest2d", [[2, 1280, 8, 8], [], []], [H, "", "ScalarList"], ["", "", "[2.0, 2.0]"])
    assert scaled.bytes == up.bytes


def test_cat_needs_a_dtype_from_the_caller():
    # Kineto records a TensorList's shapes but not its dtype.
    dims, types, concrete = [[[4, 1, 768], [4, 196, 768]], []], ["TensorList", "Scalar"], ["", "1"]
    assert estimate_op("aten::cat", dims, types, concrete) is None
    cat = estimate_op("aten::cat", dims, types, concrete, fallback_dtype="bf16")
    assert cat.bytes == 2 * 2 * 4 * 197 * 768


def test_unmodelled_and_malformed_ops_return_none():
    assert estimate_op("aten::view", [[4, 768], []], [BF, "ScalarList"], ["", "[1, -1]"]) is None
    assert estimate_op("aten::empty", [[], [], []], ["ScalarList", "Scalar", ""], ["[4]", "6", ""]) is None
    assert estimate_op("my_namespace::custom", [[4]], [F32], [""]) is None
    assert estimate_op("aten::mm", [[4, 4]], [F32], None) is None       # missing operand
    assert estimate_op("aten::conv2d", [[4, 4], [4, 4]], [F32, F32], None) is None
    assert not is_modeled("aten::view") and is_modeled("aten::baddbmm") and is_modeled("aten::add_")
    assert is_modeled("xformers_flash::flash_fwd") and not is_modeled("xformers::efficient_attention_backward_cutlass")


def test_estimate_from_kineto_args_dict():
    args = {"Input Dims": [[788, 768], [768, 768]], "Input type": [BF, BF], "Concrete Inputs": ["", ""]}
    cost = estimate_from_args("aten::mm", args)
    assert isinstance(cost, OpCost) and cost.flops == 2 * 788 * 768 * 768
    assert cost.intensity_flops_per_byte == pytest.approx(cost.flops / cost.bytes)


# --- Real SD 1.5 UNet traces (H200, this project's own captures in tests/data/sd/) ---------

SD_TRACES = Path(__file__).parent / "data" / "sd"


def _launching_ops(mode):
    """(op name, args) of every CPU op that launched a GPU kernel, through Kineto's External id."""
    import gzip
    import json

    events = json.loads(gzip.decompress((SD_TRACES / f"trace_{mode}.json.gz").read_bytes()))["traceEvents"]
    ops = {e["args"].get("External id"): e for e in events if e.get("cat") == "cpu_op"}
    launched = {}
    for e in events:
        if e.get("cat") == "kernel":
            op = ops.get(e.get("args", {}).get("External id"))
            if op is not None:
                launched[id(op)] = op
    return [(op["name"], op["args"]) for op in launched.values()]


@pytest.mark.parametrize("mode", ["vanilla", "xformers", "sdpa", "sdpa_flash", "sdpa_efficient",
                                  "sdpa_cudnn", "sdpa_math"])
def test_every_kernel_launching_op_of_the_sd_unet_is_modelled(mode):
    unmodelled = {name for name, args in _launching_ops(mode)
                  if estimate_from_args(name, args, fallback_dtype="fp16") is None}
    assert unmodelled <= {"aten::arange"}    # the timestep embedding's 1 µs arange


def test_sd_trace_attention_ops_as_recorded():
    # xformers 0.0.35 + diffusers pass (B·H, N, d); xformers views it as (B·H, N, 1, d).
    xf = estimate_op("xformers_flash::flash_fwd", [[16, 4096, 1, 40]] * 3 + [[]] * 12,
                     [H] * 3 + ["", "", ""] + ["Scalar"] * 8 + [""],
                     ["", "", "", "", "", "", "4096", "4096", "0.", "0.15811388300841897", "False", "-1", "-1",
                      "False", ""])
    assert (xf.attention.batch, xf.attention.heads, xf.attention.q_tokens) == (16, 1, 4096)
    assert xf.flops == 4 * 16 * 4096 * 4096 * 40 and not xf.attention.causal
    # torch 2.11's cuDNN backend: _cudnn_attention_forward, SDPA layout, LSE only on request.
    cudnn = estimate_op("aten::_cudnn_attention_forward", [[2, 8, 4096, 40]] * 3 + [[]] * 10,
                        [H] * 3 + ["", "", ""] + ["Scalar"] * 6 + [""],
                        ["", "", "", "", "", "", "4096", "4096", "False", "0.", "False", "False", ""])
    assert cudnn.bytes == 4 * 2 * 8 * 4096 * 40 * 2 and cudnn.flops == xf.flops
    # SDPA's math backend (_safe_softmax) scans the fp32 scores twice more.
    isneginf = estimate_op("aten::isneginf", [[2, 8, 4096, 4096]], [F32], [""])
    assert isneginf.bytes == 2 * 8 * 4096 * 4096 * (4 + 1)
    everything = estimate_op("aten::all", [[2, 8, 4096, 4096], [], []], ["bool", "Scalar", "Scalar"], ["", "-1", "True"])
    assert everything.bytes == 2 * 8 * 4096 * 4096 + 2 * 8 * 4096


def test_sd_trace_vanilla_attention_moves_far_more_bytes_than_xformers():
    def attention_bytes(mode, names):
        return sum(estimate_from_args(n, a).bytes for n, a in _launching_ops(mode) if n in names)

    chain = {"aten::baddbmm", "aten::_softmax", "aten::bmm"}
    fused = {"aten::_flash_attention_forward"}
    # Top-level self-attention (4096 tokens; its bmm reads the 4096 x 4096 probabilities):
    top_vanilla = sum(estimate_from_args(n, a).bytes for n, a in _launching_ops("vanilla")
                      if n in chain and a["Input Dims"][0][1:] == [4096, 4096])
    top_fused = sum(estimate_from_args(n, a).bytes for n, a in _launching_ops("xformers")
                    if n in fused and a["Input Dims"][1][1] == 4096 and a["Input Dims"][0][1] == 4096)
    assert top_vanilla / top_fused > 50
    # The whole UNet, cross-attention (77 keys) and the coarser levels included: ~42x.
    assert attention_bytes("vanilla", chain) / attention_bytes("xformers", fused) > 30

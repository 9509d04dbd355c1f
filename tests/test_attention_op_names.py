"""The one table of attention op names (profiler_kit/attention_op_names.py): the capture's
check of what a mode ran and the analysis's kernel backends read it, so they must agree on
real op names from real traces."""

from __future__ import annotations

import pytest

from profiler_kit.analysis import categories
from profiler_kit.attention_op_names import implementation_of
from profiler_kit.trace import KERNEL

# op name as the profiler records it -> implementation; from this project's H100/H200 and CPU
# traces, TraceLens' MI300X traces, diffusers' dispatcher wrappers and the libraries' op schemas
REAL_OPS = {
    "aten::_scaled_dot_product_flash_attention": "flash",
    "aten::_flash_attention_forward": "flash",
    "aten::_scaled_dot_product_flash_attention_for_cpu": "flash",
    "aten::_scaled_dot_product_efficient_attention": "efficient",
    "aten::_efficient_attention_forward": "efficient",
    "aten::_scaled_dot_product_cudnn_attention": "cudnn",
    "aten::_scaled_dot_product_attention_math": "math",
    "aten::_scaled_dot_product_fused_attention_overrideable": "fused",
    "xformers::efficient_attention_forward_cutlass": "xformers",
    "xformers_flash::flash_fwd": "xformers",
    "xformers_flash3::flash_fwd": "xformers",
    "flash_attn::_flash_attn_forward": "flash_attn",
    "flash_attn_3::fwd": "flash_attn_3",
    "_diffusers_flash_attn_3::_flash_attn_forward": "flash_attn_3",
    "sageattention::qk_int8_sv_f8_accum_f32_attn": "sage",
    "sage_fwd_1": "sage",
    "sage_quant_kernel_0": "sage",
    "flex_attention": "flex",
    "aiter::fmha_v3_fwd": "aiter",
    "aiter::mha_fwd": "aiter",
    "flashinfer::batch_prefill_with_kv_cache": "flashinfer",
}
NOT_ATTENTION = ["aten::bmm", "aten::baddbmm", "aten::softmax", "aten::mm", "aten::conv2d",
                 "aten::scaled_dot_product_attention",   # the dispatcher: its backend op says which
                 "flashinfer::fp4_quantize", "aiter::rmsnorm2d_fwd", "vllm::reshape_and_cache_flash",
                 "aten::_fused_sdp_choice", "usage_stats"]

# the analysis's backend for each implementation's kernels (PyTorch's flash and the flash-attn
# packages launch the same FlashAttention kernels)
ANALYSIS_BACKEND = {"flash": "flash", "flash_attn": "flash", "flash_attn_3": "flash",
                    "efficient": "cutlass_fmha", "cudnn": "cudnn", "aiter": "aiter", "sage": "sage",
                    "flashinfer": "flashinfer", "xformers": "xformers"}


@pytest.mark.parametrize("op,impl", sorted(REAL_OPS.items()))
def test_real_attention_ops_name_their_implementation(op, impl):
    assert implementation_of(op) == impl


@pytest.mark.parametrize("op", NOT_ATTENTION)
def test_other_ops_are_not_attention(op):
    assert implementation_of(op) is None


@pytest.mark.parametrize("op,impl", sorted((o, i) for o, i in REAL_OPS.items() if i in ANALYSIS_BACKEND))
def test_the_analysis_gives_a_launched_kernel_the_same_backend(op, impl):
    # a kernel with an uninformative name, launched directly by the op (xformers' by any op under it)
    name = "fmha_kernel" if impl == "xformers" else "some_kernel_0"
    category, backend = categories.classify(name, KERNEL, (op,), True)[:2]
    assert (category, backend) == ("attention", ANALYSIS_BACKEND[impl])


def test_a_library_op_that_runs_another_counts_once_as_the_outer_library():
    """xformers' flash op runs PyTorch's flash op inside it (seen in the H200 capture of
    xformers at 1024 px: 32 xformers_flash::flash_fwd, each around one
    aten::_flash_attention_forward); the mode ran xformers, not xformers and flash."""
    torch = pytest.importorskip("torch")
    from torch.profiler import ProfilerActivity, profile

    from profiler_kit.capture.attention_ran import families_of, judge, outermost_attention_ops

    lib = torch.library.Library("xformers_probe", "FRAGMENT")
    lib.define("flash_fwd(Tensor q, Tensor k, Tensor v) -> Tensor")
    lib.impl("flash_fwd", lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v), "CPU")
    q = torch.randn(1, 2, 16, 8)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        torch.ops.xformers_probe.flash_fwd(q, q, q)      # a library op around SDPA's flash op
        torch.nn.functional.scaled_dot_product_attention(q, q, q)   # and SDPA on its own
    outer = outermost_attention_ops(prof.events())
    # the flash op inside the library op is not counted: one flash op (SDPA's own), one library op
    assert sorted(outer) == ["aten::_scaled_dot_product_flash_attention_for_cpu", "xformers_probe::flash_fwd"]
    assert families_of(outer) == ["flash", "xformers"]
    assert judge("xformers", families_of([o for o in outer if "xformers" in o]), "eager") is None

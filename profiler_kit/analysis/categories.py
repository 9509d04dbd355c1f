"""Which category (and, for attention, which backend) a GPU kernel belongs to.

One ordered table of rules; the first rule that matches wins. A rule looks at up to four things:
the kernel's name, the GPU activity kind (kernel / memcpy / memset), the chain of aten ops that
launched it (innermost first), and whether it ran inside an attention module scope.

Order matters and every rule says why it sits where it does. Attention comes early because fused
attention kernels contain "gemm"-like words and the vanilla chain *is* GEMMs and a softmax: inside
an attention module those belong to attention, which is the question this toolkit answers. Only
rules whose words would otherwise be misread go before it: collectives, KV-cache writes (vLLM's
``reshape_and_cache_flash``) and Inductor's generated kernels, whose names list the ops fused
into them (``..._fmha_v3_fwd_mean_..._rsqrt``: the RMS norm feeding an attention op, not
attention). Attention by the op that launched a kernel precedes attention by kernel name: the op
says what ran whatever the kernel is called (ROCm's ``attn_fwd``). tests/test_category_rules.py
holds every rule to real kernel names, positive and negative.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from profiler_kit.attention_op_names import pattern_of
from profiler_kit.trace import KERNEL, MEMCPY, MEMSET

CATEGORIES = ("attention", "gemm", "conv", "layout", "norm", "softmax", "elementwise", "copy",
              "other", "communication", "optimizer", "embedding", "moe_routing")
# Attention backends: the kernel family that ran. "flash": FlashAttention 2/3/4 and PyTorch's
# flash backend (on ROCm the AOTriton ``attn_fwd`` it launches); "cutlass_fmha": the
# memory-efficient kernel; "aiter": AMD aiter's assembly FMHA; "ck": Composable Kernel / ck_tile
# FMHA; "sage": SageAttention (INT8 QK, FP8 PV) with its quantization prologue; "flashinfer";
# "trtllm": TensorRT-LLM's generated FMHA (fmhaSm100*, also launched by vLLM and FlashInfer);
# "paged": vLLM / ROCm paged-attention kernels.
BACKENDS = ("vanilla", "flash", "cutlass_fmha", "cudnn", "xformers", "triton", "math", "aiter",
            "ck", "sage", "flashinfer", "trtllm", "paged")

# Quantization prologues of quantized attention (SageAttention: per-block INT8 Q/K, FP8 V): part
# of the attention call, shown apart from the attention kernel itself (attention_calls.py).
_PROLOGUE = re.compile(r"(^|[^a-z])sage_?quant|quant_(query_|key_)?per_(block|warp|thread)_int8|"
                       r"sageattn_quant")

# The ops of an explicit (unfused) attention: QK^T (baddbmm/bmm), softmax, PV (bmm). Matched
# against the op that launched the kernel: q @ k.T reaches the GPU as aten::bmm under
# aten::matmul, while the q/k/v projections inside the same module reach it as aten::mm (under
# aten::linear -> aten::matmul), so matmul itself must not count.
_VANILLA_OPS = r"aten::(baddbmm|bmm|softmax|_softmax|_safe_softmax)$"
# SDPA's math backend decomposes into ordinary aten ops under this op.
# SDPA's math backend decomposes into ordinary aten ops under this op. Which op is which
# attention implementation is decided once, in attention_op_names (the capture's check of what
# a mode ran reads the same table).
_MATH_SDPA_OP = pattern_of("math")
# Fused attention ops, matched against the op that launched the kernel directly (so a helper
# launched by an inner op, aten::zeros for the log-sum-exp, keeps its own category): whatever
# the kernel is called (ROCm's AOTriton kernel is just ``attn_fwd``), it is that op's attention.
_FLASH_OPS = pattern_of("flash", "flash_attn", "flash_attn_3")
_EFFICIENT_OPS = pattern_of("efficient")
_CUDNN_OPS = pattern_of("cudnn")
_AITER_OPS = pattern_of("aiter")
_SAGE_OPS = pattern_of("sage")
_FLASHINFER_OPS = pattern_of("flashinfer")
_XFORMERS_OPS = pattern_of("xformers")


@dataclass(frozen=True)
class Rule:
    category: str
    why: str
    kernel: str | None = None          # regex searched in the lower-cased kernel name
    kinds: tuple[int, ...] = (KERNEL,)  # GPU activity kinds the rule applies to
    op: str | None = None              # regex matched against the innermost aten op
    ancestor: str | None = None        # regex matched against any launching aten op
    in_attention: bool | None = None   # require (True) an attention module scope
    backend: str = ""                  # attention backend the rule identifies

    def matches(self, kernel: str, kind: int, ops: tuple[str, ...], in_attention: bool) -> bool:
        if kind not in self.kinds:
            return False
        if self.kernel is not None and not re.search(self.kernel, kernel):
            return False
        if self.op is not None and not (ops and re.match(self.op, ops[0])):
            return False
        if self.ancestor is not None and not any(re.match(self.ancestor, o) for o in ops):
            return False
        if self.in_attention is not None and in_attention != self.in_attention:
            return False
        return True


RULES: tuple[Rule, ...] = (
    Rule("copy", "memcpy/memset are DMA transfers, not compute", kinds=(MEMCPY, MEMSET)),
    # --- collectives first: NCCL/RCCL kernel names contain "reduce", "copy", "gather" that the
    # elementwise and copy rules below would take; their bound is the interconnect ----------
    Rule("communication", "NCCL/RCCL collective and point-to-point kernels (all-reduce, "
         "all-gather, reduce-scatter, all-to-all, send/recv)",
         kernel=r"nccl|rccl|^(msccl|mscclpp)|c10d::|all_?reduce|all_?gather|reduce_?scatter|"
         r"all_?to_?all|sendrecv|cross_device_reduce|multimem_"),
    Rule("embedding", "embedding lookups by name: fbgemm's table-batched embedding (TBE) "
         "kernels; before the GEMM rule, which 'fbgemm' would otherwise match",
         kernel=r"fbgemm.*embedding|split_embedding|embedding_bag|embedding_(forward|backward)|"
         r"^tbe_|batched_embedding"),
    # --- KV-cache writes (vLLM, SGLang): scatters of K and V into the paged cache; before the
    # attention names, since "reshape_and_cache_flash" carries "flash" ------------------------
    Rule("copy", "KV-cache writes and page-table copies of serving engines (vLLM "
         "reshape_and_cache(_flash), concat_and_cache_mla, copy_blocks, _copy_page_indices): "
         "scatters that move bytes only", kernel=r"reshape_and_cache|concat_and_cache|"
         r"copy_blocks|swap_blocks|copy_page_indices|gather_cache"),
    # --- Inductor's generated kernels, by their prefix, before the attention and family names:
    # their names list the aten ops fused into them (triton_per_fused_add_convolution_div_native_
    # group_norm: a conv's bias epilogue fused into a group norm; triton_red_fused_..._fmha_v3_fwd
    # _mean_mul_pow_rsqrt: the RMS norm of Q and K feeding an aiter attention op), so
    # "convolution" or "fmha" in such a name is a neighbour, not what the kernel does. What the
    # kernel does is its prefix: poi(ntwise), red(uction), per(sistent reduction); a reduction
    # that computes a norm (an RMS norm: mean of squares, then rsqrt) or a softmax is that.
    Rule("norm", "Inductor reductions that compute a normalisation (group/layer/batch norm; an "
         "RMS norm fuses mean and rsqrt, listed in that order)",
         kernel=r"^triton_(red|per)_fused.*(norm|mean.*rsqrt)"),
    Rule("softmax", "Inductor reductions that compute a softmax (outside attention)",
         kernel=r"^triton_(red|per)_fused.*softmax"),
    Rule("elementwise", "Inductor's other generated pointwise and reduction kernels: one pass "
         "over memory each (its foreach combos, triton_for_*, are left to the optimizer rule)",
         kernel=r"^triton_(poi|red|per)_"),
    # --- attention, by the op that launched the kernel --------------------------------------
    Rule("attention", "xformers ops launch the same CUTLASS/flash kernels as PyTorch; the "
         "launching op tells them apart, so this precedes the name rules",
         ancestor=_XFORMERS_OPS, kernel=r"fmha|flash|attention|attn", backend="xformers"),
    Rule("attention", "kernels launched by a flash-attention op (PyTorch's flash backend, "
         "flash-attn 2/3); on ROCm that op launches AOTriton's `attn_fwd`", op=_FLASH_OPS,
         backend="flash"),
    Rule("attention", "kernels launched by PyTorch's memory-efficient attention op",
         op=_EFFICIENT_OPS, backend="cutlass_fmha"),
    Rule("attention", "kernels launched by PyTorch's cuDNN attention op", op=_CUDNN_OPS,
         backend="cudnn"),
    Rule("attention", "kernels launched by an aiter attention op (aiter::fmha_v3_fwd, "
         "aiter::mha_fwd, ...)", op=_AITER_OPS, backend="aiter"),
    Rule("attention", "kernels launched by a SageAttention op, eager or as a compiled region's "
         "user Triton kernel (sage_fwd_1, sage_quant_kernel_0)", op=_SAGE_OPS, backend="sage"),
    Rule("attention", "kernels launched by a FlashInfer attention op (its quantize, GEMM and "
         "MoE ops are not attention)", op=_FLASHINFER_OPS,
         backend="flashinfer"),
    # --- attention, fused kernels: recognised by name wherever they run ---------------------
    Rule("attention", "cuDNN's fused SDPA (graph-generated kernels, 'sdpa' in the name)",
         kernel=r"cudnn.*(sdpa|fmha|flash|attention)|(sdpa|fmha).*cudnn|fort_native_sdpa",
         backend="cudnn"),
    Rule("attention", "SageAttention kernels and their INT8/FP8 quantization prologue "
         "('sage' as a word: not 'usage' or 'message')",
         kernel=r"(^|[^a-z])sage(_|attn|attention)|" + _PROLOGUE.pattern, backend="sage"),
    Rule("attention", "AMD aiter's assembly FMHA kernels (aiter::fmha_fwd_hd128_bf16_rtz, "
         "_ZN5aiter...fmha...)", kernel=r"^aiter::.*(fmha|mha|attn)|_zn5aiter.*(fmha|mha|attn)",
         backend="aiter"),
    Rule("attention", "Composable Kernel / ck_tile FMHA (the FlashAttention tiling, CK's "
         "implementation: PyTorch's ROCm CK backend, aiter's CK path)",
         kernel=r"ck_tile.*fmha|fmhafwd|fmhabwd|fmha_fwd_d\d+|fmha_bwd_d\d+", backend="ck"),
    Rule("attention", "TensorRT-LLM's generated FMHA kernels (fmhaSm100a..., fmhaSm90...), "
         "which vLLM and FlashInfer launch on Hopper/Blackwell",
         kernel=r"^fmhasm\d+|fmha_v2_|trtllm.*fmha", backend="trtllm"),
    Rule("attention", "FlashInfer's prefill/decode/MLA kernels; not any kernel with a "
         "flashinfer:: type among its arguments (TensorRT-LLM's FP4 quantize takes a "
         "flashinfer::QuantizationSFLayout)",
         kernel=r"flashinfer::(\w+::)*\w*(prefill|decode|attention|mla)|"
         r"(batch|single)(prefill|decode)with|batchmlapagedattention", backend="flashinfer"),
    Rule("attention", "FlashAttention kernels (PyTorch's bundled flash, FA2, FA3 "
         "flash::FlashAttnFwdSm90, FA4's CuTe flash_fwd); a bare `attn_fwd` is the FlashAttention "
         "algorithm in Triton as AOTriton (PyTorch's ROCm flash backend) and vLLM's ROCm "
         "triton_flash_attention name it, seen without its op when the launch was not recorded",
         kernel=r"flash_fwd|flash_bwd|flash::|flash_attn|flashattn|fmha_fwd_splitkv|^attn_fwd$",
         backend="flash"),
    Rule("attention", "paged-attention kernels of vLLM and ROCm (paged_attention_v1/v2, "
         "paged_attention_ll4mi)", kernel=r"paged_?attention", backend="paged"),
    Rule("attention", "CUTLASS memory-efficient attention (PyTorch efficient_attention, "
         "xformers cutlassF) names its kernels fmha_cutlass* or AttentionKernel",
         kernel=r"fmha|cutlass.*attention|attentionkernel|efficient_attention|mem_eff",
         backend="cutlass_fmha"),
    Rule("attention", "Triton attention kernels: Inductor templates / hand-written triton_* "
         "with attn/flash in the name, the Triton tutorial's `_attn_fwd`, vLLM's "
         "unified attention (2-D, 3-D and the 3-D path's segment reduction)",
         kernel=r"^triton.*(attn|attention|flash|sdpa)|^_attn_(fwd|bwd)|"
         r"kernel_unified_attention|^reduce_segments$", backend="triton"),
    Rule("attention", "SDPA's math backend: the unfused chain under "
         "_scaled_dot_product_attention_math is the fallback the view flags",
         ancestor=_MATH_SDPA_OP, backend="math"),
    Rule("attention", "the vanilla chain: QK^T GEMM, softmax, PV GEMM inside an attention "
         "module (diffusers AttnProcessor); its N^2 traffic is what fused kernels remove",
         op=_VANILLA_OPS, in_attention=True, backend="vanilla"),
    # --- MoE routing: top-k, histograms, permutes and the weighted finalize around the expert
    # GEMMs; before norm ("routingRenormalize"), softmax (topk_softmax) and GEMM ("cutlass" in
    # finalize's template arguments) --------------------------------------------------------
    Rule("moe_routing", "mixture-of-experts routing and finalize: TensorRT-LLM moe::dev "
         "routing/finalize, vLLM moe_align / topk_softmax, triton_kernels' routing, top-k, "
         "bitmatrix sums and finalize scatter",
         kernel=r"moe::dev::(routing|finalize)|moe_align|topk_?softmax|topkgating|"
         r"moe_(sum|permute|unpermute)|expandinputrows|count_and_sort_expert|"
         r"^_combined_routing|^_topk_forward|^_sum_bitmatrix|^_finalize_matmul_scatter|"
         r"grouped_topk"),
    # --- layout before conv: cuDNN wraps NHWC-only convolution kernels in transposes --------
    Rule("layout", "cuDNN's NCHW<->NHWC conversions around convolutions (remedy: "
         "channels_last)", kernel=r"nchwtonhwc|nhwctonchw|nchw2nhwc|nhwc2nchw"),
    Rule("layout", "other transposes launched by a convolution are layout conversion too",
         kernel=r"transpose|permute", ancestor=r"aten::.*conv"),
    # --- convolution ----------------------------------------------------------------------
    Rule("other", "cuDNN's workspace initialisation before a convolution (init_device_workspace_"
         "kernel; 'fprop' is in its template arguments): a small fill, no convolution arithmetic "
         "and ~0 bytes measured on an H200", kernel=r"init_device_workspace"),
    Rule("norm", "MIOpen's normalisation kernels (MIOpenBatchNormFwd..., MIOpenLayerNorm...), "
         "before the conv rule that takes other MIOpen kernels", kernel=r"miopen.*norm"),
    Rule("conv", "convolution kernels by name: implicit GEMM fprop/dgrad/wgrad, winograd, "
         "cuDNN xmma_fprop, MIOpen (igemm_fwd_gtcx3, Im2d2Col), CK grouped_conv; 'conv' not "
         "followed by 'ert' (vLLM's _typeConvert<> template is in its RMS norm's name)",
         kernel=r"conv(?!ert)|fprop|dgrad|wgrad|implicit_gemm|implicit_convolve|winograd|"
         r"^miopen|igemm|im2d2col|im2col"),
    # --- GEMM -----------------------------------------------------------------------------
    Rule("gemm", "GEMM kernels by name: cuBLAS/cuBLASLt (sm90_xmma_gemm, ampere_*gemm, "
         "nvjet, Blackwell nvjet_tst_*), CUTLASS (sm100 tcgen05 too), hipBLASLt/Tensile/rocBLAS "
         "(Cijk_), gemv; TensorRT-LLM's batched and block-scaled FP8/FP4 GEMMs (bmm_MxE4m3_..., "
         "bmm_Bfloat16_MxE2m1...), triton_kernels' grouped MoE matmul_ogs, vLLM's fused_moe",
         kernel=r"gemm|gemv|nvjet|xmma|cijk_|cutlass|s\d+816|wmma|matmul|splitkreduce|^bmm_|"
         r"tcgen05|fused_moe_kernel|rocblas"),
    # --- norm, softmax ----------------------------------------------------------------------
    Rule("norm", "normalisation kernels by name, cuDNN's batch-norm forward/backward "
         "(bn_fw_inf_*, bn_fw_tr_*, bn_bw_*) included", kernel=r"norm|^bn_fw|^bn_bw|bn_fw_|bn_bw_"),
    Rule("softmax", "softmax outside attention (inside, the vanilla rule took it)",
         kernel=r"softmax"),
    # --- training and lookup families: before elementwise, whose names they share ----------
    Rule("optimizer", "optimizer steps: multi_tensor_apply (torch.optim foreach), fused "
         "Adam/AdamW/SGD, apex/DeepSpeed fused optimizers",
         kernel=r"multi_tensor_apply|fused_?adam|adamw?_|fused_?sgd|lamb_|multitensor"),
    Rule("optimizer", "unnamed kernels of the optimizer ops",
         ancestor=r"aten::(_foreach_|_fused_adam|_fused_adamw|_fused_sgd)"),
    Rule("embedding", "gathers launched by an embedding op (indexSelectLargeIndex, ...)",
         ancestor=r"aten::(embedding|embedding_bag|_embedding_bag)|fbgemm::"),
    # --- data movement and pointwise ----------------------------------------------------------
    Rule("copy", "copies made on the GPU (.contiguous(), cat, dtype casts) and index gathers "
         "(PyTorch's vectorized_gather_kernel when no embedding op launched it) move bytes only",
         kernel=r"direct_copy|catarraybatchedcopy|copy_kernel|memcpy|memset|"
         r"vectorized_gather_kernel"),
    Rule("elementwise", "activation quantization before a low-precision GEMM (vLLM "
         "scaled_fp8_quant, TensorRT-LLM quantize_with_block_size) and rotary embeddings: one "
         "pass over memory each", kernel=r"quantiz|_quant_|fp8_quant|rotary|(^|[^a-z])rope_"),
    Rule("layout", "standalone transposes", kernel=r"transpose"),
    Rule("gemm", "Inductor's Triton template kernels (triton_tem_*) are its matmul templates "
         "(convolution templates carry 'conv' and were taken above)", kernel=r"^triton_tem_"),
    Rule("elementwise", "pointwise and reduction kernels: one pass over memory each; "
         "Inductor's foreach combos (triton_for_*) that are no optimizer step; pooling and "
         "dropout are windowed/pointwise passes over memory too",
         kernel=r"elementwise|reduce_kernel|reduction|^triton_for_|activation|"
         r"gelu|silu|pointwise|fill|pool|dropout"),
    # --- by launching op: kernels whose names say nothing (after the name rules, so that a
    # copy or elementwise kernel inside a matmul op is still a copy or elementwise) ---------
    Rule("conv", "unnamed kernels launched directly by a convolution op (cuDNN helpers "
         "such as computeOffsetsKernel)", op=r"aten::(cudnn_|miopen_|_|mkldnn_)?convolution"),
    Rule("gemm", "unnamed kernels of a matmul op (e.g. a cuBLAS split-K reduction)",
         op=r"aten::(mm|addmm|bmm|baddbmm|matmul|linear|_addmm_activation)$"),
    Rule("norm", "unnamed kernels of a normalisation op (Welford reductions, ...)",
         ancestor=r"aten::(native_)?(group|layer|batch|instance|rms)_norm"),
    Rule("other", "everything else"),
)


def first_rule(kernel_name: str, kind: int, ops: tuple[str, ...], in_attention: bool) -> int:
    """Index in RULES of the rule that decides this kernel (the last one, "other", always
    matches); ops: launching ops, innermost first."""
    name = kernel_name.lower()
    for i, rule in enumerate(RULES):
        if rule.matches(name, kind, ops, in_attention):
            return i
    return len(RULES) - 1


def classify(kernel_name: str, kind: int, ops: tuple[str, ...], in_attention: bool
             ) -> tuple[str, str]:
    """(category, attention backend or "") of one kernel; ops: launching aten ops, innermost
    first."""
    rule = RULES[first_rule(kernel_name, kind, ops, in_attention)]
    return rule.category, rule.backend


def is_attention_prologue(kernel_name: str) -> bool:
    """A quantization prologue of quantized attention (Sage's per-block INT8/FP8 quant): part of
    the call's time and bytes, reported apart from the attention kernel."""
    return bool(_PROLOGUE.search(kernel_name.lower()))


_ATTENTION_COMPONENT = re.compile(r"(self_|cross_)?attn\d*|.*attention(_\d+)?")


def is_attention_scope_component(component: str) -> bool:
    """True for a module name of an attention module: ``attn1``, ``attn2``, ``Attention_0``,
    ``BertSelfAttention_0``; not ``attentions`` (diffusers' Transformer2D container list)."""
    return bool(_ATTENTION_COMPONENT.fullmatch(component.lower()))

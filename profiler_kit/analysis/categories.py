"""Which category (and, for attention, which backend) a GPU kernel belongs to.

One ordered table of rules; the first rule that matches wins. A rule looks at up to four things:
the kernel's name, the GPU activity kind (kernel / memcpy / memset), the chain of aten ops that
launched it (innermost first), and whether it ran inside an attention module scope.

Order matters and every rule says why it sits where it does. Attention comes first because fused
attention kernels contain "gemm"-like words and the vanilla chain *is* GEMMs and a softmax: inside
an attention module those belong to attention, which is the question this toolkit answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from profiler_kit.trace import KERNEL, MEMCPY, MEMSET

CATEGORIES = ("attention", "gemm", "conv", "layout", "norm", "softmax", "elementwise", "copy",
              "other", "communication", "optimizer", "embedding")
BACKENDS = ("vanilla", "flash", "cutlass_fmha", "cudnn", "xformers", "triton", "math")

# The ops of an explicit (unfused) attention: QK^T (baddbmm/bmm), softmax, PV (bmm). Matched
# against the op that launched the kernel: q @ k.T reaches the GPU as aten::bmm under
# aten::matmul, while the q/k/v projections inside the same module reach it as aten::mm (under
# aten::linear -> aten::matmul), so matmul itself must not count.
_VANILLA_OPS = r"aten::(baddbmm|bmm|softmax|_softmax|_safe_softmax)$"
# SDPA's math backend decomposes into ordinary aten ops under this op.
_MATH_SDPA_OP = r"aten::_scaled_dot_product_attention_math"


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
         r"all_?to_?all|sendrecv"),
    Rule("embedding", "embedding lookups by name: fbgemm's table-batched embedding (TBE) "
         "kernels; before the GEMM rule, which 'fbgemm' would otherwise match",
         kernel=r"fbgemm.*embedding|split_embedding|embedding_bag|embedding_(forward|backward)|"
         r"^tbe_|batched_embedding"),
    # --- attention, fused kernels: recognised by name wherever they run ---------------------
    Rule("attention", "xformers ops launch the same CUTLASS/flash kernels as PyTorch; the "
         "launching op tells them apart, so this precedes the name rules",
         ancestor=r"xformers", kernel=r"fmha|flash|attention|attn", backend="xformers"),
    Rule("attention", "cuDNN's fused SDPA (graph-generated kernels, 'sdpa' in the name)",
         kernel=r"cudnn.*(sdpa|fmha|flash|attention)|(sdpa|fmha).*cudnn|fort_native_sdpa",
         backend="cudnn"),
    Rule("attention", "FlashAttention kernels (PyTorch's bundled flash, FA2/FA3, and AMD CK "
         "FMHA which implements the same tiling)", kernel=r"flash_fwd|flash_bwd|flash::|"
         r"flash_attn|fmha_fwd_splitkv|ck_tile.*fmha|fmhafwd|fmhabwd", backend="flash"),
    Rule("attention", "CUTLASS memory-efficient attention (PyTorch efficient_attention, "
         "xformers cutlassF) names its kernels fmha_cutlass* or AttentionKernel",
         kernel=r"fmha|cutlass.*attention|attentionkernel|efficient_attention|mem_eff",
         backend="cutlass_fmha"),
    Rule("attention", "Triton attention kernels (Inductor / hand-written) carry attn/flash in "
         "the name", kernel=r"^triton.*(attn|attention|flash|sdpa)", backend="triton"),
    Rule("attention", "SDPA's math backend: the unfused chain under "
         "_scaled_dot_product_attention_math is the fallback the view flags",
         ancestor=_MATH_SDPA_OP, backend="math"),
    Rule("attention", "the vanilla chain: QK^T GEMM, softmax, PV GEMM inside an attention "
         "module (diffusers AttnProcessor); its N^2 traffic is what fused kernels remove",
         op=_VANILLA_OPS, in_attention=True, backend="vanilla"),
    # --- Inductor's generated kernels, by their prefix, before the name rules below: their names
    # list the aten ops fused into them (triton_per_fused_add_convolution_div_native_group_norm:
    # a conv's bias epilogue fused into a group norm), so "convolution" in such a name is an
    # epilogue, not a convolution. What the kernel does is its prefix: poi(ntwise), red(uction),
    # per(sistent reduction), for(each); a reduction that computes a norm or softmax is that.
    Rule("norm", "Inductor reductions that compute a normalisation (group/layer/batch norm)",
         kernel=r"^triton_(red|per)_fused.*norm"),
    Rule("softmax", "Inductor reductions that compute a softmax (outside attention)",
         kernel=r"^triton_(red|per)_fused.*softmax"),
    Rule("elementwise", "Inductor's other generated pointwise and reduction kernels: one pass "
         "over memory each (its foreach combos, triton_for_*, are left to the optimizer rule)",
         kernel=r"^triton_(poi|red|per)_"),
    # --- layout before conv: cuDNN wraps NHWC-only convolution kernels in transposes --------
    Rule("layout", "cuDNN's NCHW<->NHWC conversions around convolutions (remedy: "
         "channels_last)", kernel=r"nchwtonhwc|nhwctonchw|nchw2nhwc|nhwc2nchw"),
    Rule("layout", "other transposes launched by a convolution are layout conversion too",
         kernel=r"transpose|permute", ancestor=r"aten::.*conv"),
    # --- convolution ----------------------------------------------------------------------
    Rule("other", "cuDNN's workspace initialisation before a convolution (init_device_workspace_"
         "kernel; 'fprop' is in its template arguments): a small fill, no convolution arithmetic "
         "and ~0 bytes measured on an H200", kernel=r"init_device_workspace"),
    Rule("conv", "convolution kernels by name: implicit GEMM fprop/dgrad/wgrad, winograd, "
         "cuDNN xmma_fprop, MIOpen", kernel=r"conv|fprop|dgrad|wgrad|implicit_gemm|"
         r"implicit_convolve|winograd|miopen|igemm"),
    # --- GEMM -----------------------------------------------------------------------------
    Rule("gemm", "GEMM kernels by name: cuBLAS/cuBLASLt (sm90_xmma_gemm, ampere_*gemm, "
         "nvjet), CUTLASS, hipBLASLt/Tensile (Cijk_), gemv",
         kernel=r"gemm|gemv|nvjet|xmma|cijk_|cutlass|s\d+816|wmma|matmul|splitkreduce"),
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
    Rule("copy", "copies made on the GPU (.contiguous(), cat, dtype casts) move bytes only",
         kernel=r"direct_copy|catarraybatchedcopy|copy_kernel|memcpy|memset"),
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


def classify(kernel_name: str, kind: int, ops: tuple[str, ...], in_attention: bool
             ) -> tuple[str, str]:
    """(category, attention backend or "") of one kernel; ops: launching aten ops, innermost
    first."""
    name = kernel_name.lower()
    for rule in RULES:
        if rule.matches(name, kind, ops, in_attention):
            return rule.category, rule.backend
    return "other", ""


_ATTENTION_COMPONENT = re.compile(r"(self_|cross_)?attn\d*|.*attention(_\d+)?")


def is_attention_scope_component(component: str) -> bool:
    """True for a module name of an attention module: ``attn1``, ``attn2``, ``Attention_0``,
    ``BertSelfAttention_0``; not ``attentions`` (diffusers' Transformer2D container list)."""
    return bool(_ATTENTION_COMPONENT.fullmatch(component.lower()))

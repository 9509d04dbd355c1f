"""The records the cost model returns, and the engine rule its modules share (kept apart so
every cost module can import them)."""

from __future__ import annotations

from dataclasses import dataclass

# Op families. "gemm", "conv" and "attention" may run on tensor cores; the rest run on CUDA cores.
KINDS = ("gemm", "conv", "attention", "softmax", "norm", "elementwise", "reduction", "copy")
TENSOR_KINDS = ("gemm", "conv", "attention")


def tensor_engine(dtype: str | None, tf32: bool = False) -> tuple[str, str]:
    """(engine, dtype label) of a GEMM, conv or attention: tensor cores for 16-bit and 8-bit
    floats, for fp32 only when TF32 is allowed (then labelled "tf32"); CUDA cores otherwise."""
    if dtype in ("fp16", "bf16", "fp4") or (dtype or "").startswith(("fp8", "fp6")):
        return "tensor", dtype
    if dtype == "fp32" and tf32:
        return "tensor", "tf32"
    return "cuda", dtype or "unknown"


@dataclass(frozen=True)
class AttentionShape:
    """Problem size of one fused attention call, in SDPA's terms whatever the op's layout."""

    batch: int
    heads: int              # query heads
    kv_heads: int           # key/value heads (< heads with grouped-query attention)
    q_tokens: int
    kv_tokens: int
    head_dim: int           # of Q and K
    head_dim_v: int         # of V and O
    layout: str             # "BHMK" (torch SDPA) or "BMHK" (xformers, _flash/_efficient_attention_forward)
    causal: bool
    tile_q: int             # query rows per thread block assumed for the K/V re-read figure


@dataclass(frozen=True)
class HelperTraffic:
    """What an op's helper kernels move besides its ideal traffic: tensors copied or converted
    (read once, written once) by kernels the op launches around its work kernels. Estimates, from
    the shapes, of what the implementation does (measured on an H200 with Nsight Compute, see
    docs/cost-model.md): cuDNN runs an fp16 NCHW convolution as NCHW->NHWC conversions of the
    input and of the weights, the NHWC kernel, an NHWC->NCHW conversion of the output and a
    separate bias add; layer norm copies a non-contiguous input to a contiguous one first."""

    before_bytes: tuple[float, ...] = ()   # tensors copied/converted before the work, in launch order
    after_bytes: float = 0.0               # the output, converted back after the work
    bias_bytes: float = 0.0                # a bias added to the output by a separate kernel


@dataclass(frozen=True)
class OpCost:
    """Estimated work of one op call: FLOPs and ideal HBM bytes. Estimates, not measurements.

    ``bytes`` assumes each input is read once and each output written once (L2 reuse and
    re-reads ignored); ``formula`` names the row of docs/cost-model.md that produced it.
    """

    flops: float                  # estimate
    bytes: float                  # estimate of ideal HBM traffic: each input read once, output written once
    engine: str                   # "tensor" (matmul/conv/attention in fp16/bf16/tf32) or "cuda"
    dtype: str                    # "fp16" | "bf16" | "fp32" | "tf32" | "fp8_e4m3" | "int64" | ...
    formula: str                  # short label of the formula used, documented in docs/cost-model.md
    # Additions beyond the data contract:
    kind: str = "elementwise"     # one of KINDS
    bytes_with_rereads: float | None = None   # fused attention: Q + O + (K + V) * ceil(Nq / tile_q)
    transcendentals: float = 0.0  # exp/rsqrt/tanh/erf evaluations (special-function unit), not in flops
    attention: AttentionShape | None = None   # set for fused attention ops
    helper: HelperTraffic | None = None       # traffic of helper kernels, beyond ``bytes`` (kernel_costs)

    @property
    def intensity_flops_per_byte(self) -> float:
        return self.flops / self.bytes if self.bytes > 0 else float("inf")

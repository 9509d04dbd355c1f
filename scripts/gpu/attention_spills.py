"""One call of each fused attention kernel on SD 1.5's attention shapes, for Nsight Compute
(run by attention_spills.sh between cudaProfilerStart/Stop): does xformers' FlashAttention
kernel spill registers to local memory, and is that what inflates its L2 writes (issue 11,
docs/cost-model.md "Where it still misses")?

The shapes are diffusers' own: XFormersAttnProcessor hands xformers (B*H, N, d) = 3-D tensors
(one head each); SDPA gets (B, H, N, d). SD 1.5 at batch 2: 8 heads of 40 at the top level,
N = 4096 (512 px) and 9216 (768 px).
"""

import sys

import torch
import xformers.ops as xops
from torch.nn.attention import SDPBackend, sdpa_kernel

BATCH, HEADS, HEAD_DIM = 2, 8, 40
WARMUP_CALLS = 3


def calls(n_tokens: int):
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(BATCH * HEADS, n_tokens, HEAD_DIM, device="cuda", dtype=torch.float16, generator=g)
               for _ in range(3))
    q4, k4, v4 = (t.view(BATCH, HEADS, n_tokens, HEAD_DIM) for t in (q, k, v))

    def xformers_call():
        return xops.memory_efficient_attention(q, k, v)

    def sdpa(backend):
        def call():
            with sdpa_kernel([backend]):
                return torch.nn.functional.scaled_dot_product_attention(q4, k4, v4)
        return call
    return {"xformers": xformers_call, "sdpa_cudnn": sdpa(SDPBackend.CUDNN_ATTENTION),
            "sdpa_efficient": sdpa(SDPBackend.EFFICIENT_ATTENTION)}


def main() -> None:
    for n in map(int, sys.argv[1:] or ["4096", "9216"]):
        for name, call in calls(n).items():
            for _ in range(WARMUP_CALLS):
                call()
            torch.cuda.synchronize()
            torch.cuda.cudart().cudaProfilerStart()
            out = call()
            torch.cuda.synchronize()
            torch.cuda.cudart().cudaProfilerStop()
            print(f"N={n} {name}: out {tuple(out.shape)} {out.dtype}", flush=True)


if __name__ == "__main__":
    main()

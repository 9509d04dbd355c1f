"""Measure per-kernel DRAM bytes with Nsight Compute, to check the cost model's byte estimates.

On the GPU machine, from the repository root (needs torch with CUDA and `ncu` on the PATH):

    python3 scripts/gpu/ncu_cost_model.py --out "$OUT"

For each case (SD 1.5's attention at 512 and 768 px in vanilla and fused form, a GEMM, a conv,
the norms and element-wise ops) it runs this script again under
``ncu --profile-from-start off --metrics dram__bytes_read.sum,dram__bytes_write.sum,...``, with
the profiled region around a single call after a warm-up. ncu flushes the caches before every
kernel by default (--cache-control all), so each kernel starts from a cold L2: the measured bytes
are the kernel's own DRAM traffic, the quantity the cost model's "ideal bytes" estimate.

Writes ``ncu_cost_model.json`` (case -> shapes and per-kernel name, dram bytes read/written,
duration) into --out and prints a short table last. Compare with the estimates in
tests/test_ncu_validation.py (no GPU needed there).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import time

FP16 = "float16"
# SD 1.5 self-attention at the top UNet level: batch 2 (classifier-free guidance), 8 heads of 40.
ATTN = {"b": 2, "h": 8, "d": 40}
CASES = {
    "vanilla_512": {"kind": "vanilla", "n": 4096},
    "sdpa_efficient_512": {"kind": "sdpa", "backend": "EFFICIENT_ATTENTION", "n": 4096},
    "sdpa_flash_512": {"kind": "sdpa", "backend": "FLASH_ATTENTION", "n": 4096},
    "sdpa_cudnn_512": {"kind": "sdpa", "backend": "CUDNN_ATTENTION", "n": 4096},
    "sdpa_efficient_cross_512": {"kind": "sdpa", "backend": "EFFICIENT_ATTENTION", "n": 4096, "n_kv": 77},
    "vanilla_768": {"kind": "vanilla", "n": 9216},
    "sdpa_efficient_768": {"kind": "sdpa", "backend": "EFFICIENT_ATTENTION", "n": 9216},
    "sdpa_flash_768": {"kind": "sdpa", "backend": "FLASH_ATTENTION", "n": 9216},
    "linear_320_1280": {"kind": "linear", "m": 8192, "k": 320, "n": 1280},
    "conv3x3_320": {"kind": "conv", "shape": [2, 320, 64, 64], "cout": 320, "k": 3},
    "group_norm_320": {"kind": "group_norm", "shape": [2, 320, 64, 64], "groups": 32},
    "layer_norm_320": {"kind": "layer_norm", "shape": [2, 4096, 320]},
    "silu_320": {"kind": "silu", "shape": [2, 320, 64, 64]},
    "add_320": {"kind": "add", "shape": [2, 320, 64, 64]},
}
METRICS = "dram__bytes_read.sum,dram__bytes_write.sum,gpu__time_duration.sum"


def _run_case(name: str) -> None:
    """Inside ncu: build the inputs, warm up, then profile exactly one call."""
    import torch
    import torch.nn.functional as F

    spec = CASES[name]
    dev, dt = "cuda", torch.float16
    torch.manual_seed(0)
    kind = spec["kind"]
    if kind in ("vanilla", "sdpa"):
        b, h, d, n = ATTN["b"], ATTN["h"], ATTN["d"], spec["n"]
        nk = spec.get("n_kv", n)
        q = torch.randn(b, h, n, d, device=dev, dtype=dt)
        k = torch.randn(b, h, nk, d, device=dev, dtype=dt)
        v = torch.randn(b, h, nk, d, device=dev, dtype=dt)
        if kind == "vanilla":
            # diffusers' AttnProcessor: heads folded into the batch, baddbmm -> softmax -> bmm.
            q3, k3, v3 = (t.reshape(b * h, -1, d).contiguous() for t in (q, k, v))
            empty = torch.empty(b * h, n, nk, device=dev, dtype=dt)
            scale = d ** -0.5

            def call():
                scores = torch.baddbmm(empty, q3, k3.transpose(1, 2), beta=0, alpha=scale)
                probs = scores.softmax(dim=-1)
                return torch.bmm(probs, v3)
        else:
            from torch.nn.attention import SDPBackend, sdpa_kernel
            backend = getattr(SDPBackend, spec["backend"])

            def call():
                with sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(q, k, v)
    elif kind == "linear":
        x = torch.randn(spec["m"], spec["k"], device=dev, dtype=dt)
        w = torch.randn(spec["n"], spec["k"], device=dev, dtype=dt)
        bias = torch.randn(spec["n"], device=dev, dtype=dt)
        call = lambda: F.linear(x, w, bias)  # noqa: E731
    elif kind == "conv":
        x = torch.randn(*spec["shape"], device=dev, dtype=dt)
        w = torch.randn(spec["cout"], spec["shape"][1], spec["k"], spec["k"], device=dev, dtype=dt)
        bias = torch.randn(spec["cout"], device=dev, dtype=dt)
        call = lambda: F.conv2d(x, w, bias, padding=spec["k"] // 2)  # noqa: E731
    elif kind == "group_norm":
        x = torch.randn(*spec["shape"], device=dev, dtype=dt)
        gamma = torch.ones(spec["shape"][1], device=dev, dtype=dt)
        beta = torch.zeros(spec["shape"][1], device=dev, dtype=dt)
        call = lambda: F.group_norm(x, spec["groups"], gamma, beta)  # noqa: E731
    elif kind == "layer_norm":
        x = torch.randn(*spec["shape"], device=dev, dtype=dt)
        c = spec["shape"][-1]
        gamma = torch.ones(c, device=dev, dtype=dt)
        beta = torch.zeros(c, device=dev, dtype=dt)
        call = lambda: F.layer_norm(x, (c,), gamma, beta)  # noqa: E731
    elif kind == "silu":
        x = torch.randn(*spec["shape"], device=dev, dtype=dt)
        call = lambda: F.silu(x)  # noqa: E731
    elif kind == "add":
        x = torch.randn(*spec["shape"], device=dev, dtype=dt)
        y = torch.randn(*spec["shape"], device=dev, dtype=dt)
        call = lambda: x + y  # noqa: E731
    else:
        raise SystemExit(f"unknown case kind {kind}")
    for _ in range(3):          # warm-up: cuBLAS/cuDNN heuristics, lazy module loading
        call()
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    call()
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()


def _parse_ncu_csv(text: str) -> list[dict]:
    lines = [ln for ln in text.splitlines() if ln.startswith('"')]
    if not lines:
        return []
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    header, body = rows[0], rows[1:]
    if body and body[0] and body[0][0] == "":      # the units row of --page raw
        body = body[1:]
    out = []
    for r in body:
        rec = dict(zip(header, r))
        def num(key):
            v = rec.get(key, "").replace(",", "")
            try:
                return float(v)
            except ValueError:
                return None
        out.append({"kernel": rec.get("Kernel Name", ""),
                    "dram_bytes_read": num("dram__bytes_read.sum"),
                    "dram_bytes_write": num("dram__bytes_write.sum"),
                    "duration_ns": num("gpu__time_duration.sum")})
    return out


def _drive(out_dir: str, only: list[str] | None) -> int:
    import torch
    os.makedirs(out_dir, exist_ok=True)
    results = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
               "ncu_version": subprocess.run(["ncu", "--version"], capture_output=True, text=True).stdout.strip(),
               "metrics": METRICS, "cache_control": "all (ncu default: caches flushed before each kernel)",
               "cases": {}}
    for name in only or list(CASES):
        start = time.time()
        cmd = ["ncu", "--profile-from-start", "off", "--metrics", METRICS, "--csv", "--page", "raw",
               "--print-units", "base", sys.executable, os.path.abspath(__file__), "--case", name]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        kernels = _parse_ncu_csv(proc.stdout)
        results["cases"][name] = {"spec": CASES[name], "attn": ATTN, "kernels": kernels,
                                  "returncode": proc.returncode,
                                  "error": None if kernels else (proc.stderr[-1500:] + proc.stdout[-1500:])}
        print(f"{name}: {len(kernels)} kernels, rc {proc.returncode}, {time.time() - start:.1f} s", flush=True)
    with open(os.path.join(out_dir, "ncu_cost_model.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"\n{'case':28s} {'kernel':60s} {'read MB':>10s} {'write MB':>10s} {'us':>9s}")
    for name, case in results["cases"].items():
        for k in case["kernels"]:
            print(f"{name:28s} {k['kernel'][:60]:60s} {(k['dram_bytes_read'] or 0) / 1e6:10.2f} "
                  f"{(k['dram_bytes_write'] or 0) / 1e6:10.2f} {(k['duration_ns'] or 0) / 1e3:9.1f}")
        if case["error"]:
            print(f"{name:28s} ERROR: {case['error'][-300:]}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", help="(internal) run one case under ncu")
    parser.add_argument("--out", default=os.environ.get("OUT", "/tmp/out"))
    parser.add_argument("--only", nargs="*", help="case names (default: all)")
    args = parser.parse_args()
    if args.case:
        _run_case(args.case)
        return 0
    return _drive(args.out, args.only)


if __name__ == "__main__":
    sys.exit(main())

"""Capture a CPU-only Kineto trace (no GPU events) for benchmarks/bench_analyzer.py.

    python benchmarks/capture_cpu_trace.py OUT.json.gz [--steps 6] [--resolution 256]

The SD 1.5 UNet (conf/model/sd15.yaml, random weights, seed 0) on the CPU in fp32, batch 1,
vanilla attention (diffusers AttnProcessor), profiled with ``activities=[CPU]``,
``record_shapes=True, profile_memory=True``, no stacks: the shape of trace a user without a GPU
records. Needs torch and diffusers (the capture side), not the analyzer.
"""

import argparse
import gzip
import os
import shutil
import tempfile

import torch
import yaml
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor
from torch.profiler import ProfilerActivity, profile, schedule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--resolution", type=int, default=256)
    args = p.parse_args()
    torch.manual_seed(0)
    cfg = yaml.safe_load(open(os.path.join(ROOT, "conf", "model", "sd15.yaml")))
    unet = UNet2DConditionModel.from_config(cfg["unet"]).eval().requires_grad_(False)
    unet.set_attn_processor(AttnProcessor())
    side = args.resolution // 8
    x = dict(sample=torch.randn(1, 4, side, side), timestep=torch.tensor(999),
             encoder_hidden_states=torch.randn(1, 77, 768))
    with torch.inference_mode(), profile(
            activities=[ProfilerActivity.CPU], schedule=schedule(wait=0, warmup=1, active=args.steps, repeat=1),
            record_shapes=True, profile_memory=True) as prof:
        for _ in range(args.steps + 1):
            unet(**x, return_dict=False)
            prof.step()
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "trace.json")
        prof.export_chrome_trace(raw)
        with open(raw, "rb") as s, gzip.open(args.out, "wb", 9) as d:
            shutil.copyfileobj(s, d)
        print(f"{args.out}: {os.path.getsize(raw) / 1e6:.1f} MB JSON, "
              f"{os.path.getsize(args.out) / 1e6:.2f} MB gzipped, torch {torch.__version__}")


if __name__ == "__main__":
    main()

"""issue 19 capture (GPU machine): the trace shapes of a CUDA-graph run that other tools write,
from one SD 1.5 UNet call (512 px, fp16, batch 2, random weights, seed 0, vanilla attention),
with profiler_kit's own GraphRunner and module scopes. Writes gzipped Kineto JSON into $OUT:

- graph_one_trace.json.gz: capture and replay in ONE profiler session (ProfilerStep#0 captures,
  ProfilerStep#1 replays), as a user profiling their own torch.cuda.graph code records it;
- graph_cuda_only.json.gz: one replay with ProfilerActivity.CUDA alone (no CPU events at all).

usage (repository root, after scripts/gpu/setup.sh): python3 scripts/gpu/graph_trace_shapes.py
"""
import gzip
import os
import shutil
import time

import torch
from omegaconf import OmegaConf
from torch.profiler import ProfilerActivity, profile

from profiler_kit.capture import attention_modes, execution, models, timing

OUT = os.environ.get("OUT", "/tmp/out")
os.makedirs(OUT, exist_ok=True)
dev = torch.device("cuda")


def export(prof, name):
    raw = f"/tmp/{name}.json"
    prof.export_chrome_trace(raw)
    with open(raw, "rb") as s, gzip.open(os.path.join(OUT, name + ".json.gz"), "wb", 6) as d:
        shutil.copyfileobj(s, d, 1 << 20)
    print(f"{name}: {os.path.getsize(os.path.join(OUT, name + '.json.gz')) / 1e6:.2f} MB gz", flush=True)


model_cfg = OmegaConf.load("conf/model/sd15.yaml")
built = models.build_unet(model_cfg, dev, torch.float16, 0)
unet = built.unet
inputs = models.make_inputs(unet, model_cfg, 512, 2, dev, torch.float16, 0)
with attention_modes.attention_mode(unet, "vanilla"), torch.inference_mode():
    runner = execution.GraphRunner(unet, inputs)
    runner(inputs["sample"], inputs["timestep"])
    torch.cuda.synchronize()
    t = time.time()
    with timing.module_scopes(unet, True), profile(
            activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True,
            profile_memory=True) as prof:
        runner.record_capture()            # ProfilerStep#0: the capture
        prof.step()
        runner(inputs["sample"], inputs["timestep"])   # ProfilerStep#1: one replay
        torch.cuda.synchronize()
        prof.step()
    export(prof, "graph_one_trace")
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        runner(inputs["sample"], inputs["timestep"])
        torch.cuda.synchronize()
    export(prof, "graph_cuda_only")
    print(f"done in {time.time() - t:.1f} s", torch.__version__, torch.cuda.get_device_name(0))

"""issue 7 capture (GPU machine): SD 1.5 UNet, 512 px, vanilla attention (diffusers AttnProcessor),
fp16, batch 2, random weights (seed 0). In ONE process: a plain trace (no module scopes, no stacks,
record_shapes + profile_memory) and a scoped trace of the same calls, then an op-heavy multi-step
trace without scopes or stacks. Writes gzipped Kineto JSON into $OUT."""
import contextlib, gzip, os, shutil, time
import torch, yaml
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor
from torch.profiler import ProfilerActivity, profile, schedule

OUT = os.environ["OUT"]
cfg = yaml.safe_load(open("conf/model/sd15.yaml"))
dev, dtype = torch.device("cuda"), torch.float16
with torch.device("meta"):
    unet = UNet2DConditionModel.from_config(cfg["unet"])
unet = unet.to_empty(device=dev)
g = torch.Generator(device=dev).manual_seed(0)
with torch.no_grad():
    for p in unet.parameters():
        p.normal_(0, 0.02, generator=g)
unet = torch.nn.Module.to(unet, dtype).eval().requires_grad_(False)
unet.set_attn_processor(AttnProcessor())
gen = torch.Generator().manual_seed(0)
inputs = dict(sample=torch.randn(2, 4, 64, 64, generator=gen).to(dev, dtype),
              timestep=torch.tensor(999, device=dev),
              encoder_hidden_states=torch.randn(2, 77, 768, generator=gen).to(dev, dtype))

@contextlib.contextmanager
def scopes(enabled):
    if not enabled:
        yield; return
    handles, stack = [], []
    def pre(name):
        def hook(_m, _a):
            rf = torch.profiler.record_function(f"module::{name}"); rf.__enter__(); stack.append(rf)
        return hook
    def post(_m, _a, _o):
        if stack: stack.pop().__exit__(None, None, None)
    for name, m in unet.named_modules():
        if name:
            handles += [m.register_forward_pre_hook(pre(name)), m.register_forward_hook(post)]
    try: yield
    finally:
        for h in handles: h.remove()

def capture(name, steps, with_scopes):
    t = time.time()
    with torch.inference_mode(), scopes(with_scopes), profile(
            activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
            schedule=schedule(wait=0, warmup=1, active=steps, repeat=1),
            record_shapes=True, profile_memory=True, with_stack=False) as prof:
        for _ in range(steps + 1):
            unet(**inputs, return_dict=False); torch.cuda.synchronize(); prof.step()
    raw = f"/tmp/{name}.json"
    prof.export_chrome_trace(raw)
    with open(raw, "rb") as s, gzip.open(os.path.join(OUT, name + ".json.gz"), "wb", 6) as d:
        shutil.copyfileobj(s, d, 1 << 20)
    print(f"{name}: steps={steps} scopes={with_scopes} raw={os.path.getsize(raw)/1e6:.1f} MB "
          f"gz={os.path.getsize(os.path.join(OUT, name + '.json.gz'))/1e6:.2f} MB in {time.time()-t:.1f} s", flush=True)

with torch.inference_mode():
    for _ in range(3):
        unet(**inputs, return_dict=False)
    torch.cuda.synchronize()
capture("sd15-512-vanilla-plain", 1, False)
capture("sd15-512-vanilla-scoped", 1, True)
capture("sd15-512-vanilla-plain-b", 1, False)
capture("sd15-512-vanilla-10steps-noscopes", int(os.environ.get("HEAVY_STEPS", "12")), False)
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))
import diffusers; print("diffusers", diffusers.__version__)

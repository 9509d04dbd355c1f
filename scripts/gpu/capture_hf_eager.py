"""issue 7 capture (GPU machine): Hugging Face ViT and BERT with *eager* attention (random
weights from default configs, fp16), each followed by a classifier softmax over the logits, plain
torch.profiler traces (record_shapes + profile_memory, no stacks) and one with nn.Module scopes
(with_stack + with_modules)."""
import gzip, os, shutil, torch, transformers
from torch.profiler import ProfilerActivity, profile, schedule
OUT = os.environ["OUT"]; dev = torch.device("cuda")
print("transformers", transformers.__version__, "torch", torch.__version__, torch.cuda.get_device_name(0))

def eager(cfg):
    cfg._attn_implementation = "eager"
    return cfg

def build(kind):
    if kind == "vit":
        cfg = eager(transformers.ViTConfig(num_labels=1000))
        m = transformers.ViTForImageClassification(cfg)
        x = dict(pixel_values=torch.randn(8, 3, 224, 224, device=dev, dtype=torch.float16))
    else:
        cfg = eager(transformers.BertConfig(num_labels=2))
        m = transformers.BertForSequenceClassification(cfg)
        ids = torch.randint(0, cfg.vocab_size, (8, 128), device=dev)
        x = dict(input_ids=ids, attention_mask=torch.ones_like(ids))
    return m.to(dev, torch.float16).eval(), x

def capture(name, model, x, modules):
    def call():
        with torch.inference_mode():
            logits = model(**x).logits
            return logits.float().softmax(-1)        # the classifier softmax: must not match
    for _ in range(3): call()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
                 schedule=schedule(wait=0, warmup=1, active=2, repeat=1), record_shapes=True,
                 profile_memory=True, with_stack=modules, with_modules=modules) as prof:
        for _ in range(3):
            call(); torch.cuda.synchronize(); prof.step()
    raw = f"/tmp/{name}.json"; prof.export_chrome_trace(raw)
    with open(raw, "rb") as s, gzip.open(f"{OUT}/{name}.json.gz", "wb", 9) as d:
        shutil.copyfileobj(s, d)
    print(name, os.path.getsize(raw) / 1e6, "MB raw", os.path.getsize(f"{OUT}/{name}.json.gz") / 1e6, "MB gz")

for kind in ("vit", "bert"):
    m, x = build(kind)
    print(kind, "attn impl:", m.config._attn_implementation)
    capture(f"{kind}-eager-plain-h200", m, x, False)
    capture(f"{kind}-eager-modules-h200", m, x, True)

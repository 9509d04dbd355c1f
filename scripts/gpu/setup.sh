#!/usr/bin/env bash
# On the lent GPU machine, from the repository root: install the carried wheels and profiler_kit
# (a normal, non-editable install) into /tmp/site, and build xformers for this torch and GPU.
# Source it: it exports PYTHONPATH.
set -eo pipefail
SITE=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $SITE .whl/*.whl 2>&1 | grep -v 'already exists' || true
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --upgrade --target $SITE . 2>&1 | grep -v 'already exists' || true
export PYTHONPATH=$SITE
# a warm machine keeps /tmp: build once per machine
if [ "${SKIP_XFORMERS:-0}" != 1 ] && ls .whl/xformers-*.tar.gz >/dev/null 2>&1 && ! ls /tmp/xfw/*.whl >/dev/null 2>&1; then
  start=$(date +%s)
  rm -rf /tmp/xformers-src && mkdir -p /tmp/xformers-src
  tar xzf .whl/xformers-*.tar.gz -C /tmp/xformers-src --strip-components=1
  arch=$(python3 -c 'import torch; m,n=torch.cuda.get_device_capability(); print(f"{m}.{n}")')
  (cd /tmp/xformers-src && TORCH_CUDA_ARCH_LIST=$arch MAX_JOBS=$(nproc) XFORMERS_BUILD_TYPE=Release \
     python3 -m pip wheel -q --no-build-isolation --no-deps -w /tmp/xfw . > /tmp/xformers-build.log 2>&1) \
    || { echo "xformers build failed, see below"; tail -20 /tmp/xformers-build.log; }
  echo "xformers built in $(( $(date +%s) - start )) s"
fi
ls /tmp/xfw/*.whl >/dev/null 2>&1 && python3 -m pip install -q --no-deps --no-compile --upgrade --target $SITE /tmp/xfw/*.whl
python3 - <<'PY'
import torch, diffusers, hydra, plotly, msgspec
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0), "| diffusers", diffusers.__version__)
try:
    import xformers.ops as xops
    q = torch.randn(1, 64, 8, 40, device="cuda", dtype=torch.float16)
    xops.memory_efficient_attention(q, q, q); print("xformers ok")
except Exception as e:
    print("xformers not usable:", str(e).splitlines()[0])
PY

#!/usr/bin/env bash
# On a development machine (with PyPI): fetch what the lent GPU machine lacks (it has no network,
# Python 3.12 and torch 2.11) into .whl/, which git ignores and the device call carries.
# xformers comes as its source distribution: PyPI's wheel is built for another torch/CUDA and
# its CUDA extension does not load there (../shared/GPU.md), so setup.sh builds it on the GPU.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
mkdir -p .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
plat="--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
python3 -m pip download -q --no-deps --only-binary=:all: $plat -d .whl \
  diffusers==0.42.1 hydra-core==1.3.8 omegaconf==2.3.1 plotly==7.1.0 msgspec==0.22.0 \
  importlib_metadata==10.2.0 lazy-importer==0.1.0 \
  submitit==1.5.4 hydra-submitit-launcher==1.2.0 cloudpickle==3.1.2
# antlr4-python3-runtime 4.9.x (pinned by hydra/omegaconf) is a source distribution only
python3 -m pip wheel -q --no-deps antlr4-python3-runtime==4.9.3 -w .whl
python3 -m pip download -q --no-deps --no-binary :all: --no-build-isolation xformers==0.0.35 -d .whl
ls -la .whl

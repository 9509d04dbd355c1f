"""The seeded random weights every run without `model.pretrained` builds (capture/models.py):
their scale is what keeps fp16 activations finite through the depth of the model, and the seed
must give the same model twice (two runs of a sweep compare the same network)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parent.parent


def _built(seed: int):
    from hydra import compose, initialize_config_dir

    from profiler_kit import config
    from profiler_kit.capture import models

    config.register()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["model=tiny"])
    return models.build_unet(cfg.model, torch.device("cpu"), torch.float32, seed).unet


def test_matrices_have_variance_one_over_fan_in_biases_zero_norms_one():
    unet = _built(0)
    checked = 0
    for name, param in unet.named_parameters():
        if param.dim() > 1 and param.numel() >= 4096:
            fan_in = param[0].numel()
            bound = math.sqrt(3.0 / fan_in)
            # uniform on ±sqrt(3/fan_in): variance 1/fan_in within sampling error, never beyond the bound
            assert param.abs().max().item() <= bound * (1 + 1e-6), name
            assert param.var().item() * fan_in == pytest.approx(1.0, rel=0.1), name
            checked += 1
        elif param.dim() == 1 and name.endswith("bias"):
            assert torch.count_nonzero(param).item() == 0, name
        elif param.dim() == 1:
            assert torch.all(param == 1.0).item(), name
    assert checked > 10


def test_the_seed_decides_the_weights():
    first, again, other = _built(0), _built(0), _built(1)
    conv = "conv_in.weight"
    assert torch.equal(dict(first.named_parameters())[conv], dict(again.named_parameters())[conv])
    assert not torch.equal(dict(first.named_parameters())[conv], dict(other.named_parameters())[conv])


def test_the_weights_do_not_depend_on_how_many_threads_draw_them():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = _built(0)
        torch.set_num_threads(3)
        parallel = _built(0)
    finally:
        torch.set_num_threads(before)
    for (name, a), (_, b) in zip(serial.named_parameters(), parallel.named_parameters()):
        assert torch.equal(a, b), name

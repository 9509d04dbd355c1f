"""GPU specs: every YAML loads with a source, device names match the right card, no sparse figures."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from profiler_kit.hardware import specs
from profiler_kit.hardware.specs import (GpuSpec, aliases, gpu_conf_dir, known_keys, list_specs, load_spec,
                                match_spec, peak_flops, peak_tflops, spec_from_mapping)

REPO = Path(__file__).resolve().parent.parent

# What torch.cuda.get_device_name() / Kineto's deviceProperties report on real machines.
DEVICE_NAMES = {
    "NVIDIA H100 80GB HBM3": "h100-sxm",
    "NVIDIA H100 PCIe": "h100-pcie",
    "NVIDIA A100-SXM4-40GB": "a100-40gb",
    "NVIDIA A100-SXM4-80GB": "a100-80gb",
    "NVIDIA A100 80GB PCIe": "a100-80gb-pcie",
    "NVIDIA A100-PCIE-40GB": "a100-40gb",
    "NVIDIA H200": "h200",
    "NVIDIA L4": "l4",
    "Tesla T4": "t4",
    "NVIDIA GeForce RTX 4090": "rtx-4090",
    "NVIDIA A10G": "a10g",
    "NVIDIA L40S": "l40s",
    "Tesla V100-SXM2-16GB": "v100",
    "Tesla V100-SXM2-32GB": "v100-32gb",
    # issue 21: 2025-26 cards (B200 and MI300X names as TraceLens' traces record them)
    "NVIDIA B200": "b200",
    "NVIDIA GB200": "gb200",
    "NVIDIA B300 SXM6 AC": "b300",
    "NVIDIA H20": "h20",
    "NVIDIA H100 NVL": "h100-nvl",
    "NVIDIA GeForce RTX 5090": "rtx-5090",
    "NVIDIA RTX PRO 6000 Blackwell Workstation Edition": "rtx-pro-6000-blackwell",
    "NVIDIA RTX PRO 6000 Blackwell Server Edition": "rtx-pro-6000-blackwell",
    "AMD Instinct MI300X": "mi300x",
    "AMD Instinct MI300X VF": "mi300x",
    "AMD Instinct MI325X": "mi325x",
    "AMD Instinct MI355X": "mi355x",
    # names both cards; the analysis then checks the CU count (110 per MI250X GCD, 104 per MI250's)
    "AMD Instinct MI250X / MI250": "mi250x",
}

# Cards we have no file for must not be judged against a look-alike's roof.
UNMATCHED = ["NVIDIA H200 NVL", "NVIDIA L40", "Tesla V100-PCIE-16GB",
             "NVIDIA GeForce RTX 4090 D", "NVIDIA GeForce RTX 4090 Laptop GPU", "NVIDIA A10",
             "NVIDIA RTX A1000", "NVIDIA GB300", "NVIDIA GeForce RTX 5080",
             "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", "AMD Instinct MI300A",
             "AMD Radeon Graphics", ""]

REQUIRED_KEYS = {"a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200", "a10g", "l4", "l40s",
                 "t4", "v100", "rtx-4090", "a100", "h100",
                 # issue 21
                 "b200", "b300", "gb200", "h20", "h100-nvl", "rtx-5090", "rtx-pro-6000-blackwell",
                 "mi250x", "mi300x", "mi325x", "mi355x"}


def test_every_required_card_and_alias_has_a_file():
    assert REQUIRED_KEYS <= set(known_keys())


@pytest.mark.parametrize("key", known_keys())
def test_every_yaml_loads_with_a_source_and_sane_figures(key):
    spec = load_spec(key)
    assert isinstance(spec, GpuSpec)
    assert spec.source.count("http") >= 1, "every spec cites a datasheet/whitepaper URL"
    assert spec.match and all(m == m.lower() for m in spec.match)
    assert spec.fp32_tflops > 0 and spec.fp16_tensor_tflops > spec.fp32_tflops
    assert spec.memory_bandwidth_gbps > 100 and spec.memory_bytes >= 16 * 2**30
    assert spec.l2_bytes >= 2**22 and spec.sm_count >= 40
    # Tensor rates ordered as on every NVIDIA card since Ampere: TF32 = half of FP16/BF16.
    if spec.tf32_tensor_tflops is not None:
        assert spec.tf32_tensor_tflops == pytest.approx(spec.fp16_tensor_tflops / 2, rel=0.02)
    if spec.fp8_tensor_tflops is not None:
        assert spec.fp8_tensor_tflops == pytest.approx(2 * spec.fp16_tensor_tflops, rel=0.02)


@pytest.mark.parametrize("path", sorted((REPO / "conf" / "gpu").glob("*.yaml")), ids=lambda p: p.stem)
def test_yaml_is_flat_and_its_key_is_its_file_name(path):
    data = yaml.safe_load(path.read_text())
    assert data["key"] == path.stem
    assert all(not isinstance(v, dict) for v in data.values()), "flat mapping: the analyzer reads it without Hydra"
    # Hydra's default package for a config group is the group itself (cfg.gpu); a legacy
    # "@package _group_" header makes Hydra 1.3 complain, so none is written.
    assert "@package" not in path.read_text()


def test_plus_gpu_alias_composes_with_hydra():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from profiler_kit import config

    config.register()   # the typed schema config.yaml names in its defaults
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        cfg = compose(config_name="config", overrides=["+gpu=h100"])
    assert spec_from_mapping(OmegaConf.to_container(cfg.gpu)).key == "h100-sxm"


def test_dense_figures_not_sparse():
    # NVIDIA's datasheets print the 2:4-sparsity figure with an asterisk; we keep the dense one.
    dense_fp16 = {"h100-sxm": 989.4, "h100-pcie": 756.5, "h200": 989.4, "a100-80gb": 312.0,
                  "a100-40gb": 312.0, "l4": 121.0, "l40s": 362.05, "rtx-4090": 165.2, "t4": 65.0,
                  "v100": 125.0, "a10g": 70.0}
    for key, tflops in dense_fp16.items():
        assert load_spec(key).fp16_tensor_tflops == pytest.approx(tflops), key
    h100 = load_spec("h100-sxm")
    assert h100.bf16_tensor_tflops == pytest.approx(989, abs=1)      # not 1979
    assert h100.tf32_tensor_tflops == pytest.approx(494.7)            # not 989
    assert h100.fp8_tensor_tflops == pytest.approx(1978.9)            # not 3958


@pytest.mark.parametrize("device_name,key", DEVICE_NAMES.items())
def test_match_real_device_names(device_name, key):
    spec = match_spec(device_name)
    assert spec is not None and spec.key == key


@pytest.mark.parametrize("device_name", UNMATCHED)
def test_unknown_or_lookalike_cards_match_nothing(device_name):
    assert match_spec(device_name) is None


def test_h100_sxm_and_pcie_differ_where_it_matters():
    sxm, pcie = match_spec("NVIDIA H100 80GB HBM3"), match_spec("NVIDIA H100 PCIe")
    assert sxm.memory_bandwidth_gbps == 3350 and pcie.memory_bandwidth_gbps == 2000
    assert sxm.sm_count == 132 and pcie.sm_count == 114


def test_a100_40_and_80_differ_in_bandwidth_and_memory():
    a40, a80 = match_spec("NVIDIA A100-SXM4-40GB"), match_spec("NVIDIA A100-SXM4-80GB")
    assert (a40.memory_bandwidth_gbps, a80.memory_bandwidth_gbps) == (1555, 2039)
    assert a80.memory_bytes == 2 * a40.memory_bytes


def test_aliases_resolve_to_the_card_they_name():
    assert aliases() == {"a100": "a100-80gb", "h100": "h100-sxm"}
    assert load_spec("a100") == load_spec("a100-80gb")
    assert load_spec("H100") == load_spec("h100-sxm")
    # Aliases are not listed (or matched) twice.
    keys = [s.key for s in list_specs()]
    assert "a100" not in keys and "h100" not in keys and len(keys) == len(set(keys))


def test_spec_from_hydra_style_mapping_follows_alias():
    # What the experiment gets as cfg.gpu after `+gpu=h100`.
    assert spec_from_mapping({"key": "h100", "alias_of": "h100-sxm"}).key == "h100-sxm"
    full = yaml.safe_load((REPO / "conf" / "gpu" / "l4.yaml").read_text())
    assert spec_from_mapping(full) == load_spec("l4")


def test_unknown_key_lists_known_keys_in_one_line():
    with pytest.raises(ValueError) as info:
        load_spec("mi210")
    message = str(info.value)
    assert "\n" not in message and "'mi210'" in message
    assert "h100-sxm" in message and "a100" in message and "rtx-4090" in message


def test_load_spec_from_a_file_path(tmp_path):
    data = yaml.safe_load((REPO / "conf" / "gpu" / "t4.yaml").read_text())
    data["key"] = "my-t4"
    path = tmp_path / "my-t4.yaml"
    path.write_text(yaml.safe_dump(data))
    spec = load_spec(path)
    assert spec.key == "my-t4" and spec.fp16_tensor_tflops == 65.0
    with pytest.raises(ValueError, match="does not exist"):
        load_spec(tmp_path / "missing.yaml")


def test_bad_yaml_is_rejected_with_the_field_named(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("key: broken\nname: X\nmatch: [x]\nfp32_tflops: 1\nsource: s\n")
    with pytest.raises(ValueError, match="lacks .*fp16_tensor_tflops"):
        load_spec(path)


def test_conf_dir_is_the_repository_conf_in_a_checkout():
    assert Path(str(gpu_conf_dir())).resolve() == (REPO / "conf" / "gpu").resolve()


def test_peak_rates_pick_tensor_or_cuda_cores():
    h100 = load_spec("h100-sxm")
    assert peak_flops(h100, "fp16", "tensor") == pytest.approx(989.4e12)
    assert peak_flops(h100, "bf16", "tensor") == pytest.approx(989.4e12)
    assert peak_flops(h100, "tf32", "tensor") == pytest.approx(494.7e12)
    # fp32 matmul: tensor cores only when TF32 is allowed.
    assert peak_flops(h100, "fp32", "tensor") == pytest.approx(66.9e12)
    assert peak_flops(h100, "fp32", "tensor", allow_tf32=True) == pytest.approx(494.7e12)
    assert peak_flops(h100, "fp16", "cuda") == pytest.approx(133.8e12)
    assert peak_flops(h100, "int64", "cuda") == pytest.approx(66.9e12)
    # Cards without the tensor cores for a dtype: where the math really runs, or None.
    t4 = load_spec("t4")
    assert peak_tflops(t4, "bf16", "tensor") == pytest.approx(8.1)
    assert peak_tflops(t4, "fp32", "tensor", allow_tf32=True) == pytest.approx(8.1)
    assert peak_tflops(load_spec("a100"), "fp8_e4m3", "tensor") is None
    with pytest.raises(ValueError, match="engine"):
        peak_flops(h100, "fp16", "sfu")


def test_spec_to_dict_is_json_ready():
    import json
    d = load_spec("h200").to_dict()
    assert json.loads(json.dumps(d))["match"] == ["h200"]
    assert specs.load_spec("h200").memory_bandwidth_gbps == 4800


# Kineto deviceProperties as TraceLens' 2025-26 traces record them (tests/data/third_party/tracelens/2026).
MI300X_PROPS = {"id": 0, "name": "AMD Instinct MI300X", "totalGlobalMem": 206141652992,
                "computeMajor": 9, "computeMinor": 4, "numSms": 304}
B200_PROPS = {"id": 0, "name": "NVIDIA B200", "totalGlobalMem": 191503138816, "computeMajor": 10,
              "computeMinor": 0, "numSms": 148}
# HTA's MI250 trace: ROCm names each GCD "AMD Radeon Graphics"; 104 CUs is an MI250 GCD, not an MI250X's
MI250_PROPS = {"id": 0, "name": "AMD Radeon Graphics", "totalGlobalMem": 68702699520,
               "computeMajor": 9, "computeMinor": 0, "numSms": 104}


def test_device_properties_fingerprint_a_card_when_the_name_says_nothing():
    assert specs.match_properties({**MI300X_PROPS, "name": "AMD Radeon Graphics"}).key == "mi300x"
    # B200 and GB200 share dies and SM count, and 191.5 GB fits both: ambiguous, so none (the
    # name decides, and does: NVIDIA names its cards)
    assert specs.match_properties(B200_PROPS) is None and match_spec(B200_PROPS["name"]).key == "b200"
    # an MI250 GCD (104 CUs) is no MI250X GCD (110): no roof rather than a look-alike's
    assert specs.match_properties(MI250_PROPS) is None
    assert specs.match_properties({**MI250_PROPS, "numSms": 110}).key == "mi250x"
    # the MI325X has the MI300X's compute; its 256 GB tell them apart
    assert specs.match_properties({**MI300X_PROPS, "totalGlobalMem": 270_000_000_000}).key == "mi325x"
    assert specs.match_properties({"name": "x"}) is None


def test_low_precision_peaks_where_the_card_has_them():
    b200, mi355x, h100 = load_spec("b200"), load_spec("mi355x"), load_spec("h100-sxm")
    assert peak_tflops(b200, "fp4", "tensor") == 9000.0 and peak_tflops(b200, "fp6", "tensor") == 4500.0
    assert peak_tflops(mi355x, "fp4", "tensor") == 10066.3
    assert peak_tflops(h100, "fp4", "tensor") is None            # Hopper has no FP4 tensor cores
    assert peak_tflops(load_spec("mi250x"), "fp8_e4m3", "tensor") is None


def test_every_spec_of_issue_21_cites_its_datasheet_per_figure_family():
    for key in ("b200", "b300", "gb200", "h20", "h100-nvl", "rtx-5090", "rtx-pro-6000-blackwell",
                "mi250x", "mi300x", "mi325x", "mi355x"):
        spec = load_spec(key)
        assert "http" in spec.source and spec.notes, key
        # estimates are said to be estimates
        if key in ("b300", "gb200", "h20", "rtx-pro-6000-blackwell"):
            assert "estimate" in spec.notes.lower(), key

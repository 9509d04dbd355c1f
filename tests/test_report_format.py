"""Units for reading, script-safe JSON and kernel-name shortening (small hand-made values)."""

from __future__ import annotations

import json
import math

import pytest

from profiler_kit import units as fmt
from profiler_kit.report.embed import json_for_script


@pytest.mark.parametrize("us, text", [
    (0.25, "250 ns"), (12.345, "12.3 µs"), (999.4, "999 µs"), (1500.0, "1.50 ms"),
    (48_100.0, "48.1 ms"), (2_500_000.0, "2.50 s"), (0, "0 µs"), (None, "–"), (math.nan, "–"),
])
def test_durations_pick_a_readable_unit(us, text):
    assert fmt.duration_us(us) == text


def test_memory_is_binary_and_traffic_decimal():
    assert fmt.bytes_binary(6.9e9) == "6.43 GiB"
    assert fmt.bytes_binary(3 * 2**20) == "3.00 MiB"
    assert fmt.bytes_decimal(4.76e9) == "4.76 GB"
    assert fmt.bytes_decimal(512) == "512 B"
    assert fmt.gb_per_s(3350.0) == "3,350 GB/s"
    assert fmt.tflops_per_s(989.4) == "989 TFLOP/s"
    assert fmt.flops(2.52e11) == "252 GFLOP"
    assert fmt.percent(0.1234) == "12.3 %"
    assert fmt.speedup(1.523) == "1.52×"
    assert fmt.share(1.0, 0.0) is None and fmt.share(None, 2.0) is None


NASTY = ["</script><script>alert(1)</script>", "<!-- x", "a & b > c", "\u2028\u2029", "</SCRIPT >"]


@pytest.mark.parametrize("text", NASTY)
def test_json_for_script_cannot_close_the_script_and_round_trips(text):
    encoded = json_for_script({"name": text, "list": [text]})
    for forbidden in ("<", ">", "&", "\u2028", "\u2029"):
        assert forbidden not in encoded
    assert json.loads(encoded) == {"name": text, "list": [text]}


def test_json_for_script_turns_non_finite_numbers_into_null():
    assert json.loads(json_for_script({"x": math.nan, "y": [math.inf, 1.5]})) == {"x": None, "y": [None, 1.5]}


@pytest.mark.parametrize("name, short", [
    ("void at::native::(anonymous namespace)::cunn_SoftMaxForward<8, c10::Half, float, c10::Half>"
     "(c10::Half*, c10::Half const*, int)", "cunn_SoftMaxForward"),
    ("void pytorch_flash::flash_fwd_kernel<pytorch_flash::Flash_fwd_kernel_traits<64, 128, 128, 4, "
     "false, false, cutlass::bfloat16_t>>(pytorch_flash::Flash_fwd_params)", "flash_fwd_kernel"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>, "
     "std::array<char*, 3ul> >(int, at::native::CUDAFunctor_add<c10::BFloat16>, std::array<char*, 3ul>)",
     "vectorized_elementwise_kernel<CUDAFunctor_add>"),
    ("sm90_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x128x64", "sm90_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x128x64"),
    ("Memcpy HtoD (Pageable -> Device)", "Memcpy HtoD (Pageable -> Device)"),
    ("", "?"),
])
def test_short_kernel_names(name, short):
    assert fmt.short_kernel_name(name) == short

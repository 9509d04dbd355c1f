"""Named sets of benchmark traces, so a benchmark names a shape of trace instead of a path.

- ``benchmarks``: this project's committed traces (benchmarks/data): Python-frame heavy SDXL,
  op-heavy SD 1.5 without Python frames, CPU-only;
- ``public``: other projects' real traces of shapes the committed ones lack, read from
  ``../shared/traces`` beside the checkout (TraceLens' and HTA's test data, listed with their
  sources in that folder's README.md; not committed here: only the few tests need are, under
  tests/data). Each is named below with the shape it stands for;
- ``pairs``: a graph replay with its capture (``analyze REPLAY --capture CAPTURE``), as tuples;
  for the output check only (HTA has no such input).

Where ../shared/traces is missing the script stops with a line saying so.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
SHARED = ROOT.parent / "shared" / "traces"

SETS: dict[str, list] = {
    "benchmarks": [
        DATA / "sdxl-1024-vanilla-h200.trace.json.gz",            # Python-frame heavy, H200
        DATA / "sd15-512-vanilla-12steps-opheavy-h200.trace.json.gz",  # op-heavy with shapes
        DATA / "sd15-256-vanilla-cpu-only.trace.json.gz",          # no GPU events
    ],
    "public": [
        # many Python frames (179k of 216k events), AMD MI300X, compiled, graph capture
        SHARED / "tracelens/2026/xdit_flux1_aiter_sage_mi300x_capture_trace.json.gz",
        SHARED / "tracelens/2026/xdit_flux1_mi300x_capture_trace.json.gz",
        # vLLM decode: the capture (120k Python frames) and the graph replays apart
        SHARED / "tracelens/2026/vllm_decode_full_graph_capture.json.gz",
        SHARED / "tracelens/2026/vllm_decode_full_graph_execution.json.gz",
        # two GPUs in one trace (B200), many small vLLM/Inductor kernels
        SHARED / "tracelens/2026/b200_eager_trace.json.gz",
        # eager LLM on ROCm: op-heavy with shapes, 1.5k small kernels
        SHARED / "tracelens/2026/mi300x_Qwen1.5-0.5B-Chat__1016005.json.gz",
        # small H100 traces with shapes, stacks, modules and memory events
        SHARED / "tracelens/Falconsai_nsfw_image_detection__1016002.json.gz",
        SHARED / "tracelens/gaunernst_bert-small-uncased__1016001.json.gz",
        # HTA's test data: syncs and flows; CUPTI counters; AMD MI250; a Triton kernel; CPU only
        SHARED / "hta/benchmark_result_2869224_1695835535_trace.json.gz",
        SHARED / "hta/benchmark_result_924719_1679055439_trace.json.gz",
        SHARED / "hta/mi250_minitoy_train_ROCm6_2_kineto.json.gz",
        SHARED / "hta/triton_example.json.gz",
        SHARED / "hta/rank-34.Jul_15_10_52_41.1074.pt.trace.json.gz",
    ],
    "pairs": [
        (SHARED / "tracelens/2026/vllm_decode_full_graph_execution.json.gz",
         SHARED / "tracelens/2026/vllm_decode_full_graph_capture.json.gz"),
    ],
}


def resolve(name: str) -> list:
    """The set's traces (paths, or (replay, capture) tuples); exits with one line if one is missing."""
    items = SETS[name]
    missing = [p for item in items for p in (item if isinstance(item, tuple) else (item,))
               if not p.is_file()]
    if missing:
        sys.exit(f"set {name!r}: {len(missing)} traces missing, first {missing[0]}; the public "
                 f"set reads {SHARED} (a checkout of shared/traces beside this repository)")
    return list(items)

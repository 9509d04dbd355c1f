"""kernels.csv from the fast writer is byte-for-byte what csv.writer writes (real traces with
quoted fields: kernel names and op shapes full of commas)."""

import csv
from pathlib import Path

import pytest

from profiler_kit.analysis import KERNEL_CSV_COLUMNS, analyze_trace

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("trace", [
    DATA / "sd_plain" / "sd15-512-vanilla-plain.json.gz",
    DATA / "third_party" / "tracelens" / "Falconsai_nsfw_image_detection__1016002.json.gz",
    DATA / "third_party" / "hta" / "mi250_minitoy_train_ROCm6_2_kineto.json.gz",
], ids=lambda p: p.name[:30])
def test_fast_csv_matches_csv_writer(trace, tmp_path):
    a = analyze_trace(trace, spec="h100")
    ours, ref = tmp_path / "ours.csv", tmp_path / "ref.csv"
    a.write_kernels_csv(ours)
    with open(ref, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(KERNEL_CSV_COLUMNS)
        w.writerows(a._kernel_tuples())
    assert ours.read_bytes() == ref.read_bytes()
    with open(ours, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 1 + len(a.table)

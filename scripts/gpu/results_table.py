"""Markdown tables of GPU run folders, for docs/gpu-results.md.

usage: python scripts/gpu/results_table.py RUN_DIR [RUN_DIR ...]
Reads each folder's summary.json (after `python -m profiler_kit.analyze RUN_DIR`, so the
analysis comes from the current analyzer) and prints one row per mode. No torch needed.
"""

import sys
from pathlib import Path

from profiler_kit.records import read_summary


def _ms(us):
    return f"{us / 1e3:.2f}" if us is not None else "–"


def rows(run_dir: Path):
    s = read_summary(run_dir / "summary.json")
    label = f"{s.config['model']['name']} {s.config['resolution']} px"
    for mode, rec in s.modes.items():
        if not rec.ok or rec.step_ms is None:
            yield f"| {label} | {mode} | **{rec.status}** | {(rec.reason or '')[:70]} | | | | | | |"
            continue
        st, a = rec.step_ms, rec.analysis
        cmp = s.comparison.get(mode)
        speed = "1.00 (ref)" if mode == s.reference_mode else (f"{cmp.speedup:.2f}" if cmp else "–")
        noisy = " ⚠" if st.noisy else ""
        yield (f"| {label} | {mode} | {st.median_ms:.2f} ± {st.iqr_ms:.2f}{noisy} | {speed} | "
               f"{rec.loop_it_per_s:.1f} | {(rec.peak_allocated_bytes or 0) / 2**30:.2f} | "
               f"{_ms(a.kernels.total_us if a else None)} | {_ms(a.attention.total_us if a else None)} | "
               f"{(a.attention.hbm_bytes_estimate if a else 0) / 1e9:.2f} | "
               f"{(rec.attention_kernels or ['–'])[0][:48].replace('|', '/')} |")


def main(dirs):
    print("| run | mode | UNet step ms (median ± IQR) | speed-up vs vanilla | loop it/s | peak alloc GiB | "
          "GPU kernel ms (trace) | attention kernel ms | attention HBM GB (estimate) | main attention kernel |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for d in dirs:
        for row in rows(Path(d)):
            print(row)


if __name__ == "__main__":
    main(sys.argv[1:])

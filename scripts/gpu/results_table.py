"""Markdown tables of GPU run folders, for docs/gpu-results.md.

usage: python scripts/gpu/results_table.py RUN_DIR [RUN_DIR ...]
Reads each folder's summary.json (after `python -m profiler_kit.run_analysis RUN_DIR`, so the
analysis comes from the current analyzer) and prints one row per mode. No torch needed.
"""

import json
import sys
from pathlib import Path


def _ms(us):
    return f"{us / 1e3:.2f}" if us is not None else "–"


def rows(run_dir: Path):
    s = json.loads((run_dir / "summary.json").read_text())
    cfg, env = s["config"], s["environment"]
    label = f"{cfg['model']['name']} {cfg['resolution']} px"
    for mode, rec in s["modes"].items():
        if rec["status"] != "ok":
            reason = (rec.get("reason") or "")[:70]
            yield f"| {label} | {mode} | **{rec['status']}** | {reason} | | | | | | |"
            continue
        st, a = rec["step_ms"], rec.get("analysis") or {}
        cmp = s["comparison"].get(mode, {})
        speed = "1.00 (ref)" if mode == s["reference_mode"] else f"{cmp.get('speedup', float('nan')):.2f}"
        att = a.get("attention", {})
        noisy = " ⚠" if st["noisy"] else ""
        yield (f"| {label} | {mode} | {st['median']:.2f} ± {st['iqr']:.2f}{noisy} | {speed} | "
               f"{rec['loop_it_per_s']:.1f} | {rec['peak_allocated_bytes'] / 2**30:.2f} | "
               f"{_ms(a.get('kernels', {}).get('total_us'))} | {_ms(att.get('total_us'))} | "
               f"{(att.get('attention_hbm_bytes_estimate') or sum(c.get('hbm_bytes_estimate') or 0 for c in att.get('calls', []))) / 1e9:.2f} | "
               f"{(rec.get('attention_kernels') or ['–'])[0][:48].replace('|', '/')} |")


def main(dirs):
    print("| run | mode | UNet step ms (median ± IQR) | speed-up vs vanilla | loop it/s | peak alloc GiB | "
          "GPU kernel ms (trace) | attention kernel ms | attention HBM GB (estimate) | main attention kernel |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for d in dirs:
        for row in rows(Path(d)):
            print(row)


if __name__ == "__main__":
    main(sys.argv[1:])

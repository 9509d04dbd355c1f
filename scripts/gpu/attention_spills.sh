#!/usr/bin/env bash
# On the lent GPU machine, from the repository root: Nsight Compute's local-memory (spill)
# counters beside its L2/DRAM traffic for xformers', cuDNN's and CUTLASS's attention kernels on
# SD 1.5's shapes (attention_spills.py). Needs xformers (do not set SKIP_XFORMERS).
#   bash scripts/gpu/attention_spills.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/begin.sh /tmp/pk-spills
ncu --version | tail -1 | tee "$RUNS/ncu-version.txt"
ncu --query-metrics --chip gh100 > "$RUNS/gh100-metrics.txt" 2>&1
# the wanted metrics, kept only where this ncu knows them (an unknown one fails the whole run;
# Nsight Compute 2025.3 on the H200 has no l1tex__m_*_mem_lmem_* breakdown, so L2 writes less
# local stores is how the spill share of L2 traffic is read)
wanted="dram__bytes_read.sum dram__bytes_write.sum lts__t_sectors_srcunit_tex_op_write.sum
lts__t_sectors_srcunit_tex_op_read.sum gpu__time_duration.sum launch__registers_per_thread
launch__grid_size launch__block_size
l1tex__t_sectors_pipe_lsu_mem_local_op_st.sum l1tex__t_sectors_pipe_lsu_mem_local_op_ld.sum
l1tex__t_sectors_pipe_lsu_mem_global_op_st.sum l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum
l1tex__t_requests_pipe_lsu_mem_local_op_st.sum lts__t_sectors_srcunit_tex_aperture_device_op_write.sum"
metrics=""
for m in $wanted; do
  base=${m%.sum}
  if grep -qw "^$base" "$RUNS/gh100-metrics.txt" || grep -qw "$base" "$RUNS/gh100-metrics.txt"; then
    metrics="$metrics,$m"; else echo "not known to this ncu: $m"; fi
done
metrics=${metrics#,}
echo "metrics: $metrics"
grep -iE "lmem|_local_" "$RUNS/gh100-metrics.txt" | head -40 > "$RUNS/local-metrics.txt"
timeout 400 ncu --profile-from-start off --metrics "$metrics" --csv --page raw --print-units base \
  -o "$RUNS/spills" -f python3 scripts/gpu/attention_spills.py 4096 9216 > "$RUNS/ncu.log" 2>&1
echo "ncu: exit $?"; tail -5 "$RUNS/ncu.log"
ncu -i "$RUNS/spills.ncu-rep" --csv --page raw --print-units base > "$RUNS/spills.csv" 2>&1
python3 - "$RUNS/spills.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))[1:]      # the second line holds the units
def f(r, k):
    v = r.get(k, "")
    try: return float(str(v).replace(",", ""))
    except ValueError: return float("nan")
for r in rows:
    name = r.get("Kernel Name", "")[:60]
    print(f"{name:60s} regs {r.get('launch__registers_per_thread','?'):>4s} "
          f"t {f(r,'gpu__time_duration.sum')/1e3:8.1f} us  dram rd {f(r,'dram__bytes_read.sum')/1e6:8.2f} MB "
          f"wr {f(r,'dram__bytes_write.sum')/1e6:7.2f} MB  L2 wr {f(r,'lts__t_sectors_srcunit_tex_op_write.sum')*32/1e6:8.2f} MB  "
          f"local st {f(r,'l1tex__t_sectors_pipe_lsu_mem_local_op_st.sum')*32/1e6:8.2f} MB  "
          f"local ld {f(r,'l1tex__t_sectors_pipe_lsu_mem_local_op_ld.sum')*32/1e6:8.2f} MB")
PY
rm -f "$RUNS/gh100-metrics.txt.gz"; gzip -k "$RUNS/gh100-metrics.txt"; rm "$RUNS/gh100-metrics.txt"
mkdir -p "${OUT:-/tmp/out}" && cp "$RUNS"/*.csv "$RUNS"/*.txt "$RUNS"/*.gz "$RUNS"/ncu.log "${OUT:-/tmp/out}/" 2>/dev/null
ls -la "${OUT:-/tmp/out}"

#!/usr/bin/env bash
# Sourced by every GPU script after `cd` to the repository root: set the machine up (setup.sh),
# keep going past a failed run (the next run and the collection still matter), make $RUNS
# (RUNS_DIR, else the script's default given as $1) and record the card's name and clocks.
source scripts/gpu/setup.sh
set +e
RUNS=${RUNS_DIR:-$1}
mkdir -p "$RUNS"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$RUNS/nvidia-smi.csv"

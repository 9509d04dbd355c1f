#!/usr/bin/env bash
# Stop the one-node SLURM of scripts/slurm/start.sh: only the daemons that script started, by the
# pids it recorded (slurmd, slurmctld, slurmdbd, MariaDB, munged, in that order), each given a few
# seconds to exit on SIGTERM before SIGKILL. Jobs still running are cancelled first. Idempotent.
set -uo pipefail

STATE=${PROFILER_KIT_SLURM_STATE:-/run/profiler_kit_slurm}
say() { echo "slurm/stop.sh: $*" >&2; }
[ -d "$STATE" ] || { say "nothing to stop (no $STATE)"; exit 0; }

if [ -s "$STATE/slurmctld.pid" ] && kill -0 "$(cat "$STATE/slurmctld.pid")" 2>/dev/null; then
  scancel --quiet --partition=debug 2>/dev/null || true
fi
for name in slurmd slurmctld slurmdbd mariadbd munged; do
  f="$STATE/$name.pid"
  [ -s "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; say "$name ($pid) killed"; else say "$name ($pid) stopped"; fi
  fi
  rm -f "$f"
done

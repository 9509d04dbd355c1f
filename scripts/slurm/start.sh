#!/usr/bin/env bash
# A one-node SLURM with accounting on this machine, for the tests marked `slurm` (tests/test_slurm.py)
# and for trying `hydra/launcher=slurm` by hand: Debian 12's Slurm 22.05, munge, MariaDB and
# slurmdbd (so `sacct` answers and submitit's job states are real), started as root without
# systemd. Idempotent: what already runs is left alone, so a second call returns at once.
# Stop it with scripts/slurm/stop.sh, which kills only what this script started (by the pids it
# recorded in $STATE). About 15 s from installed packages on 2 cores; the apt-get install, the
# first time, a minute more.
#
# The facts that cost time (issue 20): munged must run as the munge user with /run/munge owned
# by it; without DefMemPerCPU a job takes the node's whole memory; without accounting `sacct`
# fails and submitit polls blind; TaskPlugin=task/none pins no cores; proctrack/linuxproc needs
# no cgroup set-up (a container has none); the node line is what `slurmd -C` sees here.
set -euo pipefail

STATE=${PROFILER_KIT_SLURM_STATE:-/run/profiler_kit_slurm}     # pid files of what we started
CLUSTER=profiler_kit
PARTITION=debug
DB_PASS=profiler_kit_slurm        # a local test database, reachable only through its socket
export DEBIAN_FRONTEND=noninteractive

say() { echo "slurm/start.sh: $*" >&2; }
fail() { say "$*"; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root (it installs packages and starts daemons)"

# ---- packages -------------------------------------------------------------------------------
PACKAGES="slurmd slurmctld slurm-client slurmdbd munge mariadb-server"
missing=""
for p in $PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  say "installing$missing"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

mkdir -p "$STATE"
alive() {   # alive NAME: the daemon we started under NAME still runs
  local f="$STATE/$1.pid"
  [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}
wait_for() {   # wait_for SECONDS WHAT COMMAND...: poll COMMAND every 0.2 s
  local limit=$1 what=$2; shift 2
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || fail "$what did not come up in ${limit} s (logs: /var/log/slurm, /var/log/munge, $STATE)"
    sleep 0.2
  done
}
pid_of_file() {   # the pid a daemon wrote into its own pid file, once it is there
  local end=$((SECONDS + 20))
  until [ -s "$1" ]; do [ $SECONDS -lt $end ] || fail "no pid file $1"; sleep 0.1; done
  cat "$1"
}

# ---- munge: authentication between the daemons and the commands --------------------------------
if ! alive munged; then
  [ -s /etc/munge/munge.key ] || { mungekey --create --keyfile /etc/munge/munge.key; }
  chown munge:munge /etc/munge/munge.key && chmod 600 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 755 /run/munge
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged --force
  pid_of_file /run/munge/munged.pid > "$STATE/munged.pid"
fi
wait_for 10 munged sh -c 'munge -n | unmunge'

# ---- MariaDB: the accounting database of slurmdbd ----------------------------------------------
SOCK=/run/mysqld/mysqld.sock
if ! alive mariadbd; then
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  # small buffers: it holds a few dozen test jobs, on a machine shared with the test suite
  /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql --socket=$SOCK --skip-networking \
    --pid-file=/run/mysqld/mysqld.pid --innodb-buffer-pool-size=32M --performance-schema=OFF \
    >"$STATE/mariadbd.log" 2>&1 &
  echo $! > "$STATE/mariadbd.pid"
fi
wait_for 30 MariaDB mariadb --socket=$SOCK -e "select 1"
mariadb --socket=$SOCK -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

# ---- configuration (rewritten each time: it is derived from this machine) ----------------------
HOST=$(hostname -s)
NODE=$(slurmd -C | head -1)                                 # NodeName=... CPUs=... RealMemory=...
MEM_MB=$(echo "$NODE" | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
CPUS=$(echo "$NODE" | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p')
mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
chown -R slurm:slurm /var/lib/slurm /var/log/slurm
# memory per CPU so that jobs asking nothing share the node (each gets its CPUs' share)
DEF_MEM=$((MEM_MB / CPUS / 2))
cat > /etc/slurm/slurm.conf.new <<EOF
# written by scripts/slurm/start.sh (profiler_kit's one-node test cluster)
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$DEF_MEM
# a short grace between SIGTERM and SIGKILL, and jobs reported soon after they end
KillWait=10
MinJobAge=600
SchedulerParameters=sched_interval=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
$NODE State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
sed -i "s/^NodeName=[^ ]*/NodeName=$HOST/" /etc/slurm/slurm.conf.new
mv /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf
cat > /etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
chown slurm:slurm /etc/slurm/slurmdbd.conf && chmod 600 /etc/slurm/slurmdbd.conf
# StorageHost=localhost: slurmdbd reaches the --skip-networking MariaDB through its socket

# ---- slurmdbd, slurmctld, slurmd -------------------------------------------------------------
if ! alive slurmdbd; then
  rm -f /run/slurmdbd.pid
  /usr/sbin/slurmdbd
  pid_of_file /run/slurmdbd.pid > "$STATE/slurmdbd.pid"
fi
wait_for 30 slurmdbd sacctmgr -n list cluster
sacctmgr -n -P list cluster format=cluster | grep -qx $CLUSTER || sacctmgr -i add cluster $CLUSTER >/dev/null
if ! alive slurmctld; then
  rm -f /run/slurmctld.pid
  /usr/sbin/slurmctld
  pid_of_file /run/slurmctld.pid > "$STATE/slurmctld.pid"
else
  scontrol reconfigure
fi
wait_for 30 slurmctld scontrol ping
if ! alive slurmd; then
  rm -f /run/slurmd.pid
  /usr/sbin/slurmd
  pid_of_file /run/slurmd.pid > "$STATE/slurmd.pid"
fi
# the node leaves UNKNOWN once slurmd registers; a node left DOWN or DRAIN from an earlier run comes back
wait_for 30 "the node $HOST" sh -c "sinfo -h -n $HOST -o %T | grep -Eq '^(idle|mixed|allocated|down|drained)'"
if sinfo -h -n "$HOST" -o %T | grep -Eq '^(down|drain)'; then
  scontrol update NodeName="$HOST" State=RESUME
fi
wait_for 30 "the node $HOST (idle)" sh -c "sinfo -h -n $HOST -o %T | grep -Eq '^(idle|mixed|allocated)'"
wait_for 30 "accounting (sacct)" sacct -n -X -S now
say "up: partition $PARTITION, node $HOST ($CPUS CPUs, ${MEM_MB} MB, no GPU), accounting on; stop: scripts/slurm/stop.sh"

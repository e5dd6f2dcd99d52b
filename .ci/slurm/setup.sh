#!/usr/bin/env bash
# A one-node SLURM cluster with job accounting on this machine, for
# tests/test_slurm.py (issue 9): Debian's slurm-wlm 22.05 and munge, slurmdbd
# backed by a local MariaDB (the only accounting storage that makes `sacct`
# list jobs on 22.05: with accounting_storage/none it answers "Slurm
# accounting storage is disabled", and snakemake-executor-plugin-slurm polls
# job states with `sacct`).
#
# Idempotent: packages already installed are not reinstalled, a running daemon
# whose configuration did not change is left running, and the database,
# cluster, account and user are created only when missing. Run as root.
# CI calls it from .ci/run; locally: `sudo .ci/slurm/setup.sh`, and
# `.ci/slurm/stop.sh` ends the daemons again.
#
# The names below are what the test cluster offers; tests/test_slurm.py reads
# them back from the cluster (sacctmgr, sinfo) rather than repeating them.
set -euo pipefail

CLUSTER=ci                # ClusterName: also the prefix of slurmdbd's tables
PARTITION=ci              # the one partition, default for jobs without -p
ACCOUNT=crosscohort       # the account root submits under
DB_PASS=crosscohort-ci    # slurmdbd's MariaDB password (a throwaway local test database)
WAIT_S=60                 # longest wait for any daemon to answer
HERE="$(cd "$(dirname "$0")" && pwd)"

log() { echo "slurm-ci: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts system daemons)"

# ------------------------------------------------------------------- install
packages=(slurm-wlm slurmdbd munge mariadb-server)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---------------------------------------------------------------- configure
# Install $2 as $1 (mode $3, owner $4) only if it differs; return 0 if it changed.
install_if_changed() {
  local dest=$1 content=$2 mode=$3 owner=$4
  if [ -f "$dest" ] && [ "$(cat "$dest")" = "$content" ]; then
    return 1
  fi
  mkdir -p "$(dirname "$dest")"
  printf '%s\n' "$content" >"$dest"
  chmod "$mode" "$dest"
  chown "$owner" "$dest"
  return 0
}

host=$(hostname -s)
# The node's real hardware, as slurmd itself measures it: a node declared with
# more CPUs or memory than slurmd finds is drained ("Low RealMemory").
hw=$(slurmd -C | head -1)
cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
sockets=$(sed -n 's/.* SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")
cores=$(sed -n 's/.* CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")
threads=$(sed -n 's/.* ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")
mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
[ -n "$cpus" ] && [ -n "$mem" ] || die "could not read CPUs/RealMemory from 'slurmd -C': $hw"

slurm_conf="# Written by .ci/slurm/setup.sh: a one-node test cluster. Do not edit; rerun the script.
ClusterName=$CLUSTER
SlurmctldHost=$host
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# No cgroup hierarchy is assumed (CI machines and containers differ):
# processes are tracked through /proc, tasks are not confined.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Cores and memory are both consumable, as on a real cluster: a job's --mem
# (Snakemake's mem_mb) is reserved and jobs that do not fit wait.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# A restarted slurmd brings its node back instead of leaving it DOWN.
ReturnToService=2
SchedulerType=sched/backfill
# Accounting through slurmdbd, so sacct lists every job; job_comment keeps
# sbatch --comment (the executor's rule_<name>_wildcards_<...>) in the database.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageEnforce=associations
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$host CPUs=$cpus Boards=1 SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP"

slurmdbd_conf="# Written by .ci/slurm/setup.sh. Do not edit; rerun the script.
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
PidFile=/run/slurm/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db"

mkdir -p /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm /run/slurm
chown slurm:slurm /var/lib/slurm/slurmctld /var/log/slurm /run/slurm
conf_changed=0
install_if_changed /etc/slurm/slurm.conf "$slurm_conf" 644 root:root && conf_changed=1
# slurmdbd refuses a slurmdbd.conf readable by others (it holds the password).
install_if_changed /etc/slurm/slurmdbd.conf "$slurmdbd_conf" 600 slurm:slurm && conf_changed=1

# -------------------------------------------------------------------- start
# (a stopping daemon removes its pid file: read it quietly)
pid_alive() { local pid; pid=$(cat "$1" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; }

wait_for() {  # wait_for "what" command...: retry the command for up to WAIT_S seconds
  local what=$1; shift
  local i
  for ((i = 0; i < WAIT_S * 2; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  die "$what did not come up within ${WAIT_S}s; see /var/log/slurm/ and /var/log/mysql/"
}

# Stop the daemon of pidfile $1 (if running) when the configuration changed.
restart_needed() {
  local pidfile=$1
  if pid_alive "$pidfile"; then
    [ "$conf_changed" = 1 ] || return 1
    log "configuration changed: stopping $(basename "$pidfile" .pid)"
    kill "$(cat "$pidfile")"
    local i
    for ((i = 0; i < 40; i++)); do pid_alive "$pidfile" || break; sleep 0.25; done
  fi
  return 0
}

# munge: the package generated a key at install; make sure one exists.
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile /etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi
pid_alive /run/munge/munged.pid || /etc/init.d/munge start >/dev/null
wait_for munged munge -n

# MariaDB for slurmdbd (Debian's init script works without systemd).
mysqladmin ping >/dev/null 2>&1 || /etc/init.d/mariadb start >/dev/null
wait_for mariadb mysqladmin ping
mysql -u root <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL

if restart_needed /run/slurm/slurmdbd.pid; then
  log "starting slurmdbd"
  slurmdbd
fi
wait_for slurmdbd sacctmgr -n list cluster

# Cluster, account and the submitting user (root), each only if missing.
sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" ||
  sacctmgr -i add cluster "$CLUSTER" >/dev/null
sacctmgr -n -P list account format=account | grep -qx "$ACCOUNT" ||
  sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description="crosscohort CI" organization=crosscohort >/dev/null
sacctmgr -n -P list assoc cluster="$CLUSTER" user=root format=account | grep -qx "$ACCOUNT" ||
  sacctmgr -i add user root account="$ACCOUNT" cluster="$CLUSTER" defaultaccount="$ACCOUNT" >/dev/null

if restart_needed /run/slurm/slurmctld.pid; then
  log "starting slurmctld"
  slurmctld
fi
wait_for slurmctld scontrol ping
if restart_needed /run/slurm/slurmd.pid; then
  log "starting slurmd"
  slurmd
fi

# %T appends '*' to a node that does not respond: only a bare state counts.
node_ready() { sinfo -h -n "$host" -o %T | grep -Eqx 'idle|mixed|allocated'; }
# A node left DOWN/DRAINED by an earlier run (e.g. killed daemons) is resumed.
if ! node_ready; then
  sleep 2
  node_ready || scontrol update nodename="$host" state=resume 2>/dev/null || true
fi
wait_for "node $host" node_ready

log "ready in ${SECONDS}s: cluster $CLUSTER, partition $PARTITION, node $host ($cpus CPUs, $mem MB), account $ACCOUNT"
log "stop with $HERE/stop.sh"

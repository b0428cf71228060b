#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, to try `brainscope submit` locally and for CI.
#
#   sudo scripts/slurm-local.sh start    # install slurm-wlm + munge if missing, configure, start
#   scripts/slurm-local.sh status        # daemons and `sinfo`
#   sudo scripts/slurm-local.sh stop     # stop the daemons this script started (pid files)
#
# What it sets up (Debian/Ubuntu, run as root):
# - munged with /etc/munge/munge.key (created when missing);
# - /etc/slurm/slurm.conf (only when absent or written by this script: a foreign one is left
#   alone and the script stops) for one node named `hostname -s` at 127.0.0.1 with the CPUs and
#   memory `slurmd -C` reports, one partition `debug`, slurmctld and slurmd as root,
#   proctrack/linuxproc + task/none (no cgroups needed, works in containers);
# - no accounting database (AccountingStorageType=accounting_storage/none, so `sacct` answers
#   "accounting storage is disabled"). Ended jobs stay queryable through `squeue --states=all`
#   and `scontrol show job` for MinJobAge (one hour) and are appended to the job-completion
#   file (JobCompType=jobcomp/filetxt, $STATE_DIR/jobcomp.txt). brainscope asks squeue first,
#   then sacct, then scontrol, so it works both here and on clusters with slurmdbd.
# State, logs and pid files live in $BRAINSCOPE_SLURM_DIR (default /var/tmp/brainscope-slurm).
set -euo pipefail

STATE_DIR=${BRAINSCOPE_SLURM_DIR:-/var/tmp/brainscope-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by brainscope scripts/slurm-local.sh"
MUNGE_SOCKET_DIR=/run/munge
WAIT_SECS=${BRAINSCOPE_SLURM_WAIT:-60}

die() { echo "slurm-local: $*" >&2; exit 1; }
log() { echo "slurm-local: $*"; }

need_root() {
  [ "$(id -u)" = 0 ] || die "run '$0 $1' as root (sudo): slurmctld, slurmd and munged run as root here"
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    && command -v munged >/dev/null; then
    return
  fi
  command -v apt-get >/dev/null || die "slurm-wlm and munge are missing and there is no apt-get: install Slurm (slurmctld, slurmd, client tools) and munge with your package manager"
  log "installing slurm-wlm and munge with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge >/dev/null
}

# pid from a pid file if that process is alive
live_pid() {
  local file=$1 pid
  [ -f "$file" ] || return 1
  pid=$(cat "$file" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile=/etc/munge/munge.key --force
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
  fi
  local owner=root
  id munge >/dev/null 2>&1 && owner=munge
  chown "$owner:" /etc/munge /etc/munge/munge.key
  chmod 700 /etc/munge
  chmod 400 /etc/munge/munge.key
  mkdir -p "$MUNGE_SOCKET_DIR" /var/lib/munge /var/log/munge
  chown "$owner:" "$MUNGE_SOCKET_DIR" /var/lib/munge /var/log/munge
  chmod 755 "$MUNGE_SOCKET_DIR"
  if live_pid "$STATE_DIR/munged.pid" >/dev/null; then
    return
  fi
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already running (not started by this script)"
    return
  fi
  log "starting munged"
  # munged writes its pid file as its own user (into its socket folder); keep a copy for `stop`.
  local own_pid=$MUNGE_SOCKET_DIR/brainscope-munged.pid
  rm -f "$own_pid"
  if [ "$owner" = munge ]; then
    runuser -u munge -- munged --pid-file="$own_pid" --force
  else
    munged --pid-file="$own_pid" --force
  fi
  for _ in $(seq 50); do [ -s "$own_pid" ] && break; sleep 0.1; done
  cp "$own_pid" "$STATE_DIR/munged.pid"
  munge -n | unmunge >/dev/null || die "munged does not answer; see /var/log/munge/munged.log"
}

write_conf() {
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    if grep -q "^SlurmctldHost" "$CONF"; then
      die "$CONF exists and was not written by this script; leaving it alone (move it away to let this script configure a local cluster)"
    fi
  fi
  local host node_line cpus mem
  host=$(hostname -s)
  # `slurmd -C` prints e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2
  # ThreadsPerCore=1 RealMemory=24105": keep CPUs and RealMemory.
  node_line=$(slurmd -C | head -n 1)
  cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node_line")
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")
  [ -n "$cpus" ] && [ -n "$mem" ] || die "cannot read CPUs/RealMemory from 'slurmd -C': $node_line"
  mkdir -p /etc/slurm "$STATE_DIR/state" "$STATE_DIR/spool"
  cat >"$CONF" <<CONF_EOF
$MARK (a single-node test cluster; rerun it to regenerate, 'stop' to shut down)
ClusterName=brainscope
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE_DIR/state
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$STATE_DIR/slurmctld.log
SlurmdLogFile=$STATE_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
# No slurmdbd: finished jobs stay visible to squeue/scontrol for MinJobAge seconds and are
# appended to the job-completion file.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE_DIR/jobcomp.txt
MinJobAge=3600
KillWait=30
InactiveLimit=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF_EOF
  log "wrote $CONF (node $host: $cpus CPUs, $mem MB)"
}

wait_idle() {
  local host state
  host=$(hostname -s)
  for _ in $(seq $((WAIT_SECS * 2))); do
    state=$(sinfo --noheader --nodes="$host" --format=%t 2>/dev/null | head -n 1 || true)
    case "$state" in
      idle|mix|alloc) log "node $host is $state"; return 0 ;;
      down*|drain*) scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.5
  done
  die "node $host not idle after ${WAIT_SECS} s (state '${state:-no answer}'); see $STATE_DIR/slurmctld.log and $STATE_DIR/slurmd.log"
}

start() {
  need_root start
  install_packages
  mkdir -p "$STATE_DIR"
  start_munge
  write_conf
  if ! live_pid "$STATE_DIR/slurmctld.pid" >/dev/null; then
    log "starting slurmctld"
    slurmctld -i
  fi
  if ! live_pid "$STATE_DIR/slurmd.pid" >/dev/null; then
    log "starting slurmd"
    slurmd
  fi
  wait_idle
  log "ready: try 'sbatch --wrap \"echo hi\"' then 'squeue'"
}

stop_one() {
  local name=$1 file=$STATE_DIR/$1.pid pid
  if pid=$(live_pid "$file"); then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$file" "$file.tmp"
}

stop() {
  need_root stop
  stop_one slurmd
  stop_one slurmctld
  stop_one munged
}

status() {
  local name pid rc=0
  for name in munged slurmctld slurmd; do
    if pid=$(live_pid "$STATE_DIR/$name.pid"); then
      echo "$name: running (pid $pid)"
    else
      echo "$name: not running"; rc=1
    fi
  done
  sinfo 2>&1 || rc=1
  return $rc
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Stop the daemons .ci/slurm/setup.sh started (by their pid files), in the
# reverse order. Safe to run when they are not running. Run as root.
set -euo pipefail

for pidfile in /run/slurm/slurmd.pid /run/slurm/slurmctld.pid /run/slurm/slurmdbd.pid; do
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "slurm-ci: stopping $(basename "$pidfile" .pid)" >&2
    kill "$(cat "$pidfile")"
  fi
done
/etc/init.d/mariadb stop >/dev/null 2>&1 || true
/etc/init.d/munge stop >/dev/null 2>&1 || true

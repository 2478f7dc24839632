#!/usr/bin/env bash
# Stop the daemons start-rgw.sh started in DIR (by the pid files they wrote there) and wait for them.
set -uo pipefail
dir="$(realpath -m "${1:?usage: stop-rgw.sh DIR}")"
pids=()
for pidfile in "$dir"/run/*.pid; do
  [[ -f "$pidfile" ]] || continue
  pid="$(cat "$pidfile")"
  # Only our own daemon: its command line names this cluster's config file.
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$dir/ceph.conf"; then
    kill "$pid" 2>/dev/null && pids+=("$pid")
  fi
done
for pid in "${pids[@]}"; do
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
done
exit 0

#!/usr/bin/env bash
# Stops the servers bootstrap.sh started (PIDs in $WORK/pids), and only those.
set -uo pipefail
: "${WORK:?WORK is required}"
[ -f "$WORK/pids" ] || exit 0
pids=$(cat "$WORK/pids")
for p in $pids; do kill "$p" 2>/dev/null; done
for _ in $(seq 1 50); do
  alive=0
  for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ "$alive" = 0 ] && break
  sleep 0.1
done
[ "$alive" = 1 ] && for p in $pids; do kill -0 "$p" 2>/dev/null && kill -9 "$p"; done
rm -f "$WORK/pids"

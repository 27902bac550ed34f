#!/usr/bin/env bash
# Stop the private redis-server that scripts/ensure-redis.sh started, if any.
set -u
pidfile=var/redis.pid
[ -f "$pidfile" ] || exit 0
pid=$(cat "$pidfile")
if kill -0 "$pid" 2>/dev/null; then
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
rm -f "$pidfile"

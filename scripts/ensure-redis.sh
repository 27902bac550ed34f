#!/usr/bin/env bash
# Make sure a Redis answers and print its URL on stdout.
#
#   scripts/ensure-redis.sh PYTHON [--need-binary]
#
# Uses $REDIS_URL (default redis://127.0.0.1:6379/0) when it answers. Otherwise starts a
# private redis-server on loopback (port $TRACE_PRIVATE_REDIS_PORT, default 6391) that keeps
# nothing on disk, records its pid in var/redis.pid (scripts/stop-redis.sh stops it) and
# prints that URL instead. Installs Debian's redis-server when the binary is missing: always
# with --need-binary (the test suite starts Redis servers of its own), else only when needed.
set -euo pipefail
python=${1:?usage: ensure-redis.sh PYTHON [--need-binary]}
need_binary=${2:-}
url=${REDIS_URL:-redis://127.0.0.1:6379/0}
mkdir -p var

answers() {
  "$python" - "$1" <<'PY' >/dev/null 2>&1
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1, socket_timeout=2).ping()
PY
}

install_redis() {
  command -v redis-server >/dev/null 2>&1 && return 0
  echo "ensure-redis: installing Debian's redis-server" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >&2
}

[ "$need_binary" = "--need-binary" ] && install_redis

if answers "$url"; then
  echo "$url"
  exit 0
fi

port=${TRACE_PRIVATE_REDIS_PORT:-6391}
private="redis://127.0.0.1:$port/0"
if ! answers "$private"; then
  install_redis
  echo "ensure-redis: no Redis at $url; starting a private one on 127.0.0.1:$port" >&2
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize yes --pidfile "$PWD/var/redis.pid" --logfile "$PWD/var/redis.log" --dir "$PWD/var" >&2
  for _ in $(seq 1 100); do
    answers "$private" && break
    sleep 0.1
  done
  answers "$private" || { echo "ensure-redis: private redis-server did not answer; see var/redis.log" >&2; exit 1; }
fi
echo "$private"

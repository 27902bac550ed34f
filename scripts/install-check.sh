#!/usr/bin/env bash
# A production install on a fresh machine, proven: `pip install .` (no extras) into a new
# virtualenv, then that install's `sanic-trace` builds a demo warehouse and serves it until
# /health answers 200, and stops cleanly on SIGTERM. Also: the tools say which extra they need.
#
#   scripts/install-check.sh            (make install-check; .ci/run runs it after make test)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/sanic-trace-install.XXXXXX")
server=""
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -KILL "$server" 2>/dev/null || true; fi
  scripts/stop-redis.sh >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { echo "install-check: $*" >&2; }

step "fresh virtualenv, pip install . (no extras)"
"$python" -m venv "$work/venv"
pip_log="$work/pip.log"
{ "$work/venv/bin/python" -m pip install -q --upgrade pip && "$work/venv/bin/python" -m pip install -q .; } \
  >"$pip_log" 2>&1 || { cat "$pip_log" >&2; exit 1; }
cli="$work/venv/bin/sanic-trace"

step "sanic-trace --help"
"$cli" --help >/dev/null
for tool in bench loadtest; do
  # A bounded run: without the extra the tool must refuse at once, not start working.
  if out=$(timeout 30 "$cli" "$tool" 2>&1); then
    echo "install-check: '$tool' ran without the tools extra: $out" >&2; exit 1
  fi
  case "$out" in
    *"pip install 'sanic-trace[tools]'"*) ;;
    *) echo "install-check: '$tool' did not name the extra to install: $out" >&2; exit 1 ;;
  esac
done

step "sanic-trace demo-db"
"$cli" demo-db "$work/var/warehouse.sqlite" --lots 2000 --quiet

url=$(scripts/ensure-redis.sh "$work/venv/bin/python")
port=$("$work/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
step "sanic-trace serve on 127.0.0.1:$port (Redis $url)"
REDIS_URL=$url TRACE_REDIS_PREFIX="installcheck$$" TRACE_DB_URL="sqlite:///$work/var/warehouse.sqlite" \
  "$cli" serve --host 127.0.0.1 --port "$port" >"$work/serve.log" 2>&1 &
server=$!

health() {
  "$work/venv/bin/python" - "$port" <<'PY'
import json, sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=5) as response:
        body = json.load(response)
        sys.exit(0 if response.status == 200 and body["status"] == "ok" else 1)
except (urllib.error.URLError, OSError, ValueError):
    sys.exit(1)
PY
}
deadline=$((SECONDS + 60))
until health; do
  if ! kill -0 "$server" 2>/dev/null; then
    echo "install-check: the server exited; its log:" >&2; cat "$work/serve.log" >&2; exit 1
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo "install-check: /health did not answer 200 within 60 s; the log:" >&2; cat "$work/serve.log" >&2; exit 1
  fi
  sleep 0.2
done
step "/health answered 200; stopping"
kill -TERM "$server"
deadline=$((SECONDS + 30))
while kill -0 "$server" 2>/dev/null; do
  if [ $SECONDS -ge $deadline ]; then
    echo "install-check: the server did not stop within 30 s of SIGTERM; the log:" >&2; cat "$work/serve.log" >&2
    exit 1
  fi
  sleep 0.1
done
server=""
"$work/venv/bin/python" - "$url" "installcheck$$" <<'PY'
import sys, redis
client = redis.Redis.from_url(sys.argv[1])
keys = list(client.scan_iter(match=f"{sys.argv[2]}:*"))
if keys:
    client.delete(*keys)
PY
step "ok"

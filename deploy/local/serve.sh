#!/usr/bin/env bash
# Set up this machine if needed, then run the service: the webhook receiver and one worker.
# Configuration comes from the environment or a `.env` file at the repository root (see README).
# Without REDIS_URL a local redis-server is started for the service's lifetime, with its data
# in var/redis (append-only file: queued tasks survive a restart of Redis or of this script).
#
# The worker (and that local Redis) are restarted whenever they exit, after 1 s, then 2, 4, ...
# up to 60 s while they keep failing at once; tasks a dead worker held are picked up again from
# Redis. The receiver exiting stops the whole service, with a message saying so.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
bash deploy/local/setup.sh
if [[ -f .env ]]; then set -a; source .env; set +a; fi

say() { echo "serve.sh: $*" >&2; }

supervise() {  # supervise NAME CMD...: run CMD, and again each time it exits
  local name=$1 delay=1 child status started
  shift
  trap 'kill -TERM $(jobs -p) 2>/dev/null; wait; exit 0' TERM  # the child, or the pause
  while true; do
    started=$SECONDS
    "$@" &
    child=$!
    say "$name started (pid $child)"
    status=0
    wait "$child" || status=$?
    ((SECONDS - started >= 60)) && delay=1  # it ran a while: the next failure is a new one
    say "$name exited with status $status; restarting it in $delay s"
    sleep "$delay" &
    wait $! || true
    delay=$((delay * 2 > 60 ? 60 : delay * 2))
  done
}

pids=()
stop() {
  trap - EXIT INT TERM
  ((${#pids[@]})) && kill -TERM "${pids[@]}" 2>/dev/null
  wait
}
trap stop EXIT
trap 'stop; exit 143' INT TERM

if [[ -z ${REDIS_URL:-} ]]; then
  mkdir -p var/redis
  REDIS_PORT=${REDIS_PORT:-6379}
  REDIS_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
  supervise redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir var/redis \
    --requirepass "$REDIS_PASSWORD" --appendonly yes --appendfsync everysec --save 60 1 \
    --logfile "" >>var/redis/redis.log &
  pids+=($!)
  export REDIS_URL="redis://:${REDIS_PASSWORD}@127.0.0.1:${REDIS_PORT}/0"
fi
if [[ -z ${APP_ID:-} || -z ${WEBHOOK_SECRET:-} || -z ${PRIVATE_KEY:-}${PRIVATE_KEY_PATH:-} ]]; then
  # Setup mode: the app registers the GitHub App from app.yml, saves it to .env and goes on as
  # the receiver in the same process; the worker starts once .env holds the App's id.
  .venv/bin/uvicorn app.main:app --host "${HOST:-0.0.0.0}" --port "${PORT:-3000}" &
  pids+=($!) app_pid=$!
  echo "setup mode: open ${PUBLIC_URL:-http://localhost:${PORT:-3000}}/ to register the GitHub App" >&2
  until grep -qs '^APP_ID=.' "${ENV_FILE:-.env}"; do kill -0 "$app_pid" || exit 1; sleep 1; done
  set -a; source "${ENV_FILE:-.env}"; set +a
fi
.venv/bin/python -c 'from app.settings import get_settings; get_settings()'  # fail fast, one line
supervise worker .venv/bin/python -m worker &
pids+=($!)
if [[ -z ${app_pid:-} ]]; then
  .venv/bin/uvicorn app.main:app --host "${HOST:-0.0.0.0}" --port "${PORT:-3000}" &
  app_pid=$!
  pids+=("$app_pid")
fi
app=$app_pid
say "webhook receiver started (pid $app)"
status=0
wait "$app" || status=$?
say "the webhook receiver (pid $app) exited with status $status: stopping the service" \
  "(its log is above; run this script again to restart)"
exit $((status == 0 ? 1 : status))

#!/usr/bin/env bash
# Set up this machine if needed, then run the service: the webhook receiver and one worker.
# Configuration comes from the environment or a `.env` file at the repository root (see README).
# Without REDIS_URL a local redis-server is started for the service's lifetime.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
bash deploy/local/setup.sh
if [[ -f .env ]]; then set -a; source .env; set +a; fi

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
if [[ -z ${REDIS_URL:-} ]]; then
  mkdir -p var/redis
  REDIS_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
  redis-server --bind 127.0.0.1 --port 6379 --dir var/redis --requirepass "$REDIS_PASSWORD" \
    --save 60 1 --logfile "" >var/redis/redis.log &
  pids+=($!)
  export REDIS_URL="redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0"
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
.venv/bin/arq worker.main.WorkerSettings &
pids+=($!)
if [[ -z ${app_pid:-} ]]; then
  .venv/bin/uvicorn app.main:app --host "${HOST:-0.0.0.0}" --port "${PORT:-3000}" &
  pids+=($!)
fi
wait -n

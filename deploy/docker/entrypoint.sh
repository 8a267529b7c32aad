#!/bin/sh
# The image's entrypoint: `app` (the webhook receiver, in setup mode until the GitHub App
# exists), `worker`, or any other command. ENV_FILE, which setup mode writes, is read first
# when it exists; the worker waits for it, since without the App it has nothing to do.
set -eu

load() {
  if [ -f "$ENV_FILE" ]; then set -a; . "$ENV_FILE"; set +a; fi
  if [ -z "${REDIS_URL:-}" ] && [ -n "${REDIS_PASSWORD:-}" ]; then
    password=$(python3 -c 'import os, urllib.parse; print(urllib.parse.quote(os.environ["REDIS_PASSWORD"], safe=""))')
    export REDIS_URL="redis://:${password}@${REDIS_HOST:-redis}:${REDIS_PORT:-6379}/0"
  fi
}

case "${1:-app}" in
  app)
    load
    exec uvicorn app.main:app --host 0.0.0.0 --port "$PORT"
    ;;
  worker)
    until [ -n "${APP_ID:-}" ] || grep -qs '^APP_ID=.' "$ENV_FILE"; do
      echo "waiting for the GitHub App: register it on the app's setup page (or set APP_ID)" >&2
      sleep 5
    done
    load
    exec python -m worker
    ;;
  *) exec "$@" ;;
esac

#!/usr/bin/env bash
# Prepare this machine to run (and with `--test`, to test) the app: system packages, the Python
# environment, a Docker engine and the sandbox image. Idempotent: a second run takes seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
TESTING=0
[[ ${1:-} == --test ]] && TESTING=1

log() { printf '\033[1m>>> %s\033[0m\n' "$*"; }
timed() {  # timed NAME CMD...: run CMD and say how long it took
  local name=$1 start=$SECONDS
  shift
  "$@"
  log "$name: $((SECONDS - start)) s"
}

packages() {
  local missing=() bin pkg
  for pair in redis-server:redis-server dockerd:docker.io debootstrap:debootstrap \
    iptables:iptables git:git node:nodejs npm:npm jq:jq runsc:runsc \
    docker-compose:docker-compose; do
    bin=${pair%%:*} pkg=${pair#*:}
    command -v "$bin" >/dev/null || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  if [[ $EUID -ne 0 ]]; then
    echo "missing system packages: ${missing[*]} (install them, or run this as root)" >&2
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_env() {
  local stamp=.venv/.installed extras=""
  ((TESTING)) && extras="[dev]"
  local want
  want="$(sha256sum pyproject.toml | cut -c1-16)$extras"
  [[ -f $stamp && $(cat "$stamp") == "$want" ]] && return 0
  [[ -x .venv/bin/python ]] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -e ".$extras"
  echo "$want" >"$stamp"
}

fixtures() {
  [[ -d tests/fakes/node_modules/@octokit/openapi ]] && return 0
  (cd tests/fakes && npm install --no-audit --no-fund --loglevel=error)
}

timed "system packages" packages
timed "python environment" python_env
((TESTING)) && timed "github fixtures (npm)" fixtures
timed "docker engine" bash deploy/docker/ensure-dockerd.sh
timed "sandbox network" bash deploy/docker/sandbox-network.sh
timed "sandbox image" bash deploy/sandbox/build-local.sh

#!/usr/bin/env bash
# Build the images of deploy/compose.yaml from deploy/Dockerfile: codex-app:local (app and
# worker), codex-redis:local and codex-sandbox-network:local, and the sandbox image when it is
# missing. BASE (default python:3.11-slim) is used when the engine has it or can pull it;
# otherwise a local base, codex-python:bookworm, is made from a debootstrapped Debian rootfs
# (python3 and venv included), so no registry is needed. The Dockerfiles' apt-get and pip
# steps reach the Debian mirror and the package index from Docker's default bridge.
# Needs root, debootstrap (for the local base) and a running Docker engine.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BASE=${BASE:-python:3.11-slim}
LOCAL_BASE=codex-python:bookworm
PACKAGES=python3,python3-venv,ca-certificates

log() { printf '>>> %s\n' "$*"; }
have() { docker image inspect "$1" >/dev/null 2>&1; }

local_base() {  # a debootstrapped bookworm with python3, imported as $LOCAL_BASE
  local want label rootfs mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
  want=$(printf '%s %s' "$PACKAGES" "$mirror" | sha256sum | cut -c1-16)
  label=$(docker image inspect -f '{{index .Config.Labels "codex.base-hash"}}' "$LOCAL_BASE" 2>/dev/null || true)
  [[ $label == "$want" ]] && return 0
  rootfs=$(mktemp -d /tmp/codex-python-rootfs.XXXXXX)
  chmod 755 "$rootfs"
  trap 'rm -rf --one-file-system "$rootfs"' RETURN
  log "making $LOCAL_BASE from $mirror (debootstrap)"
  debootstrap --variant=minbase --include="$PACKAGES" \
    --cache-dir="${DEBOOTSTRAP_CACHE:-/var/cache/codex-sandbox-debs}" \
    bookworm "$rootfs" "$mirror" >/tmp/codex-python-debootstrap.log 2>&1 ||
    { tail -30 /tmp/codex-python-debootstrap.log; return 1; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar -C "$rootfs" --numeric-owner -c . |
    docker import --change "LABEL codex.base-hash=$want" --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["python3"]' - "$LOCAL_BASE" >/dev/null
}

if have "$BASE"; then
  log "base image: $BASE (present)"
elif timeout "${PULL_TIMEOUT:-60}" docker pull -q "$BASE" >/dev/null 2>&1; then
  log "base image: $BASE (pulled)"
else
  local_base
  log "base image: $LOCAL_BASE (made locally: $BASE could not be pulled)"
  BASE=$LOCAL_BASE
fi

cd "$ROOT"
# The host's own added CAs (Debian's place for them) are trusted inside the image as well.
rm -rf deploy/docker/ca && mkdir -p deploy/docker/ca && touch deploy/docker/ca/.keep
find "${CA_CERTS_DIR:-/usr/local/share/ca-certificates}" -maxdepth 1 -name '*.crt' \
  -exec cp {} deploy/docker/ca/ \; 2>/dev/null || true
for target in app redis sandbox-network; do
  start=$SECONDS
  DOCKER_BUILDKIT=0 docker build -q -f deploy/Dockerfile --build-arg BASE="$BASE" \
    --target "$target" -t "codex-$target:local" . >/dev/null
  log "codex-$target:local built in $((SECONDS - start)) s"
done
have "${SANDBOX_IMAGE:-codex-sandbox:local}" || bash deploy/sandbox/build-local.sh

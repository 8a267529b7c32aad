#!/usr/bin/env bash
# Build the sandbox image without registry access (CI, air-gapped hosts):
# debootstrap a bookworm rootfs from this machine's apt mirror, import it,
# then apply Dockerfile.local. Reruns with unchanged deploy/sandbox/ and an unchanged host
# trust store are no-ops. Needs root, debootstrap and a running Docker engine.
#
# The image trusts what this host trusts: where outbound TLS is re-signed by a proxy (cloud
# sandboxes, office networks), the re-signing CA is in the host's bundle and not in Debian's, and
# without it every `pip install` in the setup phase fails verification. The host's bundle
# (SANDBOX_CA_BUNDLE, default /etc/ssl/certs/ca-certificates.crt) replaces the image's, and the
# host's local CAs (/usr/local/share/ca-certificates) go in too, so that an update-ca-certificates
# inside the sandbox keeps them.
set -euo pipefail

IMAGE=${SANDBOX_IMAGE:-codex-sandbox:local}
ROOTFS_IMAGE=codex-rootfs:bookworm
SUITE=bookworm
PACKAGES=git,ca-certificates,python3,python3-pip,python3-venv,coreutils,patch,procps
HOST_CA=${SANDBOX_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
LOCAL_CAS=/usr/local/share/ca-certificates
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

build_hash() {
  {
    (cd "$HERE" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    cat "$HOST_CA"
    if [[ -d $LOCAL_CAS ]]; then
      find "$LOCAL_CAS" -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
    fi
  } | sha256sum | cut -c1-16
}
image_hash() {
  docker image inspect -f '{{index .Config.Labels "codex.build-hash"}}' "$IMAGE" 2>/dev/null || true
}

HASH=$(build_hash)
[[ "$(image_hash)" == "$HASH" ]] && { echo "$IMAGE is up to date ($HASH)"; exit 0; }

# Serialize concurrent builds (parallel CI jobs), then check again.
exec 9>/tmp/codex-sandbox-build.lock
flock 9
[[ "$(image_hash)" == "$HASH" ]] && { echo "$IMAGE is up to date ($HASH)"; exit 0; }

mirror() {
  local uri=""
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
    # "deb [opts] URI suite ..." -> URI
    uri=$(sed -E 's/\[[^]]*\]//' /etc/apt/sources.list |
      awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}')
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

step() {  # step NAME CMD... : run CMD and print how long it took
  local name=$1 t0=${EPOCHREALTIME/./}
  shift
  "$@"
  local us=$((${EPOCHREALTIME/./} - t0))
  printf '>>> %s: %d.%01ds\n' "$name" $((us / 1000000)) $((us % 1000000 / 100000))
}

ROOTFS=$(mktemp -d /tmp/codex-rootfs.XXXXXX)
chmod 755 "$ROOTFS"  # becomes the image's /: mktemp's 0700 locks uid 1000 out (seen with vfs)
trap 'rm -rf --one-file-system "$ROOTFS"' EXIT
MIRROR=$(mirror)
echo "building $IMAGE ($HASH) from $MIRROR"

# Downloaded .debs are kept between builds to make rebuilds cheaper.
CACHE=${DEBOOTSTRAP_CACHE:-/var/cache/codex-sandbox-debs}
mkdir -p "$CACHE"

trim_rootfs() {
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
    "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/log/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/usr/share/locale/* "$ROOTFS"/usr/share/lintian
}
host_trust() {
  install -m 644 "$HOST_CA" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
  if [[ -d $LOCAL_CAS ]]; then
    cp -rL --no-preserve=mode,ownership "$LOCAL_CAS/." "$ROOTFS/usr/local/share/ca-certificates/"
  fi
}
import_rootfs() {
  tar -C "$ROOTFS" --numeric-owner -c . | docker import - "$ROOTFS_IMAGE" >/dev/null
}

run_debootstrap() {
  local log=/tmp/codex-debootstrap.log
  debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$CACHE" \
    "$SUITE" "$ROOTFS" "$MIRROR" >"$log" 2>&1 || { tail -30 "$log"; return 1; }
}

step debootstrap run_debootstrap
step trim trim_rootfs
step "host trust store" host_trust
OLD=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
step import import_rootfs
step build env DOCKER_BUILDKIT=0 docker build -q --network none --build-arg BUILD_HASH="$HASH" \
  -f "$HERE/Dockerfile.local" -t "$IMAGE" "$HERE"
# Drop the superseded image (and its untagged parents); skipped while containers use it.
if [[ -n "$OLD" && "$OLD" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]]; then
  docker rmi "$OLD" >/dev/null 2>&1 || true
fi
docker image ls "$IMAGE"

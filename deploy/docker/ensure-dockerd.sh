#!/usr/bin/env bash
# Make sure a Docker engine answers; start dockerd by hand if not (hosts and CI
# machines without systemd). Idempotent. Run as root.
#   DOCKER_STORAGE_DRIVER  force a storage driver (default: probed)
set -euo pipefail

CONF=/etc/docker/daemon.json
LOG=/var/log/dockerd.log

# Register gVisor. Its netstack is off: runsc containers get no network at all. A running
# dockerd reloads its runtimes on SIGHUP.
if [[ $EUID -eq 0 ]] && RUNSC=$(command -v runsc) && ! grep -q '"runsc"' "$CONF" 2>/dev/null; then
  want=$(printf '{"runtimes":{"runsc":{"path":"%s","runtimeArgs":["--network=none","--platform=ptrace"]}}}' "$RUNSC")
  if [[ ! -s $CONF ]]; then
    mkdir -p /etc/docker
    echo "$want" >"$CONF"
  else
    command -v jq >/dev/null || { echo "ensure-dockerd: need jq to add runsc to $CONF" >&2; exit 1; }
    jq --argjson w "$want" '. * $w' "$CONF" >"$CONF.tmp" && mv "$CONF.tmp" "$CONF"
  fi
  pkill -HUP -x dockerd && echo "ensure-dockerd: registered runsc" || true
fi

docker info >/dev/null 2>&1 && exit 0
[[ $EUID -eq 0 ]] || { echo "ensure-dockerd: must run as root" >&2; exit 1; }

# overlay2 needs a working overlay mount on the data root's filesystem (fails
# e.g. when that is itself overlayfs); otherwise fall back to fuse-overlayfs, then vfs.
probe_storage_driver() {
  local root d driver=vfs
  root=$(jq -r '."data-root" // empty' "$CONF" 2>/dev/null || true)
  root=${root:-/var/lib/docker}
  mkdir -p "$root"
  d=$(mktemp -d "$root/.overlay-probe.XXXXXX")
  mkdir "$d/l" "$d/u" "$d/w" "$d/m"
  if mount -t overlay overlay -o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w" "$d/m" 2>/dev/null; then
    umount "$d/m"
    driver=overlay2
  elif command -v fuse-overlayfs >/dev/null && [[ -e /dev/fuse ]]; then
    driver=fuse-overlayfs
  fi
  rm -rf "$d"
  echo "$driver"
}

if ! pgrep -x dockerd >/dev/null; then  # one may be starting already: then just wait
  args=()
  if ! grep -q '"storage-driver"' "$CONF" 2>/dev/null; then  # flag + config key = dockerd error
    args+=(--storage-driver "${DOCKER_STORAGE_DRIVER:-$(probe_storage_driver)}")
  fi
  echo "ensure-dockerd: starting dockerd ${args[*]} (log: $LOG)"
  setsid nohup dockerd "${args[@]}" >>"$LOG" 2>&1 </dev/null &
fi

deadline=$((SECONDS + 60))
until docker info >/dev/null 2>&1; do
  if ((SECONDS >= deadline)); then
    echo "ensure-dockerd: dockerd did not answer within 60 s; last log lines:" >&2
    tail -n 30 "$LOG" >&2
    exit 1
  fi
  sleep 0.5
done
echo "ensure-dockerd: docker is up"

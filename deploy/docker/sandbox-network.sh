#!/usr/bin/env bash
# The network sandboxes use during their setup phase, and the firewall that keeps it away from
# this host and its networks: no traffic to the host itself (services bound to 0.0.0.0, the
# Docker API, Redis), none to private, link-local (169.254.169.254), CGNAT or other sandboxes;
# the public internet stays reachable for package installs. Idempotent; run as root on the
# Docker host. The agent phase is disconnected from this network altogether.
set -euo pipefail

NETWORK=${SANDBOX_NETWORK:-codex-setup}
BRIDGE=${NETWORK}0
BLOCKED=(10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 169.254.0.0/16 100.64.0.0/10 127.0.0.0/8)

if ! docker network inspect "$NETWORK" >/dev/null 2>&1; then
  docker network create --driver bridge --label codex.sandbox-network=1 \
    -o "com.docker.network.bridge.name=$BRIDGE" \
    -o com.docker.network.bridge.enable_icc=false "$NETWORK" >/dev/null
fi

rule() {  # rule CHAIN ARGS...: insert once
  local chain=$1
  shift
  iptables -C "$chain" "$@" 2>/dev/null || iptables -I "$chain" "$@"
}
rule INPUT -i "$BRIDGE" -j DROP
iptables -N DOCKER-USER 2>/dev/null || true
for range in "${BLOCKED[@]}"; do
  rule DOCKER-USER -i "$BRIDGE" -d "$range" -j DROP
done
rule DOCKER-USER -i "$BRIDGE" -o "$BRIDGE" -j DROP
echo "sandbox network $NETWORK ($BRIDGE) is firewalled from this host and private ranges"

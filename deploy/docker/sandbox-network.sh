#!/usr/bin/env bash
# The two networks sandboxes use, and the firewall that keeps both away from this host:
# - codex-setup, for the setup phase: the public internet stays reachable for package
#   installs, but nothing on the host itself (services bound to 0.0.0.0, the Docker API,
#   Redis), nor private, link-local (169.254.169.254), CGNAT ranges or other sandboxes.
# - codex-egress, for the agent phase with `network.agent: allowlist | on`: internal (no route
#   out at all); the one address a sandbox reaches is the worker's egress proxy on the
#   network's gateway, on a port in EGRESS_PORTS (one port per worker process on this host).
#   With `off` the agent phase has no network at all.
# Idempotent; run as root on the Docker host.
set -euo pipefail

NETWORK=${SANDBOX_NETWORK:-codex-setup}
BRIDGE=${NETWORK}0
EGRESS=${EGRESS_NETWORK:-codex-egress}
EGRESS_BRIDGE=${EGRESS}0
EGRESS_PORTS=${EGRESS_PORTS:-3128:3135}
BLOCKED=(10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 169.254.0.0/16 100.64.0.0/10 127.0.0.0/8)

network() {  # network NAME BRIDGE [--internal]
  docker network inspect "$1" >/dev/null 2>&1 && return 0
  docker network create --driver bridge --label codex.sandbox-network=1 ${3:-} \
    -o "com.docker.network.bridge.name=$2" \
    -o com.docker.network.bridge.enable_icc=false "$1" >/dev/null
}
network "$NETWORK" "$BRIDGE"
network "$EGRESS" "$EGRESS_BRIDGE" --internal
GATEWAY=$(docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' "$EGRESS")

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
# The egress network: nothing forwarded, nothing to the host but the proxy (rules are
# inserted at the top, so the ACCEPT lands above the DROP).
rule DOCKER-USER -i "$EGRESS_BRIDGE" -j DROP
rule INPUT -i "$EGRESS_BRIDGE" -j DROP
rule INPUT -i "$EGRESS_BRIDGE" -p tcp -d "$GATEWAY" --dport "$EGRESS_PORTS" -j ACCEPT
echo "sandbox network $NETWORK ($BRIDGE) is firewalled from this host and private ranges"
echo "egress network $EGRESS ($EGRESS_BRIDGE) reaches only the proxy at $GATEWAY, ports $EGRESS_PORTS"

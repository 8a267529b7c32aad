#!/usr/bin/env bash
# The two networks sandboxes use, and the firewall that keeps both away from this host:
# - codex-setup, for the setup phase: the public internet stays reachable for package
#   installs, and so do this host's DNS resolvers on port 53 (cloud and office resolvers sit in
#   private ranges), but nothing on the host itself (services bound to 0.0.0.0, the Docker API,
#   Redis), nor any other private, link-local (169.254.169.254), CGNAT address or sandbox.
# - codex-egress, for the agent phase with `network.agent: allowlist | on`: internal (no route
#   out at all); the one address a sandbox reaches is the worker's egress proxy on the
#   network's gateway, on a port in EGRESS_PORTS (one port per worker process on this host).
#   With `off` the agent phase has no network at all.
# - IPv6: neither network has any; ip6tables drops whatever a sandbox would send over it anyway
#   (a container with IPv6 on reaches the host's services on `::` through the bridge's
#   link-local address, and iptables rules do not cover IPv6).
#
# Resolvers: Docker's embedded DNS (127.0.0.11 in each container) forwards a query from the
# container's own network namespace, so it leaves through the bridge like any packet and meets
# the rules below (seen on Debian's Docker 20.10: the forwarded query crosses FORWARD from the
# bridge, nothing from the host's namespace). It forwards to the daemon's `dns` setting, or to
# the host's resolvers without loopback ones (systemd-resolved's upstream file when the host
# uses its 127.0.0.53 stub). SANDBOX_DNS (comma-separated IPv4 addresses) overrides what is
# read here; set it when the daemon's resolvers come from somewhere else.
#
# The rules live in chains of their own (CODEX-SANDBOX-FORWARD, CODEX-SANDBOX-INPUT), replaced
# as a whole and atomically on every run: idempotent, and a changed resolver replaces the old
# one. Run as root on the Docker host.
set -euo pipefail

NETWORK=${SANDBOX_NETWORK:-codex-setup}
BRIDGE=${NETWORK}0
EGRESS=${EGRESS_NETWORK:-codex-egress}
EGRESS_BRIDGE=${EGRESS}0
EGRESS_PORTS=${EGRESS_PORTS:-3128:3135}
BLOCKED=(10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 169.254.0.0/16 100.64.0.0/10 127.0.0.0/8)
FORWARD_CHAIN=CODEX-SANDBOX-FORWARD
INPUT_CHAIN=CODEX-SANDBOX-INPUT

network() {  # network NAME BRIDGE [--internal]
  docker network inspect "$1" >/dev/null 2>&1 && return 0
  docker network create --driver bridge --label codex.sandbox-network=1 ${3:-} \
    -o "com.docker.network.bridge.name=$2" \
    -o com.docker.network.bridge.enable_icc=false "$1" >/dev/null
}
network "$NETWORK" "$BRIDGE"
network "$EGRESS" "$EGRESS_BRIDGE" --internal
GATEWAY=$(docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' "$EGRESS")

resolvers() {  # the IPv4 resolvers Docker's embedded DNS forwards to, one a line
  if [[ -n ${SANDBOX_DNS:-} ]]; then
    tr ', ' '\n\n' <<<"$SANDBOX_DNS"
  elif [[ -f /etc/docker/daemon.json ]] && jq -e '.dns | length > 0' /etc/docker/daemon.json >/dev/null 2>&1; then
    jq -r '.dns[]' /etc/docker/daemon.json
  else
    local file=/etc/resolv.conf
    [[ -f /run/systemd/resolve/resolv.conf ]] && file=/run/systemd/resolve/resolv.conf
    awk '$1 == "nameserver" {print $2}' "$file"
  fi | grep -E '^[0-9]{1,3}(\.[0-9]{1,3}){3}$' | grep -v '^127\.' || true
}
mapfile -t RESOLVERS < <(resolvers)

forward_rules() {  # traffic the sandboxes send through this host
  echo "-A $FORWARD_CHAIN -i $BRIDGE -o $BRIDGE -j DROP"
  for resolver in "${RESOLVERS[@]}"; do
    for proto in udp tcp; do
      echo "-A $FORWARD_CHAIN -i $BRIDGE -d $resolver/32 -p $proto --dport 53 -j RETURN"
    done
  done
  for range in "${BLOCKED[@]}"; do
    echo "-A $FORWARD_CHAIN -i $BRIDGE -d $range -j DROP"
  done
  echo "-A $FORWARD_CHAIN -i $EGRESS_BRIDGE -j DROP"
}
input_rules() {  # traffic the sandboxes send to this host itself
  echo "-A $INPUT_CHAIN -i $EGRESS_BRIDGE -d $GATEWAY/32 -p tcp --dport $EGRESS_PORTS -j ACCEPT"
  echo "-A $INPUT_CHAIN -i $EGRESS_BRIDGE -j DROP"
  echo "-A $INPUT_CHAIN -i $BRIDGE -j DROP"
}
replace() {  # replace RESTORE-COMMAND CHAIN RULES-FUNCTION: the chain's rules, all at once
  printf '*filter\n:%s - [0:0]\n%s\nCOMMIT\n' "$2" "$($3)" | "$1" --noflush
}
jump() {  # jump IPTABLES PARENT CHAIN: first rule of PARENT, once
  "$1" -C "$2" -j "$3" 2>/dev/null || "$1" -I "$2" 1 -j "$3"
}

iptables -N DOCKER-USER 2>/dev/null || true
replace iptables-restore "$FORWARD_CHAIN" forward_rules
replace iptables-restore "$INPUT_CHAIN" input_rules
jump iptables DOCKER-USER "$FORWARD_CHAIN"
jump iptables INPUT "$INPUT_CHAIN"

# Rules of earlier versions of this script, straight in DOCKER-USER and INPUT: now in the chains.
legacy() {  # legacy CHAIN ARGS...: delete every copy
  while iptables -D "$@" 2>/dev/null; do :; done
}
for range in "${BLOCKED[@]}"; do
  legacy DOCKER-USER -i "$BRIDGE" -d "$range" -j DROP
done
legacy DOCKER-USER -i "$BRIDGE" -o "$BRIDGE" -j DROP
legacy DOCKER-USER -i "$EGRESS_BRIDGE" -j DROP
legacy INPUT -i "$BRIDGE" -j DROP
legacy INPUT -i "$EGRESS_BRIDGE" -j DROP
legacy INPUT -i "$EGRESS_BRIDGE" -p tcp -d "$GATEWAY" --dport "$EGRESS_PORTS" -j ACCEPT

ipv6_rules() {  # no sandbox network has IPv6: nothing over it, to the host or through it
  for bridge in "$BRIDGE" "$EGRESS_BRIDGE"; do
    echo "-A $1 -i $bridge -j DROP"
  done
}
if ip6tables -S INPUT >/dev/null 2>&1; then
  ipv6_forward() { ipv6_rules "$FORWARD_CHAIN"; }
  ipv6_input() { ipv6_rules "$INPUT_CHAIN"; }
  replace ip6tables-restore "$FORWARD_CHAIN" ipv6_forward
  replace ip6tables-restore "$INPUT_CHAIN" ipv6_input
  jump ip6tables FORWARD "$FORWARD_CHAIN"
  jump ip6tables INPUT "$INPUT_CHAIN"
  ipv6="IPv6 dropped"
else
  ipv6="no IPv6 on this host"
fi

dns=${RESOLVERS[*]:-none (Docker then uses public resolvers)}
echo "sandbox network $NETWORK ($BRIDGE) is firewalled from this host and private ranges; DNS: ${dns// /, }"
echo "egress network $EGRESS ($EGRESS_BRIDGE) reaches only the proxy at $GATEWAY, ports $EGRESS_PORTS"
echo "both: $ipv6"

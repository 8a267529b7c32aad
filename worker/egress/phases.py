"""Which Docker network each phase's container starts on: pure decisions from facts gathered by
the callers (`worker/setup.py`, `worker/attempt.py`).

- setup: the setup network (`SANDBOX_NETWORK`: the internet and DNS, nothing private), unless
  the server has none configured, runs gVisor, lacks the network, or the firewall self-test
  refused it;
- agent and validation: the egress network in `allowlist` and `on` modes, no network in `off`;
  a cached environment's container starts on the setup network instead, because maintenance
  runs in it first (the agent phase's network replaces it before the agent starts).
"""

from __future__ import annotations

from dataclasses import dataclass

RUNSC = "runsc"


@dataclass(frozen=True)
class PhaseNetwork:
    network: str | None
    """The Docker network the phase's container starts on; None: no network at all."""
    note: str = ""
    """Why the phase runs without the network it would have had, for the work log."""
    refused: str = ""
    """Why the phase may not run at all: the task fails saying so."""


def setup_phase(
    configured: str | None, runtime: str | None, exists: bool, problem: str | None
) -> PhaseNetwork:
    """`configured`: `SANDBOX_NETWORK`; `exists`: the engine has it; `problem`: the self-test's
    refusal of the setup network (None: it passed)."""
    if not configured:
        return PhaseNetwork(None)
    if runtime == RUNSC:
        return PhaseNetwork(None, "setup ran without network: gVisor (runsc) sandboxes have none")
    if not exists:
        return PhaseNetwork(None, f"setup ran without network: no Docker network {configured!r}")
    if problem:
        return PhaseNetwork(None, refused=problem)
    return PhaseNetwork(configured)


def agent_phase(
    mode: str,
    runtime: str | None,
    problem: str | None,
    egress_network: str,
    *,
    warm: bool,
    setup_network: str | None,
) -> PhaseNetwork:
    """The agent's (and the validation's) container under `network.agent` `mode`. `problem`:
    the self-test's refusal of `mode`; `warm`: the environment came from the cache, so
    maintenance runs first on `setup_network` (what the setup phase got)."""
    if runtime == RUNSC and mode != "off":
        return PhaseNetwork(None, refused=(
            "this server runs sandboxes under gVisor (`SANDBOX_RUNTIME=runsc`), which has no "
            "network: use `network.agent: off`, or `runtime: runc`"
        ))  # fmt: skip
    if problem:
        return PhaseNetwork(None, refused=problem)
    if warm:
        return PhaseNetwork(setup_network)
    return PhaseNetwork(egress_network if mode != "off" else None)

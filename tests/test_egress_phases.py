"""Which network each phase's container starts on (`worker/egress/phases.py`), as plain data."""

from __future__ import annotations

import pytest

from worker.egress.phases import PhaseNetwork, agent_phase, setup_phase

EGRESS = "codex-egress"
SETUP = "codex-setup"


def test_setup_gets_the_setup_network_when_the_self_test_passed() -> None:
    assert setup_phase(SETUP, "runc", True, None) == PhaseNetwork(SETUP)


def test_setup_without_a_configured_network_runs_without_one_and_says_nothing() -> None:
    assert setup_phase(None, None, False, None) == PhaseNetwork(None)


@pytest.mark.parametrize(
    ("runtime", "exists", "said"),
    [("runsc", True, "gVisor (runsc) sandboxes have none"), (None, False, "no Docker network")],
)
def test_setup_runs_without_network_and_the_work_log_says_why(
    runtime: str | None, exists: bool, said: str
) -> None:
    phase = setup_phase(SETUP, runtime, exists, None)
    assert phase.network is None and not phase.refused
    assert said in phase.note


def test_setup_on_a_network_the_self_test_refused_does_not_run() -> None:
    phase = setup_phase(SETUP, None, True, "the setup network reaches the host")
    assert phase == PhaseNetwork(None, refused="the setup network reaches the host")


@pytest.mark.parametrize(
    ("mode", "network"), [("allowlist", EGRESS), ("on", EGRESS), ("off", None)]
)
def test_the_agent_starts_on_the_egress_network_unless_off(mode: str, network: str | None) -> None:
    assert agent_phase(mode, "runc", None, EGRESS, warm=False, setup_network=SETUP) == (
        PhaseNetwork(network)
    )


@pytest.mark.parametrize("mode", ["allowlist", "on", "off"])
def test_a_cached_environment_starts_on_the_setup_network_for_maintenance(mode: str) -> None:
    assert agent_phase(mode, None, None, EGRESS, warm=True, setup_network=SETUP).network == SETUP
    assert agent_phase(mode, None, None, EGRESS, warm=True, setup_network=None).network is None


def test_gvisor_refuses_every_network_mode_but_off() -> None:
    refused = agent_phase("allowlist", "runsc", None, EGRESS, warm=False, setup_network=None)
    assert refused.network is None and "network.agent: off" in refused.refused
    assert agent_phase("off", "runsc", None, EGRESS, warm=False, setup_network=None) == (
        PhaseNetwork(None)
    )


def test_a_mode_the_self_test_refused_fails_even_from_a_cached_environment() -> None:
    phase = agent_phase("on", None, "the egress network reaches Redis", EGRESS, warm=True,
                        setup_network=SETUP)  # fmt: skip
    assert phase == PhaseNetwork(None, refused="the egress network reaches Redis")

"""The network self-test's decisions, with plain data: which Docker engines have
CVE-2024-29018, and what each probe finding means for the network modes. The probes themselves
run against real containers in tests/test_network.py."""

from __future__ import annotations

import pytest

from worker.egress.probe import Findings
from worker.egress.verdict import Plan, engine_affected, judge

FIXED = "26.1.4"
PLAN = Plan(
    public="index.example", public_address="198.51.100.7", setup_gateway="172.18.0.1",
    egress_gateway="172.19.0.1", listener=40000, redis=6379, proxy=3128,
    resolvers=("10.255.255.53",),
)  # fmt: skip
GOOD_SETUP = Findings(
    {"index.example": ["198.51.100.7"]},
    {"public": "open", "host": "blocked", "redis": "blocked", "metadata": "blocked",
     "resolver 10.255.255.53:443": "blocked"},
)  # fmt: skip
GOOD_EGRESS = Findings(
    {"index.example": []},
    {"proxy": "open", "public": "blocked", "host": "blocked", "redis": "blocked",
     "metadata": "blocked"},
)  # fmt: skip


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("20.10.24+dfsg1", True),  # Debian 12's Docker package
        ("23.0.10", True),
        ("23.0.11", False),
        ("24.0.9", True),
        ("25.0.3", True),
        ("25.0.4", False),
        ("26.0.0", False),
        ("27.5.1", False),
        ("v28.0.1", False),
        ("master-dockerproject-2024", True),  # unreadable: assume the worst
    ],
)
def test_engines_with_cve_2024_29018_are_told_apart(version: str, affected: bool) -> None:
    assert engine_affected(version) is affected


def test_a_firewalled_worker_on_a_fixed_engine_refuses_nothing() -> None:
    verdict = judge(PLAN, GOOD_SETUP, GOOD_EGRESS, FIXED, allow_vulnerable=False)
    assert verdict.setup is verdict.egress is None and verdict.warnings == ()


def test_an_affected_engine_refuses_allowlist_and_on_unless_the_operator_allows_it() -> None:
    verdict = judge(PLAN, GOOD_SETUP, GOOD_EGRESS, "20.10.24+dfsg1", allow_vulnerable=False)
    assert verdict.setup is None, "the CVE concerns internal networks: setup's is not one"
    assert verdict.egress is not None
    assert verdict.egress.startswith("network for allowlist/on is off on this worker: ")
    assert "CVE-2024-29018" in verdict.egress and "ALLOW_VULNERABLE_ENGINE=true" in verdict.egress
    allowed = judge(PLAN, GOOD_SETUP, GOOD_EGRESS, "20.10.24+dfsg1", allow_vulnerable=True)
    assert allowed.egress is None


@pytest.mark.parametrize("label", ["host", "redis", "metadata", "resolver 10.255.255.53:443"])
def test_setup_that_reaches_the_host_or_a_private_address_is_refused(label: str) -> None:
    found = Findings(GOOD_SETUP.resolved, GOOD_SETUP.connected | {label: "refused"})
    verdict = judge(PLAN, found, GOOD_EGRESS, FIXED, allow_vulnerable=False)
    assert verdict.setup is not None and verdict.egress is None
    assert verdict.setup.startswith("network for setup is off on this worker: ")
    assert "run deploy/docker/sandbox-network.sh as root" in verdict.setup


@pytest.mark.parametrize(
    ("resolved", "connected", "reason"),
    [
        ({}, {"host": "open"}, "reached a service on this host"),
        ({}, {"public": "open"}, "reached an address other than the proxy"),
        ({"index.example": ["198.51.100.7"]}, {}, "resolved index.example"),
        ({}, {"proxy": "blocked"}, "cannot reach the proxy on port 3128"),
    ],
)
def test_egress_that_reaches_more_or_less_than_the_proxy_is_refused(
    resolved: dict[str, list[str]], connected: dict[str, str], reason: str
) -> None:
    found = Findings(GOOD_EGRESS.resolved | resolved, GOOD_EGRESS.connected | connected)
    verdict = judge(PLAN, GOOD_SETUP, found, FIXED, allow_vulnerable=True)
    assert verdict.setup is None and verdict.egress is not None
    assert reason in verdict.egress, verdict.egress


def test_setup_without_dns_is_reported_to_the_operator_not_refused() -> None:
    found = Findings({"index.example": []}, GOOD_SETUP.connected | {"public": "blocked"})
    verdict = judge(PLAN, found, GOOD_EGRESS, FIXED, allow_vulnerable=False)
    assert verdict.setup is None
    assert verdict.warnings and "cannot resolve names (index.example)" in verdict.warnings[0]
    assert "SANDBOX_DNS" in verdict.warnings[0]


def test_a_probe_that_could_not_run_refuses_its_network_and_a_missing_network_nothing() -> None:
    verdict = judge(PLAN, "the probe on 'codex-setup': boom", None, FIXED, False)
    assert verdict.setup is not None and "the network self-test could not run" in verdict.setup
    assert verdict.egress is None

"""Who a connection to the egress proxy belongs to, and how each of its requests is recorded.

Every request ends in `recording`: a refusal is answered (403, 429, 400 ...) and the request
counted as refused, an upstream failure answered and kept as allowed (the proxy tried), a relay
cut short noted; then one line goes to the log (within the sandbox's budget) and the request to
the task's `record` callback, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from worker.egress import http
from worker.egress.http import Refused, Side
from worker.egress.limits import LogBudget
from worker.egress.policy import NetworkPolicy, Request
from worker.egress.tunnel import Outcome

log = logging.getLogger(__name__)


@dataclass
class Client:
    """A registered sandbox: its policy, where its requests go, its open connections."""

    policy: NetworkPolicy
    record: Callable[[Request], None]
    label: str
    connections: set[asyncio.Task[object]] = field(default_factory=set)


@dataclass
class Peer:
    """One connection from a registered sandbox."""

    client: Client
    ip: str
    side: Side
    budget: LogBudget


@contextlib.asynccontextmanager
async def recording(peer: Peer, outcome: Outcome) -> AsyncIterator[None]:
    """Answer a `Refused` for the client, note a relay cut short, and record the outcome."""
    try:
        yield
    except Refused as refused:
        outcome.allowed = outcome.allowed and refused.tried
        outcome.reason = refused.reason
        outcome.answered = refused.status
        await http.respond(peer.side, refused.status, refused.reason)
    except http.RELAY_ERRORS as error:
        outcome.reason += f"; relay ended early: {error!r}"
    finally:
        _log(peer, outcome)
        try:
            peer.client.record(outcome.request())
        except Exception:
            log.exception("egress %s %s: record callback failed", peer.client.label, peer.ip)


def _log(peer: Peer, outcome: Outcome) -> None:
    verdict = "allowed" if outcome.allowed else "denied"
    answered = f", answered {outcome.answered}" if outcome.answered else ""
    peer.budget.log(
        peer.client.label,
        logging.INFO,
        "egress %s %s: %s %s, %s (status %s%s, %d bytes)",
        *(peer.client.label, peer.ip, outcome.target, verdict, outcome.reason),
        *(outcome.status, answered, outcome.bytes),
    )

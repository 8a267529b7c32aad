"""A network-level GitHub simulator for tests.

githubkit (unmodified, pointed at `sim.url`) talks to it over loopback: the REST endpoints
the app uses, GitHub App auth (JWT -> installation tokens), git smart HTTP for clone/push
(with `refs/pull/<n>/head`), forks the App is not installed on, and webhook delivery.
Responses and payloads are GitHub's own published examples with the simulator's state
written in. See `GitHubSim`.
"""

from __future__ import annotations

from .fixtures import MissingFixturesError
from .hookshot import sign
from .records import Delivery, PushRecord, ReactionRecord, RecordedRequest, Repo, Token
from .sim import GitHubSim

__all__ = [
    "Delivery",
    "GitHubSim",
    "MissingFixturesError",
    "PushRecord",
    "ReactionRecord",
    "RecordedRequest",
    "Repo",
    "Token",
    "sign",
]

"""What a job needs from the worker process: clients owned by startup/shutdown."""

from __future__ import annotations

from dataclasses import dataclass

import docker
from githubkit import AppAuthStrategy, GitHub

from app.settings import Settings
from worker.egress.selftest import NetworkCheck
from worker.egress.service import Egress
from worker.protocols import Model
from worker.sandbox.cache import EnvironmentCache


@dataclass(frozen=True)
class Deps:
    settings: Settings
    app_github: GitHub[AppAuthStrategy]
    docker: docker.DockerClient
    model: Model
    cache: EnvironmentCache
    egress: Egress
    network: NetworkCheck
    """The start-up firewall self-test: `await network.problem_for(mode)` before a network."""

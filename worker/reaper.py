"""The reaper: containers whose worker is gone are removed by the workers that remain.

A SIGKILLed worker runs no cleanup, so its sandboxes (labelled `codex.task` or `codex.selftest`)
would run until someone noticed. Each container also names its worker (`codex.worker`) and the
worker's Redis (`codex.fleet`); a worker key that has expired in this fleet's Redis means the
container is an orphan. Containers of another fleet sharing the engine (another deployment, a
test run) and containers without our labels are never touched.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from contextlib import suppress
from urllib.parse import urlsplit

import docker
from arq.connections import ArqRedis

from app.keys import worker_key
from worker.sandbox import spec

log = logging.getLogger(__name__)

WORKER_LABEL = "codex.worker"
FLEET_LABEL = "codex.fleet"
OURS = ("codex.task", "codex.selftest")


def fleet_of(redis_url: str) -> str:
    """Names the Redis the workers share (host, port, database; never the password)."""
    parts = urlsplit(redis_url)
    where = f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"
    return hashlib.sha256(where.encode()).hexdigest()[:12]


def claim(worker_id: str, fleet: str) -> None:
    """Every container this process starts from now on names this worker and fleet."""
    spec.OWNER_LABELS.update({WORKER_LABEL: worker_id, FLEET_LABEL: fleet})


async def reap(engine: docker.DockerClient, redis: ArqRedis, fleet: str) -> int:
    """Remove this fleet's containers whose worker is gone; returns how many were removed."""
    found = await asyncio.to_thread(
        engine.containers.list, all=True, filters={"label": f"{FLEET_LABEL}={fleet}"}
    )
    removed = 0
    for container in found:
        labels = container.labels or {}
        owner = labels.get(WORKER_LABEL)
        if not owner or not any(name in labels for name in OURS):
            continue
        if await redis.exists(worker_key(owner)):
            continue
        log.warning("removing container %s of task %s: its worker %s is gone", container.name,
                    labels.get("codex.task") or labels.get("codex.selftest"), owner)  # fmt: skip
        with suppress(docker.errors.NotFound):
            await asyncio.to_thread(container.remove, force=True)
            removed += 1
    return removed

"""Expired environment snapshots are removed from the Docker engine; fresh ones stay."""

from __future__ import annotations

import asyncio
import time

import docker
import pytest

from tests.conftest import SANDBOX_IMAGE
from worker.sandbox.cache import CREATED, REPOSITORY, EnvironmentCache


@pytest.fixture
def engine(docker_ready: None) -> docker.DockerClient:
    return docker.from_env()


def test_garbage_collection_removes_only_expired_snapshots(engine: docker.DockerClient) -> None:
    base = engine.images.get(SANDBOX_IMAGE)
    base.tag(REPOSITORY, "expired-by-test")  # no creation label: as old as can be
    container = engine.containers.create(SANDBOX_IMAGE, command=["true"])
    try:
        container.commit(REPOSITORY, "fresh-by-test", conf={"Labels": {CREATED: str(time.time())}})
    finally:
        container.remove()
    try:
        removed = asyncio.run(EnvironmentCache(engine, ttl=3600).collect_garbage())
        tags = {t for image in engine.images.list(name=REPOSITORY) for t in image.tags}
        assert removed >= 1
        assert f"{REPOSITORY}:expired-by-test" not in tags
        assert f"{REPOSITORY}:fresh-by-test" in tags
        assert SANDBOX_IMAGE in engine.images.get(SANDBOX_IMAGE).tags, "other tags are kept"
        assert asyncio.run(EnvironmentCache(engine, ttl=3600).lookup("fresh-by-test"))
        assert asyncio.run(EnvironmentCache(engine, ttl=0).lookup("fresh-by-test")) is None
    finally:
        engine.images.remove(f"{REPOSITORY}:fresh-by-test", force=True)
        engine.close()

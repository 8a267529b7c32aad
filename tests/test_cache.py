"""The environment cache: what its key covers, and snapshots expiring from a real engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import docker
import pytest

from tests.conftest import SANDBOX_IMAGE
from worker.repoconfig import RepoConfig
from worker.sandbox.cache import CREATED, REPOSITORY, EnvironmentCache, is_lockfile, key
from worker.sandbox.containers import SandboxSpec, open_sandbox


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


BASE = RepoConfig.model_validate({"setup": "pip install -e .", "env": {"A": "1"},
                                  "secrets": ["NPM_TOKEN"]})  # fmt: skip
LOCKS = {"requirements.txt": "aa", "web/package-lock.json": "bb"}


@pytest.mark.parametrize(
    ("what", "changed"),
    [
        ("the repository", lambda: key("octo/other", "sha256:1", BASE, LOCKS)),
        ("the image", lambda: key("octo/app", "sha256:2", BASE, LOCKS)),
        ("the setup script", lambda: key("octo/app", "sha256:1", BASE.model_copy(
            update={"setup": "pip install -e '.[dev]'"}), LOCKS)),
        ("the env vars", lambda: key("octo/app", "sha256:1", BASE.model_copy(
            update={"env": {"A": "2"}}), LOCKS)),
        ("the secret names", lambda: key("octo/app", "sha256:1", BASE.model_copy(
            update={"secrets": ["NPM_TOKEN", "PYPI_TOKEN"]}), LOCKS)),
        ("a nested lockfile", lambda: key("octo/app", "sha256:1", BASE,
                                          {**LOCKS, "web/package-lock.json": "cc"})),
    ],
)  # fmt: skip
def test_everything_that_shapes_the_environment_changes_its_key(
    what: str, changed: Callable[[], str]
) -> None:
    assert changed() != key("octo/app", "sha256:1", BASE, LOCKS), what


def test_lockfiles_are_found_at_any_depth_and_other_files_are_not() -> None:
    paths = ["requirements-dev.txt", "web/package.json", "svc/go.sum", "src/app.py", "README.md",
             "docs/requirements.md"]  # fmt: skip
    found = [path for path in paths if is_lockfile(path)]
    assert found == ["requirements-dev.txt", "web/package.json", "svc/go.sum"]


def test_a_task_with_the_cache_off_stores_no_snapshot(engine: docker.DockerClient) -> None:
    async def setup_once() -> tuple[bool, list[str]]:
        before = {i.id for i in engine.images.list(name=REPOSITORY)}
        async with open_sandbox(engine, SandboxSpec(image=SANDBOX_IMAGE)) as sandbox:
            stored = await EnvironmentCache(engine, ttl=0).store(sandbox, "cache-off-by-test")
        return stored, [
            str(i.id) for i in engine.images.list(name=REPOSITORY) if i.id not in before
        ]

    stored, new = asyncio.run(setup_once())
    assert stored is False and new == []

"""The environment cache: what its key covers, and snapshots expiring from a real engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import docker
import pytest

from tests.harness import SANDBOX_IMAGE
from worker.repoconfig import RepoConfig
from worker.sandbox.cache import (
    CREATED,
    REPOSITORY,
    EnvironmentCache,
    is_lockfile,
    key,
    key_files,
)  # fmt: skip
from worker.sandbox.containers import open_sandbox
from worker.sandbox.spec import SandboxSpec


@pytest.fixture
def engine(docker_ready: None) -> docker.DockerClient:
    return docker.from_env()


def test_garbage_collection_removes_only_expired_snapshots(engine: docker.DockerClient) -> None:
    cache = EnvironmentCache(engine, ttl=3600, secret=b"test")
    container = engine.containers.create(SANDBOX_IMAGE, command=["true"])
    try:
        fresh, cached = asyncio.run(cache.commit(container, "octo/app", "t", "fresh-by-test"))
    finally:
        container.remove()
    engine.images.get(SANDBOX_IMAGE).tag(REPOSITORY, "expired-by-test")  # no label: old
    try:
        assert cached and fresh == cache.tag_for("fresh-by-test")
        removed = asyncio.run(cache.collect_garbage())
        tags = {t for image in engine.images.list(name=REPOSITORY) for t in image.tags}
        assert removed >= 1
        assert f"{REPOSITORY}:expired-by-test" not in tags
        assert fresh in tags
        assert SANDBOX_IMAGE in engine.images.get(SANDBOX_IMAGE).tags, "other tags are kept"
        assert asyncio.run(cache.lookup("fresh-by-test", "octo/app")) == fresh
        assert asyncio.run(cache.lookup("fresh-by-test", "other/app")) is None, "not theirs"
        cache_off = EnvironmentCache(engine, 0, b"test")
        assert asyncio.run(cache_off.lookup("fresh-by-test", "octo/app")) is None
        other_secret = EnvironmentCache(engine, ttl=3600, secret=b"another server")
        assert other_secret.tag_for("fresh-by-test") != fresh, "names depend on the secret"
    finally:
        engine.images.remove(fresh, force=True)
        engine.close()


def test_a_snapshot_without_its_repository_label_is_not_used(engine: docker.DockerClient) -> None:
    cache = EnvironmentCache(engine, ttl=3600, secret=b"test")
    forged = cache.tag_for("forged-by-test")
    container = engine.containers.create(SANDBOX_IMAGE, command=["true"])
    try:
        container.commit(*forged.split(":"), conf={"Labels": {CREATED: str(time.time())}})
    finally:
        container.remove()
    try:
        assert asyncio.run(cache.lookup("forged-by-test", "octo/app")) is None
    finally:
        engine.images.remove(forged, force=True)


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
             "docs/requirements.md", "requirements/testing.txt", "py/requirements/base.in",
             "docs/requirements/notes.md"]  # fmt: skip
    found = [path for path in paths if is_lockfile(path)]
    assert found == ["requirements-dev.txt", "web/package.json", "svc/go.sum",
                     "requirements/testing.txt", "py/requirements/base.in"]  # fmt: skip


def test_a_monorepo_names_the_files_its_environment_depends_on() -> None:
    tracked = ["python/uv.lock", "python/pyproject.toml", "web/package-lock.json", "go/go.sum"]
    assert key_files(tracked, None) == sorted(tracked), "every lockfile by default"
    named = key_files(tracked, ["python/uv.lock", "python/*.toml"])
    assert named == ["python/pyproject.toml", "python/uv.lock"], "only what setup builds from"
    config = RepoConfig.model_validate({"setup": "make", "cache": {"key": ["python/uv.lock"]}})
    assert key("o/r", "i", config, {"python/uv.lock": "aa"}) != key(
        "o/r", "i", config, {"python/uv.lock": "bb"}
    )


def test_a_task_with_the_cache_off_keeps_its_environment_only_for_itself(
    engine: docker.DockerClient,
) -> None:
    cache = EnvironmentCache(engine, ttl=0, secret=b"test")

    async def setup_once() -> tuple[str, bool, list[str]]:
        async with open_sandbox(engine, SandboxSpec(image=SANDBOX_IMAGE)) as sandbox:
            tag, cached = await cache.commit(sandbox.container, "octo/app", "t", "off-by-test")
        left = [t for i in engine.images.list(name=REPOSITORY) for t in i.tags if t == tag]
        await cache.discard(tag)
        return tag, cached, left

    tag, cached, left = asyncio.run(setup_once())
    assert cached is False and left == [tag], "a temporary environment while the task runs"
    assert asyncio.run(cache.lookup("off-by-test", "octo/app")) is None
    assert not [t for i in engine.images.list(name=REPOSITORY) for t in i.tags if t == tag]

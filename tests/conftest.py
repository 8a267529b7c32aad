"""Shared fixtures and hooks: real Redis, real Docker, the network-level fakes, and the running
system. What they start and drive is in `tests/harness.py`.

Outside CI a missing Redis or Docker engine skips the tests that need it; in CI (`CI=true`) it
fails them, so a green run always means the real parts ran.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from tests.fakes.github import GitHubSim
from tests.fakes.internet import Internet
from tests.fakes.openai import ScriptedOpenAI
from tests.harness import (
    SANDBOX_IMAGE,
    System,
    require,
    service_env,
    start_app,
    start_redis,
    start_worker,
)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="session")
def docker_ready() -> None:
    """A Docker engine that answers, with the sandbox image built."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception:
        require("a Docker engine")
    try:
        client.images.get(SANDBOX_IMAGE)
    except docker.errors.ImageNotFound:
        require(f"the sandbox image {SANDBOX_IMAGE} (deploy/sandbox/build-local.sh)")
    finally:
        client.close()


@pytest.fixture(scope="session")
def github(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHubSim]:
    with GitHubSim(tmp_path_factory.mktemp("github")) as sim:
        yield sim


@pytest.fixture
def host_service() -> Iterator[int]:
    """A service on this host bound to every address, as Redis or the app might be."""
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), http.server.BaseHTTPRequestHandler)  # noqa: S104
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def internet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Internet]:
    with Internet(tmp_path_factory.mktemp("internet")) as fake:
        yield fake


@pytest.fixture(scope="session")
def openai_fake() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI() as fake:
        yield fake


@pytest.fixture(autouse=True)
def scripts_of_this_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A script registered on the session's scripted model belongs to the test that registered
    it: other tests never see it, and it is gone when the test ends."""
    if "openai_fake" not in request.fixturenames:
        yield
        return
    fake: ScriptedOpenAI = request.getfixturevalue("openai_fake")
    with fake.owned_by(request.node.nodeid):
        yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the `system` fixture are marked `system`: `-m "not system"` runs the
    ones that need neither the app, the worker nor the Docker engine's shared ports."""
    for item in items:
        if "system" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.system)


@pytest.fixture(scope="session")
def system(
    redis_url: str,
    docker_ready: None,
    github: GitHubSim,
    openai_fake: ScriptedOpenAI,
    internet: Internet,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[System]:
    logs = tmp_path_factory.mktemp("logs")
    env = service_env(redis_url, github, openai_fake, internet)
    app, url = start_app(env, logs / "app.log")
    worker = start_worker(env, logs / "worker.log")
    try:
        yield System(github, openai_fake, url, env, app, worker)
    finally:
        worker.stop()
        app.stop()

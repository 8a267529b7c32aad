"""Container engine failures as the person reads them: the engine named, the operator told
what to check, never urllib3's "Max retries exceeded". The engine that is gone is a closed
port on loopback, so the machine's shared engine is never touched by the fault."""

from __future__ import annotations

import docker
import pytest

from tests.harness import free_port
from worker import errors
from worker.sandbox import engine


def test_an_engine_that_is_gone_is_named_with_what_to_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    monkeypatch.setenv("DOCKER_HOST", address)
    client = docker.DockerClient(base_url=address, timeout=2, version="1.41")
    try:
        with pytest.raises(Exception) as caught:
            client.containers.list()
    finally:
        client.close()
    assert engine.unreachable(caught.value)
    text = engine.explain(caught.value) or ""
    print(f"the person reads: {text}")
    assert f"DOCKER_HOST={address}" in text
    assert "Docker daemon runs" in text
    assert "Max retries" not in text and "HTTPConnectionPool" not in text
    failure = errors.classify(caught.value, deadline_passed=False, task_timeout=600, inert=str)
    assert isinstance(failure, errors.EngineUnavailable) and failure.transient, "retried later"
    assert f"DOCKER_HOST={address}" in failure.explain()


def test_an_engine_that_answers_is_not_blamed_for_a_missing_container(docker_ready: None) -> None:
    client = docker.from_env()
    try:
        with pytest.raises(docker.errors.NotFound) as caught:
            client.containers.get("codex-no-such-container-for-this-test")
    finally:
        client.close()
    assert not engine.unreachable(caught.value)
    assert engine.explain(caught.value) is None

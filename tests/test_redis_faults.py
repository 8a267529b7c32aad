"""Redis down or hung, behind a relay the test cuts: the real receiver answers 503 fast, a later
redelivery of the same delivery queues one task, and arq's poll loop survives a short outage.

Each test has a redis-server of its own; the session's Redis is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from arq.worker import Worker, func

from app import queue
from app.settings import Settings
from app.tasks import deserialize, serialize
from tests.fakes.github import GitHubSim
from tests.fakes.openai import ScriptedOpenAI
from tests.harness import (
    WEBHOOK_SECRET,
    Service,
    service_env,
    start_app,
    start_redis,
    wait_async,
    wait_for,
)
from tests.relay import Relay

REPO = "octo-org/redis-faults"


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[tuple[str, Relay]]:
    """A redis-server of this test's own (its URL) and a relay in front of it."""
    server, url = start_redis(tmp_path)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    relay = Relay(port)
    try:
        yield url, relay
    finally:
        relay.close()
        server.terminate()
        server.wait(10)


def through(url: str, relay: Relay) -> str:
    return url.rsplit(":", 1)[0] + f":{relay.port}/0"


@pytest.fixture
def receiver(
    backend: tuple[str, Relay], github: GitHubSim, openai_fake: ScriptedOpenAI, tmp_path: Path
) -> Iterator[tuple[Service, str]]:
    """The real app on uvicorn, talking to Redis through the relay (default timeouts)."""
    url, relay = backend
    env = service_env(through(url, relay), github, openai_fake)
    app, app_url = start_app(env, tmp_path / "app.log")
    try:
        yield app, app_url
    finally:
        app.stop()


def labeled(github: GitHubSim) -> dict[str, Any]:
    if REPO not in github.repos:
        github.create_repo(REPO, {"README.md": "hi\n"})
        github.set_permission(REPO, "alice", "write")
    number = github.create_issue(REPO, "Queue me", "Through a flaky Redis.", user="alice")
    return github.webhook_payload(
        "issues", "labeled", REPO, sender="alice", number=number, label="codex"
    )


def timed_delivery(
    github: GitHubSim, app_url: str, payload: dict[str, Any], delivery: str
) -> tuple[int, float, str | None]:
    started = time.monotonic()
    response = github.deliver(f"{app_url}/webhook", WEBHOOK_SECRET, "issues", payload, delivery)
    took = time.monotonic() - started
    return response.status_code, took, response.headers.get("retry-after")


def stored_jobs(url: str) -> list[bytes]:
    client = redis.Redis.from_url(url)
    try:
        return list(client.zrange("arq:queue", 0, -1))  # type: ignore[arg-type]
    finally:
        client.close()


def test_a_hung_or_down_redis_gets_a_fast_503_and_the_redelivery_queues_one_task(
    backend: tuple[str, Relay], receiver: tuple[Service, str], github: GitHubSim
) -> None:
    url, relay = backend
    app, app_url = receiver
    payload = labeled(github)
    delivery = str(uuid.uuid4())

    relay.hang()
    status, hung_for, retry_after = timed_delivery(github, app_url, payload, delivery)
    print(f"Redis hung: answered {status} in {hung_for:.2f} s, Retry-After {retry_after}")
    assert status == 503 and retry_after is not None and int(retry_after) > 0
    assert hung_for < 4, f"GitHub gives up after 10 s; the answer took {hung_for:.1f} s"

    relay.cut()
    status, down_for, retry_after = timed_delivery(github, app_url, payload, delivery)
    print(f"Redis down: answered {status} in {down_for:.2f} s, Retry-After {retry_after}")
    assert status == 503 and retry_after is not None
    assert down_for < 4
    assert stored_jobs(url) == [], "a 503 stores no task"
    assert f"delivery {delivery} answered 503: Redis is unavailable" in app.log.read_text()

    relay.restore()
    status, took, _ = timed_delivery(github, app_url, payload, delivery)
    print(f"Redis back: the same delivery answered {status} in {took:.2f} s")
    assert status == 202, app.tail()
    assert timed_delivery(github, app_url, payload, delivery)[0] == 204, "seen: not twice"
    jobs = stored_jobs(url)
    assert jobs == [f"task:{REPO}#{payload['issue']['number']}:label:{delivery}".encode()]
    wait_for(lambda: github.comments(REPO, payload["issue"]["number"]), 20, "the status comment")


def counting_job_settings(url: str) -> Settings:
    return Settings(
        app_id=1, private_key="unused", webhook_secret="unused-in-this-test-42",
        openai_api_key="sk-unused", redis_url=url,
    )  # fmt: skip


def test_the_worker_poll_loop_survives_a_short_redis_outage(backend: tuple[str, Relay]) -> None:
    url, relay = backend
    settings = counting_job_settings(through(url, relay))
    done: list[int] = []

    async def count(ctx: dict[str, Any], n: int) -> None:
        done.append(n)

    async def scenario() -> None:
        worker = Worker(
            functions=[func(count, name="count")],
            job_serializer=serialize,
            job_deserializer=deserialize,
            redis_settings=queue.redis_settings(settings),
            poll_delay=0.05,
            handle_signals=False,
        )
        running = asyncio.create_task(worker.async_run())
        client = queue.pool(counting_job_settings(url))  # straight to Redis, not the relay
        try:
            await client.enqueue_job("count", 1)
            await wait_async(lambda: done == [1], "the first job")
            relay.cut()
            await asyncio.sleep(1.5)  # longer than a Redis restart takes
            relay.restore()
            await client.enqueue_job("count", 2)
            await wait_async(lambda: done == [1, 2] or running.done(), "the job after the outage")
            assert not running.done(), f"the worker ended: {running.exception()!r}"
            assert done == [1, 2]
        finally:
            # arq's close can let a CancelledError of its own job bookkeeping out: the outcome
            # was asserted above, so only the teardown is shielded from it.
            with contextlib.suppress(asyncio.CancelledError):
                await worker.close()
            running.cancel()
            await client.aclose()

    asyncio.run(scenario())

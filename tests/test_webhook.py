"""The receiver, in process against real Redis: answers, refusals and what lands on the queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import pytest
import redis
from starlette.testclient import TestClient

from app.main import app
from app.settings import get_settings
from tests.fakes.github import GitHubSim, sign
from tests.harness import WEBHOOK_SECRET

REPO = "octo-org/webhooks"


@pytest.fixture
def own_db(redis_url: str) -> str:
    """The session's Redis, another database: no running worker takes these tasks, and
    flushing it touches nobody else's state."""
    return redis_url.rsplit("/", 1)[0] + "/15"


@pytest.fixture
def store(own_db: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(own_db)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def receiver(
    store: redis.Redis, own_db: str, github: GitHubSim, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("APP_ID", "1")
    monkeypatch.setenv("PRIVATE_KEY", github.private_key_pem)
    monkeypatch.setenv("WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-unused-in-the-receiver")
    monkeypatch.setenv("REDIS_URL", own_db)
    get_settings.cache_clear()
    with TestClient(app) as client:
        yield client
    get_settings.cache_clear()


def post(
    client: TestClient,
    event: str,
    payload: dict[str, Any] | bytes,
    *,
    delivery: str = "d-1",
    signature: str | bytes | None = None,
) -> int:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if signature is None:
        signature = sign(WEBHOOK_SECRET, body)
    if isinstance(signature, str):
        signature = signature.encode()
    headers = {
        b"X-GitHub-Event": event.encode(),
        b"X-GitHub-Delivery": delivery.encode(),
        b"X-Hub-Signature-256": signature,
    }
    return client.post("/webhook", content=body, headers=headers).status_code


def queued(store: redis.Redis) -> list[dict[str, Any]]:
    jobs = []
    for job_id in cast("list[bytes]", store.zrange("arq:queue", 0, -1)):
        raw = cast("bytes | None", store.get(b"arq:job:" + job_id))
        assert raw is not None
        jobs.append(json.loads(raw))  # JSON, never pickle
    return jobs


@pytest.fixture
def labeled(github: GitHubSim) -> dict[str, Any]:
    if REPO not in github.repos:
        github.create_repo(REPO, {"README.md": "hi\n"})
    number = github.create_issue(REPO, "Broken", "It breaks.", user="alice")
    return github.webhook_payload(
        "issues", "labeled", REPO, sender="alice", number=number, label="codex"
    )


def test_a_labeled_issue_queues_one_task(
    receiver: TestClient, store: redis.Redis, labeled: dict[str, Any]
) -> None:
    assert post(receiver, "issues", labeled, delivery="abc-1") == 202
    jobs = queued(store)
    assert len(jobs) == 1
    (task,) = jobs[0]["a"]
    assert task["repo"] == REPO
    assert task["number"] == labeled["issue"]["number"]
    assert task["sender"] == "alice"
    assert task["trigger"] == "label:abc-1"


def test_a_redelivery_queues_nothing_new(
    receiver: TestClient, store: redis.Redis, labeled: dict[str, Any]
) -> None:
    assert post(receiver, "issues", labeled, delivery="same") == 202
    store.delete(
        *cast("list[bytes]", store.keys("arq:*"))
    )  # arq has forgotten the job, as it does after an hour
    assert post(receiver, "issues", labeled, delivery="same") == 204
    assert queued(store) == []


@pytest.mark.parametrize(
    "signature",
    ["", "sha256=" + "0" * 64, "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
     "sha1=0123", "sha256=é".encode()],
)  # fmt: skip
def test_a_bad_signature_is_refused_and_queues_nothing(
    receiver: TestClient, store: redis.Redis, labeled: dict[str, Any], signature: str | bytes
) -> None:
    assert post(receiver, "issues", labeled, signature=signature) == 401
    assert queued(store) == []


def test_malformed_json_is_a_400(receiver: TestClient, store: redis.Redis) -> None:
    assert post(receiver, "issues", b"{not json") == 400
    assert post(receiver, "issues", b"[1, 2]") == 400
    assert queued(store) == []


def test_other_labels_and_events_are_ignored(
    receiver: TestClient, store: redis.Redis, labeled: dict[str, Any]
) -> None:
    other = labeled | {"label": labeled["label"] | {"name": "bug"}}
    assert post(receiver, "issues", other) == 204
    assert post(receiver, "issues", labeled | {"action": "opened"}) == 204
    assert post(receiver, "ping", {"zen": "Keep it logically awesome."}) == 204
    assert queued(store) == []


def test_healthz(receiver: TestClient) -> None:
    assert receiver.get("/healthz").text == "ok"

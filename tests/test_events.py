"""Which deliveries start, cancel or answer something: decided on GitHub's own payloads."""

from __future__ import annotations

from typing import Any

import pytest

from app.events import (
    BadPayload,
    BadSignature,
    Cancel,
    Delivery,
    Ignored,
    Reply,
    decide,
    parse,
    verify_signature,
)
from app.tasks import Task
from tests.fakes.github import GitHubSim

REPO = "octo-org/events"


def test_githubs_documented_signature_vector() -> None:
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    verify_signature(b"It's a Secret to Everybody", b"Hello, World!", header)


@pytest.mark.parametrize(
    "header",
    [None, "", "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
     "sha1=01d6f6b1e1b0ae1e1a1c3a8d3b8e8d7f6b1e1b0a", "sha256=\udcc3\udca9"],
)  # fmt: skip
def test_bad_signatures_raise_bad_signature_only(header: str | None) -> None:
    with pytest.raises(BadSignature):
        verify_signature(b"It's a Secret to Everybody", b"Hello, World!", header)


@pytest.mark.parametrize("body", [b"{", b"[]", b"\xff\xfe", b'"text"'])
def test_bodies_that_are_not_json_objects(body: bytes) -> None:
    with pytest.raises(BadPayload):
        parse("issues", "d", body)


@pytest.fixture(scope="module")
def sim(github: GitHubSim) -> GitHubSim:
    if REPO not in github.repos:
        github.create_repo(REPO, {"README.md": "hi\n"})
    return github


def decided(event: str, payload: dict[str, Any], delivery: str = "d-1") -> object:
    return decide(Delivery(event, delivery, payload), trigger_label="codex")


@pytest.mark.parametrize(
    "event", ["issues", "issue_comment", "pull_request_review_comment", "ping"]
)
def test_every_published_example_gets_a_decision(sim: GitHubSim, event: str) -> None:
    examples = sim.example_payloads(event)
    assert examples
    for _action, payload in examples:
        assert isinstance(decided(event, payload), Task | Cancel | Reply | Ignored)


def test_the_trigger_label_starts_an_issue_task(sim: GitHubSim) -> None:
    number = sim.create_issue(REPO, "Bug", "Broken", user="alice")
    payload = sim.webhook_payload(
        "issues", "labeled", REPO, sender="alice", number=number, label="codex"
    )
    task = decided("issues", payload, "delivery-7")
    assert isinstance(task, Task)
    assert (task.repo, task.number, task.kind, task.sender) == (REPO, number, "issue", "alice")
    assert task.trigger == "label:delivery-7" and task.subject == "issue"
    other = sim.webhook_payload(
        "issues", "labeled", REPO, sender="alice", number=number, label="bug"
    )
    assert isinstance(decided("issues", other), Ignored)


def test_removing_the_label_cancels(sim: GitHubSim) -> None:
    number = sim.create_issue(REPO, "Bug", "Broken", user="alice", labels=("codex",))
    payload = sim.webhook_payload(
        "issues", "unlabeled", REPO, sender="alice", number=number, label="codex"
    )
    cancel = decided("issues", payload)
    assert isinstance(cancel, Cancel) and not cancel.explicit
    assert cancel.thread.key == f"{REPO}#{number}"


def comment(sim: GitHubSim, body: str, *, pull: bool = False, sender: str = "alice") -> object:
    number = sim.create_issue(REPO, "Bug", "Broken", user="alice")
    payload = sim.webhook_payload(
        "issue_comment", "created", REPO, sender=sender, number=number, comment_body=body, pull=pull
    )
    return decided("issue_comment", payload)


def test_a_fix_comment_on_an_issue_carries_its_text(sim: GitHubSim) -> None:
    task = comment(sim, "/codex fix use the new API --attempts 2")
    assert isinstance(task, Task)
    assert task.kind == "issue" and task.instructions == "use the new API" and task.attempts == 2
    assert task.trigger.startswith("comment:") and task.subject.startswith("issue_comment:")


def test_comments_that_stop_help_or_are_wrong(sim: GitHubSim) -> None:
    stop = comment(sim, "/codex stop")
    assert isinstance(stop, Cancel) and stop.explicit
    help_ = comment(sim, "/codex help")
    assert isinstance(help_, Reply) and help_.kind == "help"
    unknown = comment(sim, "/codex deploy")
    assert isinstance(unknown, Reply) and unknown.kind == "unknown" and unknown.detail == "deploy"
    invalid = comment(sim, "/codex fix --attempts 9")
    assert isinstance(invalid, Reply) and invalid.kind == "invalid"


def test_what_starts_nothing(sim: GitHubSim) -> None:
    assert isinstance(comment(sim, "> /codex fix\nquoting"), Ignored)
    assert isinstance(comment(sim, "/codex fix", sender="dependabot[bot]"), Ignored)
    number = sim.create_issue(REPO, "Old", "Closed one", user="alice")
    sim.close_issue(REPO, number)
    closed = sim.webhook_payload(
        "issue_comment", "created", REPO, sender="alice", number=number, comment_body="/codex fix"
    )
    assert isinstance(decided("issue_comment", closed), Ignored)
    for action in ("edited", "deleted"):
        payload = sim.webhook_payload(
            "issue_comment", action, REPO, sender="alice", number=number, comment_body="/codex fix"
        )
        payload["issue"]["state"] = "open"
        assert isinstance(decided("issue_comment", payload), Ignored)


def test_comments_on_pull_requests_start_pull_tasks(sim: GitHubSim) -> None:
    sim.commit(REPO, "feature", {"f.py": "x = 1\n"})
    pull = sim.create_pull(REPO, "Feature", "feature", user="alice")
    on_pull = sim.webhook_payload(
        "issue_comment", "created", REPO, sender="alice", number=pull, comment_body="/codex fix",
        pull=True,
    )  # fmt: skip
    task = decided("issue_comment", on_pull)
    assert isinstance(task, Task) and task.kind == "pull" and task.number == pull
    review = sim.webhook_payload(
        "pull_request_review_comment", "created", REPO, sender="alice", number=pull,
        comment_body="/codex fix rename x", path="f.py", line=1,
    )  # fmt: skip
    task = decided("pull_request_review_comment", review)
    assert isinstance(task, Task) and task.kind == "pull"
    assert (task.review_path, task.review_line, task.instructions) == ("f.py", 1, "rename x")
    assert task.subject.startswith("review_comment:")

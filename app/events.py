"""Sans-I/O webhook handling: verify a delivery, parse it, decide whether it starts a task.

Nothing here performs I/O, so every decision is tested with plain data (GitHub's own example
payloads). The receiver in `main.py` does the reading, queueing and answering.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Literal

from app import commands
from app.tasks import Task

SIGNATURE_PREFIX = "sha256="


class BadSignature(Exception):
    """The delivery is not signed with our webhook secret."""


class BadPayload(Exception):
    """The body is not the JSON object GitHub sends."""


@dataclass(frozen=True)
class Delivery:
    event: str
    delivery_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Ignored:
    reason: str


@dataclass(frozen=True)
class Thread:
    """The issue or pull request an event happened on, and who acted."""

    repo: str
    number: int
    installation_id: int
    sender: str
    is_pull: bool

    @property
    def key(self) -> str:
        return f"{self.repo}#{self.number}"


@dataclass(frozen=True)
class Cancel:
    thread: Thread
    trigger: str
    """Unique per event (dedupe): `unlabel:<delivery>` or `comment:<id>`."""
    explicit: bool
    """`/codex stop` (answered even when nothing runs) rather than a removed label."""
    subject: str = "issue"


@dataclass(frozen=True)
class Reply:
    thread: Thread
    trigger: str
    kind: Literal["help", "unknown", "invalid"]
    detail: str = ""
    subject: str = "issue"


Decision = Task | Cancel | Reply | Ignored


def verify_signature(secret: bytes, body: bytes, header: str | None) -> None:
    """Check `X-Hub-Signature-256` in constant time; raise `BadSignature` otherwise.

    The `sha256=` prefix is required (no silent fallback to SHA-1) and the comparison is on
    bytes, so a header with non-ASCII characters is a refusal, not a crash.
    """
    if not header:
        raise BadSignature("missing X-Hub-Signature-256 header")
    received = header.encode("utf-8", "surrogateescape")
    if not received.startswith(SIGNATURE_PREFIX.encode()):
        raise BadSignature("X-Hub-Signature-256 must start with 'sha256='")
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    expected = (SIGNATURE_PREFIX + digest).encode()
    if not hmac.compare_digest(expected, received):
        raise BadSignature("signature does not match the payload")


def parse(event: str | None, delivery_id: str | None, body: bytes) -> Delivery:
    if not event:
        raise BadPayload("missing X-GitHub-Event header")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadPayload(f"body is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise BadPayload("body is not a JSON object")
    return Delivery(event=event, delivery_id=delivery_id or "", payload=payload)


def _login(obj: Any) -> str:
    return str(obj.get("login", "")) if isinstance(obj, dict) else ""


def is_bot(sender: Any) -> bool:
    return isinstance(sender, dict) and (
        sender.get("type") == "Bot" or _login(sender).endswith("[bot]")
    )


def decide(delivery: Delivery, *, trigger_label: str) -> Decision:
    """What this delivery asks for. Pure: data in, a decision out."""
    payload = delivery.payload
    name = f"{delivery.event}.{payload.get('action')}"
    handler = HANDLERS.get(name)
    if handler is None:
        return Ignored(f"{name} does not start work")
    if is_bot(payload.get("sender")):
        return Ignored("events from bots never start work")
    if not delivery.delivery_id:
        return Ignored("missing X-GitHub-Delivery header")
    item = payload.get("pull_request") if delivery.event.startswith("pull_request") else None
    item = item or payload.get("issue") or {}
    installation = payload.get("installation") or {}
    repo = payload.get("repository") or {}
    if not installation.get("id") or not repo.get("full_name") or not item.get("number"):
        return Ignored("payload lacks installation, repository or issue")
    thread = Thread(
        repo=str(repo["full_name"]),
        number=int(item["number"]),
        installation_id=int(installation["id"]),
        sender=_login(payload.get("sender")),
        is_pull=delivery.event.startswith("pull_request") or "pull_request" in item,
    )
    decision = handler(delivery, thread, trigger_label)
    if item.get("state") != "open" and not isinstance(decision, Cancel | Ignored):
        # A closed issue starts nothing, but a task still running on it can be stopped.
        return Ignored(f"#{thread.number} is not open")
    return decision


def _labeled(delivery: Delivery, thread: Thread, trigger_label: str) -> Decision:
    label = (delivery.payload.get("label") or {}).get("name")
    if label != trigger_label:
        return Ignored(f"label {label!r} is not the trigger label {trigger_label!r}")
    if thread.is_pull:
        return Ignored("labels on pull requests do not start work; comment `/codex fix`")
    return _task(thread, f"label:{delivery.delivery_id}", delivery, commands.Command("fix"))


def _unlabeled(delivery: Delivery, thread: Thread, trigger_label: str) -> Decision:
    label = (delivery.payload.get("label") or {}).get("name")
    if label != trigger_label:
        return Ignored(f"label {label!r} is not the trigger label {trigger_label!r}")
    return Cancel(thread, f"unlabel:{delivery.delivery_id}", explicit=False)


def _comment(delivery: Delivery, thread: Thread, trigger_label: str) -> Decision:
    comment = delivery.payload.get("comment") or {}
    command = commands.parse(str(comment.get("body") or ""))
    if command is None:
        return Ignored("the comment holds no /codex command")
    review = delivery.event == "pull_request_review_comment"
    subject = f"{'review_comment' if review else 'issue_comment'}:{comment.get('id')}"
    trigger = f"comment:{comment.get('id')}"
    if command.verb == "stop":
        return Cancel(thread, trigger, explicit=True, subject=subject)
    if command.verb == "help":
        return Reply(thread, trigger, "help", subject=subject)
    if command.verb == "unknown":
        return Reply(thread, trigger, "unknown", command.word, subject=subject)
    if command.error:
        return Reply(thread, trigger, "invalid", command.error, subject=subject)
    if command.verb in ("continue", "pick") and not thread.is_pull:
        detail = f"`/codex {command.verb}` works on a pull request opened by this app"
        return Reply(thread, trigger, "invalid", detail, subject=subject)
    line = comment.get("line") or comment.get("original_line")
    return _task(
        thread,
        trigger,
        delivery,
        command,
        subject=subject,
        review_path=comment.get("path") if review else None,
        review_line=int(line) if review and line else None,
    )


def _task(
    thread: Thread,
    trigger: str,
    delivery: Delivery,
    command: commands.Command,
    **extra: Any,
) -> Task:
    return Task(
        repo=thread.repo,
        number=thread.number,
        kind="pull" if thread.is_pull else "issue",
        installation_id=thread.installation_id,
        sender=thread.sender,
        trigger=trigger,
        delivery_id=delivery.delivery_id,
        instructions=command.text,
        attempts=command.attempts,
        action=command.verb if command.verb in ("continue", "pick") else "fix",
        pick=command.pick,
        **extra,
    )


HANDLERS = {
    "issues.labeled": _labeled,
    "issues.unlabeled": _unlabeled,
    "issue_comment.created": _comment,
    "pull_request_review_comment.created": _comment,
}

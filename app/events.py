"""Sans-I/O webhook handling: verify a delivery, parse it, decide whether it starts a task.

Nothing here performs I/O, so every decision is tested with plain data (GitHub's own example
payloads). The receiver in `main.py` does the reading, queueing and answering.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

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


def decide(delivery: Delivery, *, trigger_label: str) -> Task | Ignored:
    """Does this delivery start a task? Pure: data in, `Task` or `Ignored(reason)` out."""
    payload = delivery.payload
    action = payload.get("action")
    if delivery.event != "issues" or action != "labeled":
        return Ignored(f"{delivery.event}.{action} does not start work")
    label = payload.get("label") or {}
    if label.get("name") != trigger_label:
        return Ignored(f"label {label.get('name')!r} is not the trigger label {trigger_label!r}")
    if is_bot(payload.get("sender")):
        return Ignored("events from bots never start work")
    issue = payload.get("issue") or {}
    if issue.get("state") != "open":
        return Ignored("the issue is not open")
    if "pull_request" in issue:
        return Ignored("labels on pull requests do not start work")
    installation = payload.get("installation") or {}
    repo = payload.get("repository") or {}
    if not installation.get("id") or not repo.get("full_name") or not issue.get("number"):
        return Ignored("payload lacks installation, repository or issue")
    if not delivery.delivery_id:
        return Ignored("missing X-GitHub-Delivery header")
    return Task(
        repo=repo["full_name"],
        number=int(issue["number"]),
        installation_id=int(installation["id"]),
        sender=_login(payload.get("sender")),
        trigger=f"label:{delivery.delivery_id}",
        delivery_id=delivery.delivery_id,
    )

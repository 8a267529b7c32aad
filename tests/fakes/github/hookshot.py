"""Deliver webhooks the way GitHub's "Hookshot" does: headers, signatures, compact JSON.

`sign` is the `X-Hub-Signature-256` value: "sha256=" + hex HMAC-SHA256 of the raw body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import uuid
from functools import cache
from typing import Any

import httpx

USER_AGENT = "GitHub-Hookshot/5a0b6a4"
HOOK_ID = "424242"
TIMEOUT = 10.0  # GitHub gives up on a delivery after 10 s


def sign(secret: str, body: bytes) -> str:
    """`X-Hub-Signature-256` for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_sha1(secret: str, body: bytes) -> str:
    """The legacy `X-Hub-Signature` header GitHub still sends."""
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def encode(payload: dict[str, Any] | bytes) -> bytes:
    """GitHub's body: compact JSON (no spaces after separators), UTF-8."""
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def headers(secret: str, event: str, body: bytes, delivery_id: str, app_id: int) -> dict[str, str]:
    return {
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Hook-ID": HOOK_ID,
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-GitHub-Hook-Installation-Target-ID": str(app_id),
        "X-Hub-Signature": sign_sha1(secret, body),
        "X-Hub-Signature-256": sign(secret, body),
    }


@cache
def _tls() -> ssl.SSLContext:
    """httpx's own default context, built once for every delivery: httpx builds a new one per
    call otherwise, which took the simulator more CPU than the rest of a delivery, beside the
    workers it feeds."""
    return httpx.create_ssl_context()


def post(
    url: str,
    secret: str,
    event: str,
    payload: dict[str, Any] | bytes,
    delivery_id: str | None,
    app_id: int,
) -> tuple[httpx.Response, str]:
    """POST one delivery; returns the response and the delivery id used."""
    delivery = delivery_id or str(uuid.uuid4())
    body = encode(payload)
    response = httpx.post(
        url,
        content=body,
        headers=headers(secret, event, body, delivery, app_id),
        timeout=TIMEOUT,
        verify=_tls(),
    )
    return response, delivery

"""The full work log of a task, kept in Redis and served at `/logs/<id>`.

The PR body holds a trimmed log; this one holds every step's output (as the model saw it) for
every attempt. The id is an HMAC of the task's job id under the webhook secret: unguessable,
so the link in the PR body is the only way to the log, and it reaches no further than the PR.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from redis.asyncio import Redis

from app.keys import LOG_TTL, log_key
from app.settings import Settings

LOG_ID = re.compile(r"^[0-9a-f]{32}$")


def log_id(settings: Settings, job_id: str) -> str:
    secret = settings.webhook_secret.get_secret_value().encode()
    return hmac.new(secret, f"log:{job_id}".encode(), hashlib.sha256).hexdigest()[:32]


async def store(redis: Redis, settings: Settings, job_id: str, text: str) -> str | None:
    """Keep `text` (already redacted) for `LOG_TTL`; its URL when `PUBLIC_URL` is set."""
    identifier = log_id(settings, job_id)
    limit = settings.task_log_limit
    if len(text) > limit:
        half = limit // 2
        text = (
            f"{text[:half]}\n\n[... {len(text) - limit} characters omitted ...]\n\n{text[-half:]}"
        )
    await redis.set(log_key(identifier), text.encode(), ex=LOG_TTL)
    if not settings.public_url:
        return None
    return f"{settings.public_url.rstrip('/')}/logs/{identifier}"


async def load(redis: Redis, identifier: str) -> str | None:
    if not LOG_ID.match(identifier):
        return None
    raw = await redis.get(log_key(identifier))
    return raw.decode() if raw else None

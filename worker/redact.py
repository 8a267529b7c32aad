"""Redaction: no token, key or live secret value leaves the worker in text people can read."""

from __future__ import annotations

import re
from collections.abc import Iterable

PATTERNS = re.compile(
    r"gh[opsu]_[A-Za-z0-9._]{36,}"
    r"|github_pat_[A-Za-z0-9_]{22,}"
    r"|sk-[A-Za-z0-9_-]{20,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
    re.DOTALL,
)
MASK = "[REDACTED]"


class Redactor:
    """Masks the exact values of live secrets, then anything shaped like a credential."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def add(self, secret: str) -> None:
        self.secrets = sorted({*self.secrets, secret} - {""}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return PATTERNS.sub(MASK, text)

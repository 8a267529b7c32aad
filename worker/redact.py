"""Redaction: no token, key or live secret value leaves the worker in text people can read."""

from __future__ import annotations

import re
from collections.abc import Iterable

PATTERNS = re.compile(
    r"gh[oprsu]_[A-Za-z0-9._]{36,}"
    r"|github_pat_[A-Za-z0-9_]{22,}"
    r"|(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{20,}"
    # A key block, or what is left of one when its end was cut off with the output's middle.
    r"|-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,.-]*)",
    re.DOTALL,
)
MASK = "[REDACTED]"
SHORTEST = 4
"""Shorter secret values are not masked: masking them would garble ordinary text."""


class Redactor:
    """Masks the exact values of live secrets, then anything shaped like a credential."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if len(secret) >= SHORTEST:
            self.secrets = sorted({*self.secrets, secret}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return PATTERNS.sub(MASK, text)

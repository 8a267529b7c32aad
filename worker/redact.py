"""Redaction: no token, key or live secret value leaves the worker in text people can read.

A live secret is masked in every form a command can turn it into without trying hard: raw,
base64 (also inside a longer base64 stream, such as a `user:token` basic-auth header), hex,
URL- and JSON-escaped, reversed. The same forms are what `contains_secret` looks for in bytes
(a diff, a file of the environment snapshot), so a hit refuses the push or the snapshot.

Why `str.replace` per form and not one regex: Python's `re` tries every alternative at every
position, and on a few MB an alternation of a hundred literals takes seconds; the C substring
search behind `replace` and `in` does the same work in a fraction of that (see the tests).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

PATTERNS = re.compile(
    r"gh[oprsu]_[A-Za-z0-9._]{36,}"
    r"|github_pat_[A-Za-z0-9_]{22,}"
    r"|(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{20,}"
    # A key block, or what is left of one when its end was cut off with the output's middle.
    r"|-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,.-]*)",
    re.DOTALL,
)
WRAPPED = r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/=_-]{40,}+(?:\r?\n[A-Za-z0-9+/=_-]++)++"
"""Base64 or hex wrapped into lines (`base64`, `openssl base64`, `xxd -p` wrap at 60-76
characters), where a form can straddle a line break. Possessive, and anchored at the start of
a run, so it costs linear time on any text."""
WRAPPED_TEXT = re.compile(WRAPPED)
WRAPPED_BYTES = re.compile(WRAPPED.encode())
MASK = "[REDACTED]"
SHORTEST = 4
"""Shorter secret values are not masked: masking them would garble ordinary text."""
SHORTEST_FORM = 8
"""Encoded forms shorter than this are not masked either: a few base64 or hex characters
occur in ordinary text by chance, and so little of an encoding does not give the value away."""


def _base64_runs(raw: bytes) -> set[str]:
    """The base64 characters that depend on `raw` alone, at each of the 3 byte alignments it
    can have inside a longer stream: a character that also encodes a neighbouring byte (or
    padding) differs with the neighbour, so it is left out."""
    runs: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + raw).decode()
        first = -(-8 * offset // 6)  # the first character wholly inside `raw`'s bits
        last = 8 * (offset + len(raw)) // 6
        runs.add(encoded[first:last])
    runs.add(base64.b64encode(raw).decode())  # the whole value on its own, padding included
    return runs


def encoded_forms(secret: str) -> set[str]:
    """The forms `secret` can take in text or a file once a command has encoded it."""
    raw = secret.encode()
    runs = _base64_runs(raw)
    forms = {
        *runs,
        *(run.replace("+", "-").replace("/", "_") for run in runs),
        raw.hex(),
        raw.hex().upper(),
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        secret[::-1],
    }
    forms = {form for form in forms if len(form) >= SHORTEST_FORM}
    return forms | {secret} if len(secret) >= SHORTEST else forms


class Redactor:
    """Masks every form of the live secrets, then anything shaped like a credential."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: list[str] = []
        self.forms: list[str] = []
        """Every form of every secret, longest first, so no shorter one masks part of it."""
        self._bytes: list[bytes] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if len(secret) < SHORTEST or secret in self.secrets:
            return
        self.secrets = sorted({*self.secrets, secret}, key=len, reverse=True)
        self.forms = sorted({*self.forms, *encoded_forms(secret)}, key=len, reverse=True)
        needles: list[bytes] = []  # a form that holds a shorter one needs no search of its own
        for form in sorted(self.forms, key=len):
            if not any(needle in form.encode() for needle in needles):
                needles.append(form.encode())
        self._bytes = needles

    def __call__(self, text: str) -> str:
        for form in self.forms:
            text = text.replace(form, MASK)
        if self.forms:
            text = WRAPPED_TEXT.sub(self._wrapped, text)
        return PATTERNS.sub(MASK, text)

    def _wrapped(self, block: re.Match[str]) -> str:
        """A wrapped block with the lines that a form straddles masked."""
        text = block.group(0)
        if not any(form in text.replace("\r", "").replace("\n", "") for form in self.forms):
            return text
        kept = [at for at, char in enumerate(text) if char not in "\r\n"]
        joined = "".join(text[at] for at in kept)
        spans: list[tuple[int, int]] = []
        for form in self.forms:
            start = joined.find(form)
            while start >= 0:
                spans.append((kept[start], kept[start + len(form) - 1] + 1))
                start = joined.find(form, start + len(form))
        merged: list[tuple[int, int]] = []
        for start, end in sorted(spans):  # overlapping spans are masked as their union
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        for start, end in reversed(merged):
            text = text[:start] + MASK + text[end:]
        return text

    def contains_secret(self, data: bytes) -> bool:
        """Whether any form of any live secret occurs in `data` (a diff, a file's content),
        also across the line breaks of wrapped base64 or hex: such data must not be pushed or
        kept. Credential-shaped text that is no live secret (a test fixture's fake key) does
        not count."""
        if any(form in data for form in self._bytes):
            return True
        blocks = [block.replace(b"\r", b"") for block in WRAPPED_BYTES.findall(data)]
        # Each block as a file's lines, and as the added lines of a diff (each after its `+`);
        # joined into one text (NUL between blocks) so each form is searched for once.
        joined = b"\0".join(
            variant
            for block in blocks
            for variant in (block.replace(b"\n", b""), block.replace(b"\n+", b""))
        )
        return any(form in joined for form in self._bytes)

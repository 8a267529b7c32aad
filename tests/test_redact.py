"""Redaction of live secrets in the forms a command turns them into, attacked as a leak would.

Each test encodes a real-looking token the way a hostile or careless command does (`base64`,
`xxd -p`, `urllib.parse.quote`, `json.dumps`, `rev`), and asserts that the text a person or the
model reads no longer carries it, and that bytes carrying it are recognized (so a diff or a
snapshot file holding it is refused).
"""

from __future__ import annotations

import base64
import json
import random
import string
import textwrap
import time
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import pytest

from worker.redact import MASK, Redactor, encoded_forms

TOKEN = "npm_Xr7Q2mK9vT4bL8sW1yZ6cN3dF5hJ0pA/+g=k@x"
"""Shaped like a registry token, with the characters each encoding treats specially."""

ENCODINGS: dict[str, Callable[[str], str]] = {
    "raw": lambda s: s,
    "base64": lambda s: base64.b64encode(s.encode()).decode(),
    "base64 urlsafe": lambda s: base64.urlsafe_b64encode(s.encode()).decode(),
    "basic auth header": lambda s: base64.b64encode(f"user:{s}".encode()).decode(),
    "base64 after 2 bytes": lambda s: base64.b64encode(f"u:{s}!".encode()).decode(),
    "base64 urlsafe after 1 byte": lambda s: base64.urlsafe_b64encode(f"x{s}".encode()).decode(),
    "base64 wrapped (MIME)": lambda s: base64.encodebytes(f"{'x' * 50}{s}".encode()).decode(),
    "base64 wrapped (CRLF)": lambda s: (
        base64.encodebytes(f"{'y' * 40}{s}".encode()).decode().replace("\n", "\r\n")
    ),
    "hex": lambda s: s.encode().hex(),
    "hex wrapped (xxd -p)": lambda s: "\n".join(textwrap.wrap(f"{'z' * 20}{s}".encode().hex(), 60)),
    "HEX": lambda s: s.encode().hex().upper(),
    "url": lambda s: quote(s, safe=""),
    "url (path)": quote,
    "url (form)": quote_plus,
    "json": lambda s: json.dumps(s)[1:-1],
    "json in a document": lambda s: json.dumps({"auth": {"token": s}}),
    "reversed": lambda s: s[::-1],
}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoded_form_is_masked_in_text(encoding: str) -> None:
    encoded = ENCODINGS[encoding](TOKEN)
    text = f"$ cat ~/.npmrc | {encoding}\n//registry/:_authToken={encoded}\ndone\n"
    redacted = Redactor([TOKEN])(text)
    assert encoded not in redacted
    assert MASK in redacted
    assert redacted.startswith(f"$ cat ~/.npmrc | {encoding}\n") and redacted.endswith("\ndone\n")
    # What is left of the encoding does not decode back to the token.
    assert TOKEN not in redacted and TOKEN[8:24] not in redacted


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoded_form_is_detected_in_bytes(encoding: str) -> None:
    data = b"\x00binary\xff" + ENCODINGS[encoding](TOKEN).encode() + b"\n"
    assert Redactor([TOKEN]).contains_secret(data)
    assert not Redactor(["another-secret-value-42"]).contains_secret(data)


def test_a_wrapped_encoding_added_by_a_diff_is_detected() -> None:
    lines = base64.encodebytes(f"{'x' * 50}{TOKEN}".encode()).decode().splitlines()
    diff = "diff --git a/k b/k\n--- /dev/null\n+++ b/k\n@@ -0,0 +1,3 @@\n" + "".join(
        f"+{line}\n" for line in lines
    )
    assert not any(form in diff for form in encoded_forms(TOKEN)), "only across the lines"
    assert Redactor([TOKEN]).contains_secret(diff.encode())


def test_every_secret_added_later_is_covered_too() -> None:
    redact = Redactor(["sk-test-first-secret-000"])
    redact.add(TOKEN)
    assert redact(base64.b64encode(TOKEN.encode()).decode()) == MASK
    assert redact.contains_secret(TOKEN[::-1].encode())


def test_ordinary_text_and_files_are_left_alone() -> None:
    text = (
        "diff --git a/calc.py b/calc.py\n+def add(a, b):\n+    return a + b\n"
        "base64 of hello: aGVsbG8=; hex: 68656c6c6f; https://example.org/a%20b?q=1+2\n"
    )
    redact = Redactor([TOKEN, "hunter2hunter2"])
    assert redact(text) == text
    assert not redact.contains_secret(text.encode())
    assert not Redactor().contains_secret(text.encode())


def test_short_forms_are_not_masked() -> None:
    assert all(len(form) >= 8 for form in encoded_forms("abcd1234"))
    assert encoded_forms("ab") == set()
    assert "abcd" in encoded_forms("abcd"), "a value itself keeps the old, shorter rule"


def test_a_few_megabytes_are_scanned_fast() -> None:
    rng = random.Random(9)
    secrets = ["".join(rng.choices(string.ascii_letters + string.digits, k=40)) for _ in range(6)]
    redact = Redactor(secrets)
    assert len(redact.forms) > 40
    chunk = "".join(rng.choices(string.ascii_letters + string.digits + " \n", k=1_000_000))
    text = chunk * 4 + base64.b64encode(f"user:{secrets[3]}".encode()).decode()
    started = time.perf_counter()
    redacted = redact(text)
    found = redact.contains_secret(text.encode())
    elapsed = time.perf_counter() - started
    assert found and redacted.endswith(MASK)
    assert elapsed < 2.0, f"{elapsed:.2f} s for 4 MB"

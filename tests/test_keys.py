"""One registry of Redis keys: every `codex:` key is spelled in `app/keys.py`, with its TTL."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_YET: set[str] = set()
"""Modules that still spell a key of their own: none."""


def test_no_module_spells_a_redis_key_of_its_own() -> None:
    spelled = {
        str(path.relative_to(ROOT))
        for folder in ("app", "worker")
        for path in (ROOT / folder).rglob("*.py")
        if re.search(r"""f?["']codex:[a-z]""", path.read_text())
    }
    assert spelled - NOT_YET == {"app/keys.py"}

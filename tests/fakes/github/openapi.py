"""GitHub's documented response examples, loaded once per process.

The OpenAPI description is 13 MB; parsing it takes a noticeable fraction of a second, so it
is read lazily, once, and only the examples the simulator shapes responses from are kept.
Callers get a deep copy they may mutate freely.
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

from .fixtures import OPENAPI_JSON, require

# Example name -> how to get one object out of it (lists hold one item per example).
WANTED: dict[str, bool] = {
    "integration": False,
    "integration-from-manifest": False,
    "installation": False,
    "base-installation": False,
    "installation-token": False,
    "full-repository": False,
    "issue": False,
    "issue-comment": False,
    "label": False,
    "reaction": False,
    "repository-collaborator-permission-response-if-user-has-admin-permissions": False,
    "pull-request": False,
    "pull-request-simple-items": True,
    "pull-request-review-comment-items": True,
    "content-file-response-if-content-is-a-file": False,
    "content-file-response-if-content-is-a-directory": True,
    "git-ref": False,
    "branch-get": False,
}

_lock = threading.Lock()
_cache: dict[str, Any] = {}


def _load() -> dict[str, Any]:
    with _lock:
        if not _cache:
            with require(OPENAPI_JSON).open("rb") as f:
                examples = json.load(f)["components"]["examples"]
            for name, is_list in WANTED.items():
                value = examples[name]["value"]
                _cache[name] = value[0] if is_list else value
        return _cache


def example(name: str) -> dict[str, Any]:
    """A fresh copy of GitHub's documented example object `name`."""
    value: dict[str, Any] = copy.deepcopy(_load()[name])
    return value

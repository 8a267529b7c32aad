"""GitHub's App manifest flow, the parts that decide: the manifest, where to post it, `.env` text.

Pure functions (no I/O) so they are tested with plain data; app/setup_mode.py does the I/O.
The manifest is `app.yml` (probot's convention) with the URLs of this deployment written in:
GitHub delivers webhooks to `PUBLIC_URL/webhook` (or `WEBHOOK_PROXY_URL`, for local
development) and sends the person back to `PUBLIC_URL/setup/callback` with a one-time code.
[docs.github.com: registering a GitHub App from a manifest]
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

CALLBACK_PATH = "/setup/callback"
WEBHOOK_PATH = "/webhook"
MANIFEST_KEYS = (
    "name",
    "url",
    "description",
    "public",
    "default_events",
    "default_permissions",
    "request_oauth_on_install",
    "setup_on_update",
    "setup_url",
    "callback_urls",
)
"""The keys of `app.yml` that GitHub's manifest takes as they are."""


def build_manifest(
    app_yml: dict[str, Any], public_url: str, webhook_proxy_url: str | None = None
) -> dict[str, Any]:
    """The manifest GitHub creates the App from: `app.yml`, with this deployment's URLs."""
    base = public_url.rstrip("/")
    manifest = {key: app_yml[key] for key in MANIFEST_KEYS if key in app_yml}
    manifest["url"] = base
    manifest["hook_attributes"] = {
        **app_yml.get("hook_attributes", {}),
        "url": webhook_proxy_url or base + WEBHOOK_PATH,
        "active": True,
    }
    manifest["redirect_url"] = base + CALLBACK_PATH
    return manifest


def new_app_url(github_url: str, org: str | None, state: str) -> str:
    """GitHub's "register a new App" page the manifest is posted to: the person's own, or an
    organization's (`GITHUB_ORG`), on GitHub.com or an Enterprise Server (`GITHUB_URL`)."""
    owner = f"/organizations/{quote(org, safe='')}" if org else ""
    return f"{github_url.rstrip('/')}{owner}/settings/apps/new?{urlencode({'state': state})}"


_PLAIN = re.compile(r"[A-Za-z0-9_./:@+=,-]*")
_LINE_KEY = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def env_value(value: str) -> str:
    """`value` as both bash (`source .env`) and python-dotenv read it back, unchanged."""
    if _PLAIN.fullmatch(value):
        return value
    if "'" in value or "\n" in value or "\r" in value:
        raise ValueError("a value with a quote or a line break cannot be written to .env")
    return f"'{value}'"


def merge_env(existing: str, values: dict[str, str], drop: tuple[str, ...] = ()) -> str:
    """`existing` .env text with `values` set: their old lines and those of `drop` go, every
    other line (comments, other settings) stays as it was, and the new values are appended."""
    replaced = set(values) | set(drop)
    kept = []
    for line in existing.splitlines():
        match = _LINE_KEY.match(line)
        if match is None or match.group(1) not in replaced:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    added = [f"{key}={env_value(value)}" for key, value in values.items()]
    header = ["", "# Written by setup mode (the GitHub App created from app.yml)"]
    return "\n".join([*kept, *(header if kept else header[1:]), *added]) + "\n"

"""GitHub's App manifest flow: the "new App" web page and the code's conversion.

On GitHub the person's browser posts the manifest (form field `manifest`) to
`/settings/apps/new?state=...` (or `/organizations/ORG/settings/apps/new`); they confirm, and
GitHub redirects to the manifest's `redirect_url` with a one-time `code` and the `state`. The
simulator's page confirms at once. `POST /app-manifests/{code}/conversions` (no auth) then
hands over the App: the simulator hosts one App, so it is that App (its id and key, which its
JWT checks accept), named and permissioned as the manifest says, with fresh secrets.
[docs.github.com: registering a GitHub App from a manifest]
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from .errors import ApiError
from .openapi import example
from .routing import Call, Reply
from .shapes import node_id
from .state import State

NEW_APP_PAGE = re.compile(r"(?:/organizations/(?P<org>[^/]+))?/settings/apps/new")
REQUIRED = ("name", "url", "hook_attributes", "redirect_url")
PERMISSIONS = frozenset({"contents", "issues", "pull_requests", "metadata", "workflows", "checks"})


def new_app_page(state: State, query: str, body: bytes) -> tuple[int, dict[str, str], str]:
    """The browser's post of the manifest: a redirect back with a code, or GitHub's complaint
    as a page (status, headers, text)."""
    try:
        raw = parse_qs(body.decode(), strict_parsing=True)["manifest"][0]
        manifest = json.loads(raw)
    except (ValueError, KeyError, UnicodeDecodeError):
        return 422, {}, "Invalid GitHub App configuration: the manifest is not JSON"
    problem = check(manifest)
    if problem:
        return 422, {}, f"Invalid GitHub App configuration: {problem}"
    code = secrets.token_hex(10)
    with state.lock:
        state.manifest_codes[code] = manifest
    back = {"code": code, **{k: v[0] for k, v in parse_qs(query).items() if k == "state"}}
    separator = "&" if urlsplit(manifest["redirect_url"]).query else "?"
    return 302, {"Location": f"{manifest['redirect_url']}{separator}{urlencode(back)}"}, ""


def check(manifest: Any) -> str | None:
    if not isinstance(manifest, dict):
        return "the manifest must be an object"
    missing = [key for key in REQUIRED if key not in manifest]
    if missing:
        return f"missing {', '.join(missing)}"
    if not isinstance(manifest["hook_attributes"], dict) or not manifest["hook_attributes"].get(
        "url"
    ):
        return "hook_attributes.url is required"
    unknown = set(manifest.get("default_permissions", {})) - PERMISSIONS
    if unknown:
        return f"unknown permissions {sorted(unknown)}"
    return None


def convert(call: Call) -> Reply:
    with call.state.lock:
        manifest = call.state.manifest_codes.pop(call.args[0], None)
    if manifest is None:
        raise ApiError(404, "Not Found")
    app = call.state.app
    t = example("integration-from-manifest")
    t.update(
        id=app.app_id,
        slug=app.slug,
        node_id=node_id("Integration", app.app_id),
        name=manifest["name"],
        description=manifest.get("description"),
        external_url=manifest["url"],
        html_url=f"{call.state.base_url}/apps/{app.slug}",
        permissions=dict(manifest.get("default_permissions", {})),
        events=list(manifest.get("default_events", [])),
        client_id=f"Iv1.sim{app.app_id:010d}",
        client_secret=secrets.token_hex(20),
        webhook_secret=secrets.token_hex(20),
        pem=app.private_key_pem,
    )
    return Reply(201, t)

"""The REST dispatch machinery: route table entries, the call a handler sees, its reply.

A route is (method, path template, what auth it needs, handler). Templates read like
GitHub's docs: `{n}` is a number, `{x}` one path segment, `{x+}` the rest of the path.
Routes under `/repos/{owner}/{repo}` get the repository resolved (404 if unknown) and the
caller's token checked against it before the handler runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from .auth import Caller, identify, require_access, require_jwt, require_token
from .errors import ApiError
from .records import Repo, Token
from .state import State


@dataclass
class Call:
    state: State
    method: str
    path: str
    query: dict[str, str]
    body: Any
    caller: Caller
    args: tuple[str, ...]
    repo_or_none: Repo | None = None
    token: Token | None = None

    @property
    def repo(self) -> Repo:
        assert self.repo_or_none is not None, "route is not under /repos/{owner}/{repo}"
        return self.repo_or_none

    def fields(self) -> dict[str, Any]:
        """The JSON object body (empty when none was sent)."""
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise ApiError(400, "Problems parsing JSON")
        return self.body

    def number(self, index: int = 0) -> int:
        return int(self.args[index])


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Call], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    need: str  # "none" | "jwt" | "token" | "<perm>[|<perm>]:<level>" (repo routes)
    handler: Handler
    under_repo: bool


_PLACEHOLDER = re.compile(r"\{(\w+)([+]?)\}")


def route(method: str, template: str, need: str, handler: Handler) -> Route:
    def group(m: re.Match[str]) -> str:
        if m.group(2) == "+":
            return "(.+)"
        return r"(\d+)" if m.group(1) in ("n", "id") else "([^/]+)"

    pattern = re.compile(_PLACEHOLDER.sub(group, template))
    return Route(method, pattern, need, handler, template.startswith("/repos/{owner}/{repo}"))


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "Problems parsing JSON") from None


def dispatch(
    state: State,
    routes: Sequence[Route],
    method: str,
    path: str,
    query_string: str,
    raw_body: bytes,
    authorization: str | None,
) -> tuple[Reply, str]:
    """Run the matching handler; returns (reply, auth kind). Errors become replies."""
    caller = identify(state, authorization)
    try:
        if caller.kind == "invalid":
            raise ApiError(401, caller.error)
        reply = _run(state, routes, method, path, query_string, raw_body, caller)
    except ApiError as error:
        reply = Reply(error.status, error.body())
    return reply, caller.kind


def _run(
    state: State,
    routes: Sequence[Route],
    method: str,
    path: str,
    query_string: str,
    raw_body: bytes,
    caller: Caller,
) -> Reply:
    for candidate in routes:
        if candidate.method != method:
            continue
        match = candidate.pattern.fullmatch(path)
        if match is None:
            continue
        args = tuple(unquote(g) for g in match.groups())
        call = Call(state, method, path, dict(parse_qsl(query_string)), None, caller, args)
        if caller.kind == "none" and candidate.need != "none":
            raise ApiError(401, "Requires authentication")
        if candidate.need == "jwt":
            require_jwt(caller)
        if candidate.under_repo:
            repo = state.repos.get(f"{args[0]}/{args[1]}")
            if repo is None:
                raise ApiError(404, "Not Found")
            call.repo_or_none, call.args = repo, args[2:]
            if candidate.need != "jwt":
                call.token = require_access(caller, repo, candidate.need)
        elif candidate.need == "token":
            call.token = require_token(caller)
        call.body = parse_json(raw_body)
        return candidate.handler(call)
    raise ApiError(404, "Not Found")


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ApiError(422, f"Invalid number: {raw!r}") from None


def paginate(call: Call, items: list[Any]) -> Reply:
    """GitHub-style page/per_page with a Link header (githubkit's paginator follows it)."""
    per_page = max(1, min(100, _int(call.query.get("per_page"), 30)))
    page = max(1, _int(call.query.get("page"), 1))
    last = max(1, -(-len(items) // per_page))
    headers = {}
    links = []
    url = f"{call.state.base_url}{call.path}"
    others = {k: v for k, v in call.query.items() if k not in ("page", "per_page")}
    extra = "".join(f"&{k}={v}" for k, v in others.items())
    if page < last:
        links.append(f'<{url}?per_page={per_page}&page={page + 1}{extra}>; rel="next"')
        links.append(f'<{url}?per_page={per_page}&page={last}{extra}>; rel="last"')
    if page > 1:
        links.append(f'<{url}?per_page={per_page}&page=1{extra}>; rel="first"')
        links.append(f'<{url}?per_page={per_page}&page={page - 1}{extra}>; rel="prev"')
    if links:
        headers["Link"] = ", ".join(links)
    start = (page - 1) * per_page
    return Reply(200, items[start : start + per_page], headers)

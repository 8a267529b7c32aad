"""Git smart HTTP in front of the bare repos, through `git http-backend` (CGI).

Like github.com: Basic auth with user `x-access-token` and a live installation token is
required for every request (401 + `WWW-Authenticate: Basic realm="GitHub"` otherwise); a
push additionally needs `contents: write`, and touching `.github/workflows/` needs the
`workflows` permission (enforced by the repo's pre-receive hook). Pushes are recorded, and
pull requests follow them (`refs/pull/<n>/head` included: fetchable, never pushable).
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from . import gitrepo, pullrefs
from .auth import covers, live_token
from .records import PushRecord, Token
from .state import State
from .wire import read_body, send

CHALLENGE = {"WWW-Authenticate": 'Basic realm="GitHub"', "Content-Type": "text/plain"}


def _basic_token(header: str | None) -> str | None:
    scheme, _, credential = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(credential.strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return password if user == "x-access-token" else None


def serve(
    handler: BaseHTTPRequestHandler,
    state: State,
    owner: str,
    name: str,
    rest: str,
    query: str,
    record: Callable[[int, str], None],
) -> None:
    """Answer one git request. `record(status, auth kind)` logs it before the reply goes
    out, so a test that reads `sim.requests` / `sim.pushes` after git exits sees it."""
    body = read_body(handler)
    full_name = f"{owner}/{name}"
    value = _basic_token(handler.headers.get("Authorization"))
    token = live_token(state, value) if value else None
    kind = (
        "installation" if token else ("invalid" if handler.headers.get("Authorization") else "none")
    )

    def reply(status: int, payload: bytes, headers: dict[str, str]) -> None:
        record(status, kind)
        send(handler, status, payload, headers)

    if token is None:
        reply(401, b"Invalid username or token.\n", CHALLENGE)
        return
    repo = state.repos.get(full_name)
    if repo is None or not covers(token, repo):
        reply(404, b"Repository not found.\n", {"Content-Type": "text/plain"})
        return
    pushing = rest == "/git-receive-pack" or "git-receive-pack" in parse_qs(query).get(
        "service", []
    )
    if not token.allows("contents", "write" if pushing else "read"):
        message = f"Permission to {full_name}.git denied to {state.app.bot_login}.\n"
        reply(403, message.encode(), {"Content-Type": "text/plain"})
        return
    if not pushing:  # what a fetch sees: refs/pull/<n>/head up to date (also for forks' heads)
        pullrefs.sync_repo(state, full_name)
    before = gitrepo.refs(repo.path) if rest == "/git-receive-pack" else {}
    status, payload, headers = _run_backend(
        handler, state, token, f"/{owner}/{name}.git{rest}", query, body
    )
    if rest == "/git-receive-pack" and body != b"0000":  # "0000": git's auth probe
        after = gitrepo.refs(repo.path)
        updates = tuple(
            (ref, before.get(ref, ""), after.get(ref, ""))
            for ref in sorted(set(before) | set(after))
            if before.get(ref) != after.get(ref)
        )
        with state.lock:
            state.pushes.append(PushRecord(full_name, token.token, updates, status))
        if updates:
            pullrefs.sync_repo(state, full_name)
    reply(status, payload, headers)


def _run_backend(
    handler: BaseHTTPRequestHandler,
    state: State,
    token: Token,
    path_info: str,
    query: str,
    body: bytes,
) -> tuple[int, bytes, dict[str, str]]:
    """Run `git http-backend` (CGI) and parse its answer; nothing is sent yet."""
    env = gitrepo.git_env(
        {
            "GIT_PROJECT_ROOT": str(state.root / "git"),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path_info,
            "QUERY_STRING": query,
            "REQUEST_METHOD": handler.command,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": state.app.bot_login,
            "REMOTE_ADDR": handler.client_address[0],
            "HTTP_CONTENT_ENCODING": handler.headers.get("Content-Encoding", ""),
            "HTTP_GIT_PROTOCOL": handler.headers.get("Git-Protocol", ""),
            "SIM_TOKEN_CAN_WORKFLOWS": "1" if token.allows("workflows", "write") else "0",
        }
    )
    env = {k: v for k, v in env.items() if v != "" or k in ("QUERY_STRING", "CONTENT_LENGTH")}
    done = subprocess.run(
        ["git", "http-backend"],
        input=body,
        capture_output=True,
        env=env,
        timeout=300,
        check=False,
        cwd=os.fspath(state.root),
    )
    head, sep, payload = done.stdout.partition(b"\r\n\r\n")
    if not sep:
        head, sep, payload = done.stdout.partition(b"\n\n")
    status, headers = 200, {}
    for line in head.decode("latin-1").splitlines():
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = int(value.strip().split(" ", 1)[0])
        elif key and key.lower() != "content-length":
            headers[key.strip()] = value.strip()
    if done.returncode != 0 and not sep:
        status, payload = 500, done.stderr
    return status, payload, headers

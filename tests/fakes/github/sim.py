"""`GitHubSim`: the test-facing handle on the simulated GitHub.

Tests arrange the world (repositories, issues, comments, permissions, faults), point the app
at `sim.url`, and assert on what the app did (comments, reactions, pull requests, pushes,
requests). The server runs in a daemon thread; the app and worker may be other processes.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from . import gitrepo, hookshot, pullrefs, webhooks
from .auth import mint
from .records import (
    ROLES,
    AppConfig,
    Delivery,
    Fault,
    PushRecord,
    ReactionRecord,
    RecordedRequest,
    Repo,
    Token,
    now,
)
from .server import SimServer
from .state import State

DEFAULT_PERMISSIONS = {
    "metadata": "read",
    "contents": "write",
    "issues": "write",
    "pull_requests": "write",
}
DEFAULT_EVENTS = ["issues", "issue_comment", "pull_request", "pull_request_review_comment"]


@functools.cache
def _keypair(app_id: int) -> tuple[str, str]:
    """One RSA key per App id per process (generating keys is the slow part of setup)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


class GitHubSim:
    """A GitHub (REST + git smart HTTP + webhook sender) on 127.0.0.1, hosting one App."""

    def __init__(
        self,
        root: Path,
        app_id: int = 4242,
        *,
        slug: str = "codex-app",
        permissions: Mapping[str, str] | None = None,
        token_length: int = 36,
        host: str = "127.0.0.1",
    ) -> None:
        """`host`: the address to listen on (`0.0.0.0` for containers on a Docker bridge);
        `url` names 127.0.0.1 whatever it is."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        private, public = _keypair(app_id)
        app = AppConfig(
            app_id,
            slug,
            "Codex",
            private,
            public,
            dict(permissions or DEFAULT_PERMISSIONS),
            list(DEFAULT_EVENTS),
            token_length,
        )
        self._state = State(self.root, "", app)
        self._server = SimServer(self._state, host)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._state.base_url = self.url
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> GitHubSim:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="github-sim", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> GitHubSim:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the App ---------------------------------------------------------------------------
    @property
    def app_id(self) -> int:
        return self._state.app.app_id

    @property
    def private_key_pem(self) -> str:
        return self._state.app.private_key_pem

    @property
    def bot_login(self) -> str:
        return self._state.app.bot_login

    def installation_id(self, owner: str) -> int:
        return self._state.installation_by_owner[owner]

    # -- arranging the world ---------------------------------------------------------------
    def create_repo(
        self,
        full_name: str,
        files: Mapping[str, str],
        default_branch: str = "main",
        private: bool = False,
    ) -> Repo:
        owner, name = full_name.split("/")
        path = self.root / "git" / owner / f"{name}.git"
        gitrepo.create_bare(path, files, default_branch)
        return self._state.add_repo(full_name, path, default_branch, private)

    def create_fork(self, full_name: str, fork_owner: str, name: str | None = None) -> str:
        """`fork_owner`'s fork of `full_name` (a bare copy of its branches); returns its full
        name. The App is not installed there: installation tokens can neither read nor push
        it, and it has no installation. Pull requests may take their head from it (see
        `create_pull`'s `head_repo`)."""
        base = self._state.repo(full_name)
        fork_name = f"{fork_owner}/{name or base.name}"
        if fork_name in self._state.repos:
            raise ValueError(f"repository {fork_name} already exists")
        path = self.root / "git" / fork_owner / f"{name or base.name}.git"
        gitrepo.clone_bare(base.path, path)
        self._state.add_repo(
            fork_name, path, base.default_branch, base.private, installed=False, parent=full_name
        )
        return fork_name

    def clone_url(self, full_name: str) -> str:
        return f"{self.url}/{full_name}.git"

    def commit(
        self,
        full_name: str,
        branch: str,
        files: Mapping[str, str | None],
        message: str = "Update files",
        base: str | None = None,
    ) -> str:
        """Commit on `branch` (created from `base`, default: the default branch); returns sha.
        Works on forks too; open pull requests with their head on `branch` follow it."""
        repo = self._state.repo(full_name)
        parent = gitrepo.branch_sha(repo.path, branch) or gitrepo.branch_sha(
            repo.path, base or repo.default_branch
        )
        sha = gitrepo.commit_files(repo.path, branch, files, message, parent)
        pullrefs.sync_repo(self._state, full_name)
        return sha

    def create_issue(
        self,
        full_name: str,
        title: str,
        body: str,
        user: str = "octocat",
        labels: Iterable[str] = (),
    ) -> int:
        issue = self._state.new_issue(self._state.repo(full_name), title, body, user)
        self._state.add_labels(issue, list(labels))
        return issue.number

    def create_pull(
        self,
        full_name: str,
        title: str,
        head: str,
        base: str | None = None,
        body: str = "",
        user: str | None = None,
        draft: bool = False,
        head_repo: str | None = None,
        maintainer_can_modify: bool = False,
    ) -> int:
        """A pull request in `full_name` opened by `user` (the head branch must exist: see
        `commit`). Its head may be in a fork (`head_repo`, or `head` as "owner:branch"); then
        `user` defaults to the fork's owner (else "octocat"), and `maintainer_can_modify` is
        the "allow edits by maintainers" box (always false without a fork, as on GitHub).
        `refs/pull/<n>/head` in `full_name` points at the head commit from then on."""
        state = self._state
        repo = state.repo(full_name)
        owner, _, head = head.rpartition(":")
        if head_repo is None and owner:
            found = pullrefs.fork_of(state, repo, owner)
            if found is None:
                raise ValueError(f"{owner} has no fork of {full_name}")
            head_repo = found.full_name
        source = state.repo(head_repo) if head_repo is not None else repo
        if pullrefs.network(state, source) != pullrefs.network(state, repo):
            raise ValueError(f"{source.full_name} is not in {full_name}'s fork network")
        fork = source.full_name if source is not repo else None
        base = base or repo.default_branch
        head_sha = gitrepo.branch_sha(source.path, head)
        base_sha = gitrepo.branch_sha(repo.path, base)
        if head_sha is None or base_sha is None:
            raise ValueError(
                f"branches {head!r} in {source.full_name} and {base!r} in {full_name} must exist"
            )
        pull = state.new_pull_info(
            head,
            base,
            draft,
            head_sha,
            base_sha,
            head_repo=fork,
            maintainer_can_modify=maintainer_can_modify and fork is not None,
        )
        author = user or (source.owner if fork is not None else "octocat")
        issue = state.new_issue(repo, title, body, author, pull=pull)
        pullrefs.sync(state, [issue])
        return issue.number

    def add_comment(self, full_name: str, number: int, body: str, user: str) -> int:
        issue = self._state.issue(full_name, number)
        return self._state.add_comment(issue, body, user).id

    def add_review_comment(
        self, full_name: str, pull_number: int, body: str, user: str, path: str, line: int
    ) -> int:
        """A review comment on `line` (new side) of `path` at the pull request's head, with
        the `diff_hunk` GitHub would store."""
        issue = self._state.issue(full_name, pull_number)
        if issue.pull is None:
            raise ValueError(f"{full_name}#{pull_number} is not a pull request")
        return webhooks.add_review_comment(self._state, issue, body, user, path, line).id

    def set_permission(self, full_name: str, user: str, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        with self._state.lock:
            self._state.repo(full_name).roles[user] = role
            self._state.user(user)

    def close_issue(self, full_name: str, number: int, reason: str = "completed") -> None:
        """Close an issue (or pull request) as its author or a maintainer would."""
        issue = self._state.issue(full_name, number)
        with self._state.lock:
            moment = now()
            issue.state, issue.closed_at, issue.updated_at = "closed", moment, moment
            issue.state_reason = reason if issue.pull is None else None

    def add_label(self, full_name: str, number: int, label: str) -> None:
        self._state.add_labels(self._state.issue(full_name, number), [label])

    def fail(
        self,
        method: str,
        path_regex: str,
        status: int = 502,
        times: int = 1,
        *,
        after: bool = False,
    ) -> None:
        """The next `times` requests matching (method or "*", regex searched in the path)
        get `status` with a GitHub-style JSON error body; with `after`, once they took effect."""
        fault = Fault(method.upper(), re.compile(path_regex), status, times, after)
        with self._state.lock:
            self._state.faults.append(fault)

    def issue_token(
        self,
        owner: str,
        repositories: list[str] | None = None,
        permissions: Mapping[str, str] | None = None,
    ) -> str:
        """An installation token minted directly (as POST .../access_tokens would)."""
        installation = self.installation_id(owner.split("/")[0])
        perms = dict(permissions) if permissions is not None else None
        length = self._state.app.token_length
        return mint(self._state, installation, repositories, perms, length).token

    def set_token_lifetime(self, lifetime: timedelta) -> None:
        """Installation tokens minted from now on live `lifetime` instead of an hour."""
        with self._state.lock:
            self._state.app.token_lifetime = lifetime

    def expire_token(self, token: str) -> None:
        with self._state.lock:
            self._state.tokens[token].expires_at = now() - timedelta(seconds=1)

    # -- observing -------------------------------------------------------------------------
    def issue(self, full_name: str, number: int) -> dict[str, Any]:
        return self._state.issue(full_name, number).snapshot()

    def _comments(self, full_name: str, number: int, kind: str) -> list[dict[str, Any]]:
        with self._state.lock:
            found = [
                c
                for c in self._state.comments.values()
                if c.kind == kind and (c.full_name, c.number) == (full_name, number)
            ]
        return [c.snapshot() for c in sorted(found, key=lambda c: c.id)]

    def comments(self, full_name: str, number: int) -> list[dict[str, Any]]:
        """Issue comments, oldest first: id, body, user (login), created_at, updated_at."""
        return self._comments(full_name, number, "issue")

    def review_comments(self, full_name: str, number: int) -> list[dict[str, Any]]:
        return self._comments(full_name, number, "review")

    def reactions(self, full_name: str) -> list[ReactionRecord]:
        with self._state.lock:
            return [
                ReactionRecord(r.subject, r.content, r.user)
                for r in self._state.reactions
                if r.full_name == full_name
            ]

    def pulls(self, full_name: str) -> list[dict[str, Any]]:
        with self._state.lock:
            found = sorted(
                (
                    i
                    for (name, _), i in self._state.issues.items()
                    if name == full_name and i.pull is not None
                ),
                key=lambda i: i.number,
            )
            return [
                {
                    "number": i.number,
                    "title": i.title,
                    "body": i.body,
                    "head": i.pull.head,
                    "base": i.pull.base,
                    "draft": i.pull.draft,
                    "state": i.state,
                    "user": i.user,
                    "labels": list(i.labels),
                    "head_sha": i.pull.head_sha,
                    "head_repo": i.pull.head_repo or i.full_name,
                    "maintainer_can_modify": i.pull.maintainer_can_modify,
                }
                for i in found
                if i.pull is not None
            ]

    def git(self, full_name: str, *args: str) -> str:
        return gitrepo.run_git(self._state.repo(full_name).path, *args)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def pushes(self) -> list[PushRecord]:
        with self._state.lock:
            return list(self._state.pushes)

    @property
    def deliveries(self) -> list[Delivery]:
        with self._state.lock:
            return list(self._state.deliveries)

    @property
    def tokens_issued(self) -> list[str]:
        """Every installation token handed out, oldest first (see `token_info`)."""
        with self._state.lock:
            return [t.token for t in self._state.tokens_in_order]

    @property
    def tokens_revoked(self) -> list[str]:
        """Tokens revoked with `DELETE /installation/token`."""
        with self._state.lock:
            return [t.token for t in self._state.tokens_in_order if t.revoked]

    def token_info(self, token: str) -> Token:
        """What a token was issued with: installation, repositories, permissions, expiry."""
        return self._state.tokens[token]

    @property
    def repos(self) -> dict[str, Repo]:
        """Repositories by full name."""
        with self._state.lock:
            return dict(self._state.repos)

    # -- webhooks --------------------------------------------------------------------------
    def webhook_payload(
        self,
        event: str,
        action: str | None,
        full_name: str,
        *,
        sender: str,
        number: int | None = None,
        label: str | None = None,
        comment_body: str | None = None,
        comment_id: int | None = None,
        pull: bool = False,
        path: str | None = None,
        line: int | None = None,
        previous_body: str | None = None,
    ) -> dict[str, Any]:
        """A payload for `event`/`action` built from GitHub's example and the simulator's
        state, with the change it reports applied (see `webhooks`): `label` for (un)labeled,
        `comment_body` without `comment_id` for a new comment (`path`/`line` place a review
        comment), `previous_body` for an edit's `changes`. A `sender` ending in `[bot]` is a
        Bot."""
        return webhooks.payload(
            self._state,
            event,
            action,
            full_name,
            sender=sender,
            number=number,
            label=label,
            comment_body=comment_body,
            comment_id=comment_id,
            pull=pull,
            path=path,
            line=line,
            previous_body=previous_body,
        )

    def example_payloads(self, event: str) -> list[tuple[str | None, dict[str, Any]]]:
        return webhooks.examples(event)

    def deliver(
        self,
        url: str,
        secret: str,
        event: str,
        payload: dict[str, Any] | bytes,
        delivery_id: str | None = None,
    ) -> httpx.Response:
        response, delivery = hookshot.post(
            url, secret, event, payload, delivery_id, self._state.app.app_id
        )
        with self._state.lock:
            self._state.deliveries.append(Delivery(event, delivery, response.status_code))
        return response

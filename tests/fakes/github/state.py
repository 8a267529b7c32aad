"""The simulator's world: users, repositories, issues, pull requests, comments, tokens.

One object, one lock. The HTTP handlers (in server threads) and the test-facing `GitHubSim`
both change it through the small methods here, so ids and numbers are allocated in one place
and follow GitHub's rules (issues and pull requests share one number sequence per repository;
comment ids are global).
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any, Literal

from .records import (
    AppConfig,
    Comment,
    Delivery,
    Fault,
    Installation,
    Issue,
    NotFoundError,
    PullInfo,
    PushRecord,
    Reaction,
    RecordedRequest,
    Repo,
    Token,
    User,
    now,
)


class State:
    """Everything the simulator knows; take `lock` around multi-step changes."""

    def __init__(self, root: Path, base_url: str, app: AppConfig) -> None:
        self.root = root
        self.base_url = base_url
        self.app = app
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.repos: dict[str, Repo] = {}
        self.installations: dict[int, Installation] = {}
        self.installation_by_owner: dict[str, int] = {}
        self.issues: dict[tuple[str, int], Issue] = {}
        self.comments: dict[int, Comment] = {}
        self.reactions: list[Reaction] = []
        self.tokens: dict[str, Token] = {}
        self.tokens_in_order: list[Token] = []
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self.pushes: list[PushRecord] = []
        self.deliveries: list[Delivery] = []
        self.manifest_codes: dict[str, dict[str, Any]] = {}
        """App manifests posted to the "new App" page, by the one-time code handed back."""
        self._user_ids = itertools.count(1001)
        self._repo_ids = itertools.count(100_001)
        self._issue_ids = itertools.count(2_000_001)
        self._pull_ids = itertools.count(3_000_001)
        self._comment_ids = itertools.count(4_000_001)
        self._reaction_ids = itertools.count(5_000_001)
        self._label_ids = itertools.count(6_000_001)
        self._installation_ids = itertools.count(1000)
        self.user(app.bot_login)

    # -- lookups ---------------------------------------------------------------------------
    def user(self, login: str) -> User:
        with self.lock:
            found = self.users.get(login)
            if found is None:
                if login == self.app.bot_login:
                    found = User(login, self.app.bot_id, "Bot")
                else:
                    kind: Literal["User", "Bot"] = "Bot" if login.endswith("[bot]") else "User"
                    found = User(login, next(self._user_ids), kind)
                self.users[login] = found
            return found

    def repo(self, full_name: str) -> Repo:
        try:
            return self.repos[full_name]
        except KeyError:
            raise NotFoundError(f"no repository {full_name}") from None

    def issue(self, full_name: str, number: int) -> Issue:
        try:
            return self.issues[(full_name, number)]
        except KeyError:
            raise NotFoundError(f"no issue or pull request {full_name}#{number}") from None

    def comment(self, comment_id: int, kind: str = "issue") -> Comment:
        found = self.comments.get(comment_id)
        if found is None or found.kind != kind:
            raise NotFoundError(f"no {kind} comment {comment_id}")
        return found

    def role(self, repo: Repo, login: str) -> str:
        if login in repo.roles:
            return repo.roles[login]
        if login == repo.owner:
            return "admin"
        return "none" if repo.private else "read"

    def author_association(self, repo: Repo, login: str) -> str:
        if login == repo.owner:
            return "OWNER"
        return "COLLABORATOR" if repo.roles.get(login, "none") != "none" else "NONE"

    # -- changes ---------------------------------------------------------------------------
    def add_repo(
        self,
        full_name: str,
        path: Path,
        default_branch: str,
        private: bool,
        *,
        installed: bool = True,
        parent: str | None = None,
    ) -> Repo:
        """Register a bare repo; `installed` puts it in its owner's installation of the App
        (made on first use, covering all that owner's installed repositories)."""
        owner, name = full_name.split("/")
        with self.lock:
            if full_name in self.repos:
                raise ValueError(f"repository {full_name} already exists")
            self.user(owner)
            installation_id = self.installation_by_owner.get(owner) if installed else None
            if installed and installation_id is None:
                installation_id = next(self._installation_ids)
                self.installations[installation_id] = Installation(
                    installation_id, owner, dict(self.app.permissions), now()
                )
                self.installation_by_owner[owner] = installation_id
            repo = Repo(
                owner,
                name,
                next(self._repo_ids),
                path,
                default_branch,
                private,
                installation_id,
                now(),
                parent=parent,
            )
            self.repos[full_name] = repo
            return repo

    def new_issue(
        self, repo: Repo, title: str, body: str | None, user: str, pull: PullInfo | None = None
    ) -> Issue:
        with self.lock:
            self.user(user)
            number = repo.next_number
            repo.next_number += 1
            moment = now()
            issue = Issue(
                repo.full_name,
                number,
                next(self._issue_ids),
                title,
                body,
                user,
                moment,
                moment,
                pull=pull,
            )
            self.issues[(repo.full_name, number)] = issue
            return issue

    def new_pull_info(
        self,
        head: str,
        base: str,
        draft: bool,
        head_sha: str,
        base_sha: str,
        head_repo: str | None = None,
        maintainer_can_modify: bool = False,
    ) -> PullInfo:
        return PullInfo(
            next(self._pull_ids),
            head,
            base,
            draft,
            head_sha,
            base_sha,
            head_repo=head_repo,
            maintainer_can_modify=maintainer_can_modify,
        )

    def pulls_touching(self, full_name: str) -> list[Issue]:
        """Pull requests whose base or head is in `full_name`, by (repo, number)."""
        with self.lock:
            return [
                issue
                for (name, _), issue in sorted(self.issues.items())
                if issue.pull is not None and full_name in (name, issue.pull.head_repo or name)
            ]

    def add_comment(
        self,
        issue: Issue,
        body: str,
        user: str,
        kind: Literal["issue", "review"] = "issue",
        path: str | None = None,
        line: int | None = None,
        commit_id: str | None = None,
        diff_hunk: str | None = None,
    ) -> Comment:
        with self.lock:
            self.user(user)
            moment = now()
            comment = Comment(
                next(self._comment_ids),
                issue.full_name,
                issue.number,
                body,
                user,
                moment,
                moment,
                kind,
                path,
                line,
                commit_id,
                diff_hunk,
            )
            self.comments[comment.id] = comment
            return comment

    def label_id(self, repo: Repo, name: str) -> int:
        with self.lock:
            if name not in repo.labels:
                repo.labels[name] = next(self._label_ids)
            return repo.labels[name]

    def add_labels(self, issue: Issue, names: list[str]) -> None:
        with self.lock:
            repo = self.repo(issue.full_name)
            for name in names:
                self.label_id(repo, name)
                if name not in issue.labels:
                    issue.labels.append(name)
            issue.updated_at = now()

    def react(self, repo: Repo, subject: str, content: str, user: str) -> tuple[Reaction, bool]:
        """Add a reaction; returns (reaction, created) — GitHub answers 200 for a repeat."""
        with self.lock:
            for existing in self.reactions:
                if (existing.full_name, existing.subject, existing.content, existing.user) == (
                    repo.full_name,
                    subject,
                    content,
                    user,
                ):
                    return existing, False
            self.user(user)
            reaction = Reaction(
                next(self._reaction_ids), repo.full_name, subject, content, user, now()
            )
            self.reactions.append(reaction)
            return reaction, True

    def add_token(self, token: Token) -> None:
        with self.lock:
            self.tokens[token.token] = token
            self.tokens_in_order.append(token)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if (
                    fault.remaining > 0
                    and fault.method in ("*", method)
                    and fault.pattern.search(path)
                ):
                    fault.remaining -= 1
                    return fault
            return None

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(request)

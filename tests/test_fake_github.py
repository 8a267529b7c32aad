"""The GitHub simulator speaks GitHub's wire format: githubkit, unmodified, parses every answer.

Every endpoint is called through githubkit pointed at `sim.url` and its `.parsed_data` read;
auth failures, token scope, git over smart HTTP, webhook payloads, signing and delivery, and
fault injection are checked against GitHub's documented behaviour.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import RequestError, RequestFailed
from githubkit.webhooks import parse_obj

from tests.fakes.github import GitHubSim, MissingFixturesError, sign
from tests.fakes.github.fixtures import require
from tests.fakes.github.gitrepo import git_env

REPO = "octo/hello"
FILES = {"README.md": "# hello\n", "src/app.py": "print('hi')\n", ".github/codex.yml": "a: 1\n"}
WRITE = {"contents": "write", "issues": "write", "pull_requests": "write"}


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[GitHubSim]:
    with GitHubSim(tmp_path / "github") as running:
        running.create_repo(REPO, FILES)
        yield running


def app_client(sim: GitHubSim, key: str | None = None) -> GitHub[AppAuthStrategy]:
    # githubkit caches JWTs and tokens in a process-wide store keyed by app id: one per sim.
    return GitHub(
        AppAuthStrategy(sim.app_id, key or sim.private_key_pem),
        base_url=sim.url,
        cache_strategy=MemCacheStrategy(),
        auto_retry=False,
        timeout=10,
    )


def installation_client(
    sim: GitHubSim,
    repositories: list[str] | None = None,
    permissions: dict[str, str] | None = None,
    owner: str = "octo",
) -> GitHub[AppInstallationAuthStrategy]:
    gh = app_client(sim)
    auth = gh.auth.as_installation(
        sim.installation_id(owner),
        repositories=repositories or ["hello"],
        permissions=permissions or WRITE,  # type: ignore[arg-type]
    )
    return gh.with_auth(auth)


def status_of(error: pytest.ExceptionInfo[RequestFailed]) -> int:
    return int(error.value.response.status_code)


def iso_in(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def items(data: object) -> list[Any]:
    """A list response (githubkit's `list` methods confuse mypy about `list[...]`)."""
    assert isinstance(data, list)
    return data


# -- signing and the data files --------------------------------------------------------------
def test_sign_matches_githubs_documented_vector() -> None:
    assert sign("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_missing_node_modules_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(MissingFixturesError, match="npm install"):
        require(tmp_path / "node_modules" / "nothing.json")


# -- App auth ----------------------------------------------------------------------------------
def test_jwt_to_installation_token_and_app_endpoints(sim: GitHubSim) -> None:
    gh = app_client(sim)
    app = gh.rest.apps.get_authenticated().parsed_data
    assert app is not None and app.id == sim.app_id and app.slug == "codex-app"
    installation = gh.rest.apps.get_repo_installation("octo", "hello").parsed_data
    assert installation.id == sim.installation_id("octo") == 1000
    assert installation.account is not None
    assert gh.rest.apps.get_installation(installation.id).parsed_data.app_id == sim.app_id

    created = gh.rest.apps.create_installation_access_token(
        installation.id, repositories=["hello"], permissions={"issues": "write"}
    )
    token = created.parsed_data
    assert created.status_code == 201
    assert token.token.startswith("ghs_") and len(token.token) >= 40
    assert token.repository_selection == "selected"
    assert token.repositories and token.repositories[0].full_name == REPO
    assert sim.token_info(token.token).permissions == {"metadata": "read", "issues": "write"}
    assert sim.tokens_issued == [token.token]

    client = installation_client(sim)
    assert client.rest.repos.get("octo", "hello").parsed_data.full_name == REPO
    assert [r.auth_kind for r in sim.requests][-2:] == ["jwt", "installation"]
    assert client.rest.apps.revoke_installation_access_token().status_code == 204
    assert len(sim.tokens_revoked) == 1
    with pytest.raises(RequestFailed) as revoked:
        client.rest.repos.get("octo", "hello")
    assert status_of(revoked) == 401


def test_a_jwt_signed_with_another_key_is_refused(sim: GitHubSim) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    impostor = app_client(sim, pem)  # keep a reference: githubkit's namespaces hold weak ones
    with pytest.raises(RequestFailed) as refused:
        impostor.rest.apps.get_authenticated()
    assert status_of(refused) == 401
    assert refused.value.response.json()["message"] == "A JSON web token could not be decoded"


@pytest.mark.parametrize(
    ("iat_ago", "lifetime", "iss"),
    [(1200, 600, None), (60, 3600, None), (60, 600, "999")],
    ids=["expired", "lifetime-over-10-min", "wrong-issuer"],
)
def test_bad_jwts_get_401(sim: GitHubSim, iat_ago: int, lifetime: int, iss: str | None) -> None:
    iat = int(time.time()) - iat_ago
    claims = {"iat": iat, "exp": iat + lifetime, "iss": iss or str(sim.app_id)}
    encoded = jwt.encode(claims, sim.private_key_pem, algorithm="RS256")
    response = httpx.get(f"{sim.url}/app", headers={"Authorization": f"Bearer {encoded}"})
    assert response.status_code == 401
    assert set(response.json()) >= {"message", "documentation_url"}


def test_expired_unknown_and_missing_tokens_get_401(sim: GitHubSim) -> None:
    token = sim.issue_token("octo")
    url = f"{sim.url}/repos/{REPO}"
    assert httpx.get(url, headers={"Authorization": f"token {token}"}).status_code == 200
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    sim.expire_token(token)
    expired = httpx.get(url, headers={"Authorization": f"token {token}"})
    assert (expired.status_code, expired.json()["message"]) == (401, "Bad credentials")
    unknown = httpx.get(url, headers={"Authorization": "token ghs_" + "x" * 36})
    assert unknown.status_code == 401
    assert httpx.get(url).status_code == 401
    assert [r.auth_kind for r in sim.requests][-3:] == ["invalid", "invalid", "none"]


def test_a_narrowed_token_cannot_touch_another_repository(sim: GitHubSim) -> None:
    sim.create_repo("octo/other", {"README.md": "x\n"})
    sim.create_repo("octo/secret", {"README.md": "x\n"}, private=True)
    sim.create_repo("someone/else", {"README.md": "x\n"}, private=True)
    number = sim.create_issue("octo/other", "t", "b")
    client = installation_client(sim, ["hello"])
    with pytest.raises(RequestFailed) as public:
        client.rest.issues.create_comment("octo", "other", number, body="hi")
    assert status_of(public) == 403
    with pytest.raises(RequestFailed) as private:
        client.rest.repos.get("octo", "secret")
    assert status_of(private) == 404
    with pytest.raises(RequestFailed) as foreign:
        client.rest.repos.get("someone", "else")
    assert status_of(foreign) == 404
    assert sim.comments("octo/other", number) == []


def test_a_token_without_the_permission_gets_403(sim: GitHubSim) -> None:
    number = sim.create_issue(REPO, "t", "b")
    client = installation_client(sim, permissions={"issues": "read"})
    assert client.rest.issues.get("octo", "hello", number).parsed_data.number == number
    with pytest.raises(RequestFailed) as refused:
        client.rest.issues.create_comment("octo", "hello", number, body="hi")
    assert status_of(refused) == 403
    assert refused.value.response.json()["message"] == "Resource not accessible by integration"
    greedy = installation_client(sim, permissions={"workflows": "write"})
    with pytest.raises(RequestError) as not_granted:  # the installation lacks `workflows`
        greedy.rest.repos.get("octo", "hello")
    assert isinstance(not_granted.value.__cause__, RequestFailed)
    assert not_granted.value.__cause__.response.status_code == 422


# -- REST endpoints ----------------------------------------------------------------------------
def test_repository_and_collaborator_permission(sim: GitHubSim) -> None:
    client = installation_client(sim)
    repo = client.rest.repos.get("octo", "hello").parsed_data
    assert (repo.default_branch, repo.private) == ("main", False)
    assert repo.clone_url == f"{sim.url}/octo/hello.git"
    assert repo.html_url == f"{sim.url}/octo/hello"
    assert repo.owner.login == "octo"
    expected = {
        "alice": ("admin", "admin"),
        "bob": ("write", "maintain"),
        "carol": ("write", "write"),
        "dave": ("read", "triage"),
        "erin": ("none", "none"),
        "stranger": ("read", "read"),
    }
    for user, (_, role) in expected.items():
        if user != "stranger":
            sim.set_permission(REPO, user, role)
    for user, (permission, role) in expected.items():
        answer = client.rest.repos.get_collaborator_permission_level("octo", "hello", user)
        data = answer.parsed_data
        assert (data.permission, data.role_name) == (permission, role), user
        assert data.user is not None and data.user.login == user
    with pytest.raises(RequestFailed) as missing:
        client.rest.repos.get("octo", "nope")
    assert status_of(missing) == 404


def test_issue_read_update_and_comments(sim: GitHubSim) -> None:
    number = sim.create_issue(REPO, "Bug", "It breaks", user="alice", labels=["bug"])
    human = sim.add_comment(REPO, number, "please fix", user="alice")
    client = installation_client(sim)

    issue = client.rest.issues.get("octo", "hello", number).parsed_data
    assert (issue.number, issue.title, issue.body, issue.state) == (
        number,
        "Bug",
        "It breaks",
        "open",
    )
    assert issue.user is not None and issue.user.login == "alice"
    assert [label.name for label in issue.labels] == ["bug"]  # type: ignore[union-attr]
    assert issue.pull_request is None or not issue.pull_request
    assert issue.html_url == f"{sim.url}/{REPO}/issues/{number}"

    updated = client.rest.issues.update("octo", "hello", number, title="Bug!", state="closed")
    assert (updated.parsed_data.title, updated.parsed_data.state) == ("Bug!", "closed")
    assert sim.issue(REPO, number)["state"] == "closed"

    created = client.rest.issues.create_comment("octo", "hello", number, body="On it")
    comment = created.parsed_data
    assert created.status_code == 201
    assert comment.user is not None and (comment.user.login, comment.user.type) == (
        "codex-app[bot]",
        "Bot",
    )
    assert comment.html_url == f"{sim.url}/{REPO}/issues/{number}#issuecomment-{comment.id}"
    listed = items(client.rest.issues.list_comments("octo", "hello", number).parsed_data)
    assert [c.id for c in listed] == [human, comment.id]
    assert [c.body for c in listed] == ["please fix", "On it"]

    edited = client.rest.issues.update_comment("octo", "hello", comment.id, body="Done")
    assert edited.parsed_data.body == "Done"
    assert client.rest.issues.get_comment("octo", "hello", comment.id).parsed_data.body == "Done"
    assert [(c["user"], c["body"]) for c in sim.comments(REPO, number)] == [
        ("alice", "please fix"),
        ("codex-app[bot]", "Done"),
    ]
    assert client.rest.issues.delete_comment("octo", "hello", comment.id).status_code == 204
    assert [c["id"] for c in sim.comments(REPO, number)] == [human]

    headers = {"Authorization": f"token {sim.tokens_issued[-1]}"}
    comments_url = f"{sim.url}/repos/{REPO}/issues/{number}/comments"
    empty = httpx.post(comments_url, json={}, headers=headers)  # githubkit checks this itself
    assert empty.status_code == 422
    assert empty.json()["message"] == "Validation Failed"
    assert empty.json()["errors"][0]["field"] == "body"
    with pytest.raises(RequestFailed) as too_long:
        client.rest.issues.create_comment("octo", "hello", number, body="x" * 65537)
    assert status_of(too_long) == 422
    with pytest.raises(RequestFailed) as no_issue:
        client.rest.issues.get("octo", "hello", 999)
    assert status_of(no_issue) == 404


def test_comment_pagination_follows_link_headers(sim: GitHubSim) -> None:
    number = sim.create_issue(REPO, "t", "b")
    ids = [sim.add_comment(REPO, number, f"c{i}", user="alice") for i in range(5)]
    client = installation_client(sim)
    paged: Iterator[Any] = client.rest.paginate(
        client.rest.issues.list_comments,
        owner="octo",
        repo="hello",
        issue_number=number,
        per_page=2,
    )
    assert [c.id for c in paged] == ids


def test_reactions_and_labels(sim: GitHubSim) -> None:
    number = sim.create_issue(REPO, "t", "b")
    comment = sim.add_comment(REPO, number, "/codex fix", user="alice")
    client = installation_client(sim)

    first = client.rest.reactions.create_for_issue("octo", "hello", number, content="eyes")
    again = client.rest.reactions.create_for_issue("octo", "hello", number, content="eyes")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.parsed_data.content == "eyes" and first.parsed_data.id == again.parsed_data.id
    on_comment = client.rest.reactions.create_for_issue_comment(
        "octo", "hello", comment, content="+1"
    )
    assert on_comment.parsed_data.user is not None
    assert on_comment.parsed_data.user.login == "codex-app[bot]"
    bad = httpx.post(  # githubkit checks this itself
        f"{sim.url}/repos/{REPO}/issues/{number}/reactions",
        json={"content": "thumbsup"},
        headers={"Authorization": f"token {sim.tokens_issued[-1]}"},
    )
    assert bad.status_code == 422
    assert sim.reactions(REPO) == [
        (f"issue:{number}", "eyes", "codex-app[bot]"),
        (f"issue_comment:{comment}", "+1", "codex-app[bot]"),
    ]

    added = client.rest.issues.add_labels("octo", "hello", number, labels=["codex", "bug"])
    assert [label.name for label in items(added.parsed_data)] == ["codex", "bug"]
    removed = client.rest.issues.remove_label("octo", "hello", number, "codex")
    assert [label.name for label in items(removed.parsed_data)] == ["bug"]
    assert sim.issue(REPO, number)["labels"] == ["bug"]
    sim.add_label(REPO, number, "later")
    assert sim.issue(REPO, number)["labels"] == ["bug", "later"]
    with pytest.raises(RequestFailed) as absent:
        client.rest.issues.remove_label("octo", "hello", number, "codex")
    assert status_of(absent) == 404


def test_pull_requests_and_review_comments(sim: GitHubSim) -> None:
    sha = sim.commit(REPO, "codex/issue-1-fix", {"src/app.py": "print('fixed')\n"}, "Fix")
    client = installation_client(sim)
    created = client.rest.pulls.create(
        "octo",
        "hello",
        title="Fix",
        head="octo:codex/issue-1-fix",
        base="main",
        body="evidence",
        draft=True,
    )
    pull = created.parsed_data
    assert created.status_code == 201
    assert (pull.head.ref, pull.head.sha, pull.base.ref, pull.draft) == (
        "codex/issue-1-fix",
        sha,
        "main",
        True,
    )
    assert pull.base.sha == sim.git(REPO, "rev-parse", "main").strip()
    assert (pull.commits, pull.additions, pull.deletions, pull.changed_files) == (1, 1, 1, 1)
    assert pull.user.login == "codex-app[bot]"
    assert pull.html_url == f"{sim.url}/{REPO}/pull/{pull.number}"
    assert sim.pulls(REPO)[0] == {
        "number": pull.number,
        "title": "Fix",
        "body": "evidence",
        "head": "codex/issue-1-fix",
        "base": "main",
        "draft": True,
        "state": "open",
        "user": "codex-app[bot]",
        "labels": [],
        "head_sha": sha,
        "head_repo": REPO,
        "maintainer_can_modify": False,
    }

    with pytest.raises(RequestFailed) as duplicate:
        client.rest.pulls.create(
            "octo", "hello", title="Again", head="codex/issue-1-fix", base="main"
        )
    assert status_of(duplicate) == 422
    assert duplicate.value.response.json()["errors"][0]["message"] == (
        "A pull request already exists for octo:codex/issue-1-fix."
    )
    with pytest.raises(RequestFailed) as no_branch:
        client.rest.pulls.create("octo", "hello", title="x", head="nope", base="main")
    assert status_of(no_branch) == 422
    sim.commit(REPO, "empty", {}, "nothing", base="main")
    sim.git(REPO, "update-ref", "refs/heads/empty", "main")
    with pytest.raises(RequestFailed) as no_commits:
        client.rest.pulls.create("octo", "hello", title="x", head="empty", base="main")
    assert status_of(no_commits) == 422

    listed = client.rest.pulls.list("octo", "hello", head="octo:codex/issue-1-fix").parsed_data
    assert [p.number for p in listed] == [pull.number]
    assert client.rest.pulls.list("octo", "hello", head="octo:other").parsed_data == []
    got = client.rest.pulls.get("octo", "hello", pull.number).parsed_data
    assert got.body == "evidence"
    patched = client.rest.pulls.update("octo", "hello", pull.number, body="more evidence")
    assert patched.parsed_data.body == "more evidence"
    as_issue = client.rest.issues.get("octo", "hello", pull.number).parsed_data
    assert as_issue.pull_request is not None

    review = sim.add_review_comment(REPO, pull.number, "rename this", "alice", "src/app.py", 1)
    comments = items(
        client.rest.pulls.list_review_comments("octo", "hello", pull.number).parsed_data
    )
    assert [(c.id, c.body, c.path, c.line, c.user.login) for c in comments] == [
        (review, "rename this", "src/app.py", 1, "alice")
    ]
    reacted = client.rest.reactions.create_for_pull_request_review_comment(
        "octo", "hello", review, content="rocket"
    )
    assert reacted.status_code == 201
    assert sim.reactions(REPO)[-1] == (f"review_comment:{review}", "rocket", "codex-app[bot]")
    closed = client.rest.pulls.update("octo", "hello", pull.number, state="closed")
    assert closed.parsed_data.state == "closed" and sim.pulls(REPO)[0]["state"] == "closed"
    number = sim.create_issue(REPO, "Not a PR", "b")
    with pytest.raises(RequestFailed) as not_pull:
        client.rest.pulls.get("octo", "hello", number)
    assert status_of(not_pull) == 404


def test_review_comments_carry_the_diff_hunk_and_parse(sim: GitHubSim) -> None:
    calc = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"
    sim.commit(REPO, "main", {"calc.py": calc})
    fixed = calc.replace("return a - b", "return a + b", 1)
    sim.commit(REPO, "fix", {"calc.py": fixed})
    number = sim.create_pull(REPO, "Fix add", "fix", user="alice")
    on_diff = sim.add_review_comment(REPO, number, "why?", "bob", "calc.py", 2)
    outside = sim.add_review_comment(REPO, number, "and here?", "bob", "calc.py", 6)
    client = installation_client(sim)
    listed = items(client.rest.pulls.list_review_comments("octo", "hello", number).parsed_data)
    assert [(c.id, c.path, c.line, c.body, c.user and c.user.login) for c in listed] == [
        (on_diff, "calc.py", 2, "why?", "bob"),
        (outside, "calc.py", 6, "and here?", "bob"),
    ]
    assert listed[0].diff_hunk == (
        "@@ -1,5 +1,5 @@\n def add(a, b):\n-    return a - b\n+    return a + b"
    )
    assert listed[1].diff_hunk == "@@ -6,1 +6,1 @@\n     return a - b"
    assert listed[0].commit_id == sim.pulls(REPO)[0]["head_sha"]
    assert listed[0].created_at.tzinfo is not None
    raw = httpx.get(
        f"{sim.url}/repos/{REPO}/pulls/{number}/comments",
        headers={"Authorization": f"token {sim.tokens_issued[-1]}"},
    ).json()
    assert all("in_reply_to_id" not in c for c in raw)
    assert sim.review_comments(REPO, number)[0]["diff_hunk"] == listed[0].diff_hunk

    reacted = client.rest.reactions.create_for_pull_request_review_comment(
        "octo", "hello", on_diff, content="eyes"
    )
    assert reacted.status_code == 201
    assert sim.reactions(REPO) == [(f"review_comment:{on_diff}", "eyes", "codex-app[bot]")]


def test_issue_comments_since(sim: GitHubSim) -> None:
    number = sim.create_issue(REPO, "t", "b")
    old, new = (sim.add_comment(REPO, number, body, "alice") for body in ("old", "new"))
    state = sim._state  # backdate one comment: GitHub's `since` has one-second resolution
    hour_ago = state.comments[old].updated_at - timedelta(hours=1)
    state.comments[old].created_at = state.comments[old].updated_at = hour_ago
    client = installation_client(sim)
    url = f"{sim.url}/repos/{REPO}/issues/{number}/comments"

    def since(value: datetime) -> list[int]:
        found = client.rest.issues.list_comments("octo", "hello", number, since=value)
        return [c.id for c in items(found.parsed_data)]

    def since_raw(value: str) -> list[int]:
        headers = {"Authorization": f"token {sim.tokens_issued[-1]}"}
        answer = httpx.get(url, params={"since": value}, headers=headers)
        assert answer.status_code == 200, answer.text
        return [c["id"] for c in answer.json()]

    updated = sim.comments(REPO, number)[1]["updated_at"]
    moment = datetime.fromisoformat(updated.replace("Z", "+00:00"))
    assert since(moment) == [new]  # "at or after": the same second counts
    assert since(moment + timedelta(seconds=1)) == []
    assert since(hour_ago - timedelta(seconds=1)) == [old, new]
    assert since_raw(updated) == [new]
    assert since_raw(updated.replace("Z", "+00:00")) == [new]
    assert since_raw(iso_in(hours=1)) == []
    assert since_raw("2000-01-01T00:00:00") == [old, new]  # no zone: UTC
    client.rest.issues.update_comment("octo", "hello", old, body="old, edited")
    assert since(moment) == [old, new]  # an edit counts as an update
    bad = httpx.get(
        url,
        params={"since": "yesterday"},
        headers={"Authorization": f"token {sim.tokens_issued[-1]}"},
    )
    assert bad.status_code == 422


def test_fork_pull_requests(sim: GitHubSim) -> None:
    fork = sim.create_fork(REPO, "mallory")
    assert fork == "mallory/hello" and sim.repos[fork].parent == REPO
    assert sim.git(fork, "rev-parse", "main") == sim.git(REPO, "rev-parse", "main")
    sha = sim.commit(fork, "patch", {"src/app.py": "print('patched')\n"}, "Patch")
    assert sim.git(REPO, "branch", "--list", "patch") == ""  # only in the fork
    number = sim.create_pull(
        REPO, "From a fork", "patch", head_repo=fork, maintainer_can_modify=True
    )
    (row,) = sim.pulls(REPO)
    assert row | {"number": 0} == {
        "number": 0,
        "title": "From a fork",
        "body": "",
        "head": "patch",
        "base": "main",
        "draft": False,
        "state": "open",
        "user": "mallory",
        "labels": [],
        "head_sha": sha,
        "head_repo": fork,
        "maintainer_can_modify": True,
    }
    assert sim.git(REPO, "rev-parse", f"refs/pull/{number}/head").strip() == sha

    client = installation_client(sim)
    pull = client.rest.pulls.get("octo", "hello", number).parsed_data
    assert pull.head.repo is not None
    assert (pull.head.label, pull.head.ref, pull.head.sha) == ("mallory:patch", "patch", sha)
    assert (pull.head.repo.full_name, pull.head.repo.fork) == (fork, True)
    assert pull.head.repo.owner is not None and pull.head.repo.owner.login == "mallory"
    assert pull.head.user is not None and pull.head.user.login == "mallory"
    assert (pull.base.label, pull.base.repo.full_name, pull.base.repo.fork) == (
        "octo:main",
        REPO,
        False,
    )
    assert (pull.commits, pull.changed_files, pull.maintainer_can_modify) == (1, 1, True)
    assert pull.user.login == "mallory"
    listed = client.rest.pulls.list("octo", "hello", head="mallory:patch").parsed_data
    assert [p.number for p in listed] == [number]
    assert client.rest.pulls.list("octo", "hello", head="octo:patch").parsed_data == []

    moved = sim.commit(fork, "patch", {"NEW.md": "new\n"}, "More")
    again = client.rest.pulls.get("octo", "hello", number).parsed_data
    assert (again.head.sha, again.commits) == (moved, 2)

    with pytest.raises(RequestFailed) as duplicate:
        client.rest.pulls.create("octo", "hello", title="x", head="mallory:patch", base="main")
    assert duplicate.value.response.json()["errors"][0]["message"] == (
        "A pull request already exists for mallory:patch."
    )
    sim.commit(fork, "other", {"b.txt": "b\n"})
    by_api = client.rest.pulls.create(
        "octo", "hello", title="API", head="mallory:other", base="main"
    ).parsed_data
    assert by_api.head.repo is not None and by_api.head.repo.full_name == fork
    assert by_api.maintainer_can_modify is False
    assert sim.pulls(REPO)[-1]["head_repo"] == fork
    sim.commit(fork, "third", {"d.txt": "d\n"})
    by_label = sim.create_pull(REPO, "Label form", "mallory:third")
    assert sim.pulls(REPO)[-1]["number"] == by_label
    sim.commit(REPO, "patch-2", {"c.txt": "c\n"})
    same_repo = sim.create_pull(REPO, "Same", "patch-2", maintainer_can_modify=True)
    assert sim.pulls(REPO)[-1]["maintainer_can_modify"] is False  # only forks have the box
    assert sim.pulls(REPO)[-1]["number"] == same_repo

    with pytest.raises(ValueError, match="no fork"):
        sim.create_pull(REPO, "x", "nobody:patch")
    sim.create_repo("eve/hello-elsewhere", {"README.md": "x\n"})
    with pytest.raises(ValueError, match="fork network"):
        sim.create_pull(REPO, "x", "main", head_repo="eve/hello-elsewhere")


def test_a_fork_is_out_of_the_installations_reach(sim: GitHubSim) -> None:
    fork = sim.create_fork(REPO, "mallory")
    client = installation_client(sim, ["hello"])
    with pytest.raises(RequestFailed) as rest:
        client.rest.repos.get("mallory", "hello")
    assert status_of(rest) == 403
    app = app_client(sim)  # keep a reference: githubkit's namespaces hold weak ones
    with pytest.raises(RequestFailed) as not_installed:
        app.rest.apps.get_repo_installation("mallory", "hello")
    assert status_of(not_installed) == 404
    with pytest.raises(KeyError):
        sim.installation_id("mallory")
    with pytest.raises(ValueError, match="not installed"):
        sim.webhook_payload("issues", "opened", fork, sender="mallory")
    assert sim.create_fork(REPO, "trudy", name="copy") == "trudy/copy"
    with pytest.raises(ValueError, match="already exists"):
        sim.create_fork(REPO, "mallory")


def test_contents_refs_and_branches(sim: GitHubSim) -> None:
    client = installation_client(sim)
    config = client.rest.repos.get_content("octo", "hello", ".github/codex.yml").parsed_data
    assert not isinstance(config, list) and config.type == "file"
    assert base64.b64decode(config.content) == b"a: 1\n"
    sim.commit(REPO, "other", {".github/codex.yml": "a: 2\n"})
    on_branch = client.rest.repos.get_content("octo", "hello", ".github/codex.yml", ref="other")
    assert base64.b64decode(on_branch.parsed_data.content) == b"a: 2\n"  # type: ignore[union-attr]
    listing = client.rest.repos.get_content("octo", "hello", "src").parsed_data
    assert isinstance(listing, list) and [e.path for e in listing] == ["src/app.py"]
    with pytest.raises(RequestFailed) as missing:
        client.rest.repos.get_content("octo", "hello", "nope.txt")
    assert status_of(missing) == 404

    main = sim.git(REPO, "rev-parse", "main").strip()
    ref = client.rest.git.get_ref("octo", "hello", "heads/main").parsed_data
    assert (ref.ref, ref.object_.sha) == ("refs/heads/main", main)
    branch = client.rest.repos.get_branch("octo", "hello", "main").parsed_data
    assert (branch.name, branch.commit.sha, branch.protected) == ("main", main, False)
    assert branch.commit.commit.author is not None
    assert branch.commit.commit.author.name == "Octo Cat"
    with pytest.raises(RequestFailed) as no_ref:
        client.rest.git.get_ref("octo", "hello", "heads/nope")
    assert status_of(no_ref) == 404


def test_fail_injects_a_502_once(sim: GitHubSim) -> None:
    client = installation_client(sim)
    sim.fail("GET", r"^/repos/octo/hello$")
    with pytest.raises(RequestFailed) as failed:
        client.rest.repos.get("octo", "hello")
    assert status_of(failed) == 502
    assert failed.value.response.json()["message"] == "Bad Gateway"
    assert client.rest.repos.get("octo", "hello").parsed_data.name == "hello"
    assert [r.status for r in sim.requests if r.path == "/repos/octo/hello"] == [502, 200]


# -- git over smart HTTP ----------------------------------------------------------------------
def git(
    *args: str, cwd: Path | None = None, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    auth = []
    if token is not None:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        auth = ["-c", f"http.extraHeader=Authorization: Basic {basic}"]
    identity = ["-c", "user.name=Codex", "-c", "user.email=codex@example.com"]
    return subprocess.run(
        ["git", *auth, *identity, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=git_env(),
        timeout=60,
        check=False,
    )


def test_clone_and_push_over_http(sim: GitHubSim, tmp_path: Path) -> None:
    token = sim.issue_token("octo", ["hello"], {"contents": "write"})
    work = tmp_path / "work"
    cloned = git("clone", sim.clone_url(REPO), str(work), token=token)
    assert cloned.returncode == 0, cloned.stderr
    assert (work / "README.md").read_text() == "# hello\n"
    (work / "NEW.md").write_text("new\n")
    assert git("checkout", "-q", "-b", "codex/issue-1-x", cwd=work).returncode == 0
    assert git("add", "-A", cwd=work).returncode == 0
    assert git("commit", "-q", "-m", "add NEW", cwd=work).returncode == 0
    pushed = git("push", "origin", "codex/issue-1-x", cwd=work, token=token)
    assert pushed.returncode == 0, pushed.stderr
    assert "NEW.md" in sim.git(REPO, "diff", "--name-only", "main", "codex/issue-1-x")
    (push,) = sim.pushes
    assert push.updates[0][0] == "refs/heads/codex/issue-1-x" and push.status == 200

    wrong = git("clone", sim.clone_url(REPO), str(tmp_path / "no"), token="ghs_" + "0" * 36)
    assert wrong.returncode != 0
    assert sim.requests[-1].status == 401
    read_only = sim.issue_token("octo", ["hello"], {"contents": "read"})
    refused = git("push", "origin", "HEAD:refs/heads/ro", cwd=work, token=read_only)
    assert refused.returncode != 0 and sim.requests[-1].status == 403
    sim.create_repo("octo/other", {"README.md": "x\n"}, private=True)
    elsewhere = git("clone", sim.clone_url("octo/other"), str(tmp_path / "o"), token=token)
    assert elsewhere.returncode != 0 and sim.requests[-1].status == 404


def test_a_workflow_push_needs_the_workflows_permission(tmp_path: Path) -> None:
    perms = {"metadata": "read", "contents": "write", "workflows": "write"}
    with GitHubSim(tmp_path / "github", permissions=perms) as sim:
        sim.create_repo(REPO, FILES)
        work = tmp_path / "work"
        without = sim.issue_token("octo", ["hello"], {"contents": "write"})
        assert git("clone", sim.clone_url(REPO), str(work), token=without).returncode == 0
        (work / ".github" / "workflows").mkdir(parents=True)
        (work / ".github" / "workflows" / "x.yml").write_text("on: push\n")
        assert git("add", "-A", cwd=work).returncode == 0
        assert git("commit", "-q", "-m", "ci", cwd=work).returncode == 0
        refused = git("push", "origin", "HEAD:refs/heads/ci", cwd=work, token=without)
        assert refused.returncode != 0
        assert (
            "refusing to allow a GitHub App to create or update workflow "
            "`.github/workflows/x.yml` without `workflows` permission"
        ) in refused.stderr
        assert sim.pushes[-1].updates == ()
        allowed = sim.issue_token("octo", ["hello"], {"contents": "write", "workflows": "write"})
        accepted = git("push", "origin", "HEAD:refs/heads/ci", cwd=work, token=allowed)
        assert accepted.returncode == 0, accepted.stderr


def ls_remote(sim: GitHubSim, full_name: str, token: str, ref: str) -> str:
    listed = git("ls-remote", sim.clone_url(full_name), ref, token=token)
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split("\t")[0]


def test_refs_pull_head_follows_pushes_over_http(sim: GitHubSim, tmp_path: Path) -> None:
    first = sim.commit(REPO, "feature", {"a.txt": "a\n"})
    number = sim.create_pull(REPO, "Feature", "feature")
    token = sim.issue_token("octo", ["hello"], {"contents": "write"})
    assert ls_remote(sim, REPO, token, f"refs/pull/{number}/head") == first

    work = tmp_path / "work"
    assert git("clone", "-q", sim.clone_url(REPO), str(work), token=token).returncode == 0
    fetched = git("fetch", "origin", f"refs/pull/{number}/head", cwd=work, token=token)
    assert fetched.returncode == 0, fetched.stderr
    assert git("rev-parse", "FETCH_HEAD", cwd=work).stdout.strip() == first
    assert git("checkout", "-q", "FETCH_HEAD", cwd=work).returncode == 0
    (work / "b.txt").write_text("b\n")
    assert git("add", "-A", cwd=work).returncode == 0
    assert git("commit", "-q", "-m", "more", cwd=work).returncode == 0
    pushed = git("push", "origin", "HEAD:refs/heads/feature", cwd=work, token=token)
    assert pushed.returncode == 0, pushed.stderr
    second = git("rev-parse", "HEAD", cwd=work).stdout.strip()
    assert sim.pulls(REPO)[0]["head_sha"] == second  # followed at push time
    assert sim.git(REPO, "rev-parse", f"refs/pull/{number}/head").strip() == second
    assert ls_remote(sim, REPO, token, f"refs/pull/{number}/head") == second

    hidden = git("push", "origin", f"HEAD~1:refs/pull/{number}/head", cwd=work, token=token)
    assert hidden.returncode != 0 and "hidden ref" in hidden.stderr  # as on GitHub
    assert ls_remote(sim, REPO, token, f"refs/pull/{number}/head") == second

    sim.close_issue(REPO, number)  # a closed pull request keeps its last head
    third = sim.commit(REPO, "feature", {"c.txt": "c\n"})
    assert ls_remote(sim, REPO, token, f"refs/pull/{number}/head") == second
    assert sim.pulls(REPO)[0]["head_sha"] == second != third

    client = installation_client(sim)
    by_api = client.rest.pulls.create("octo", "hello", title="API", head="feature", base="main")
    assert ls_remote(sim, REPO, token, f"refs/pull/{by_api.parsed_data.number}/head") == third


def test_fork_heads_are_fetchable_from_the_base_but_the_fork_is_not(
    sim: GitHubSim, tmp_path: Path
) -> None:
    fork = sim.create_fork(REPO, "mallory")
    sha = sim.commit(fork, "patch", {"src/app.py": "print('patched')\n"})
    number = sim.create_pull(REPO, "Patch", "patch", head_repo=fork)
    token = sim.issue_token("octo", ["hello"], {"contents": "write"})
    work = tmp_path / "work"
    assert git("clone", "-q", sim.clone_url(REPO), str(work), token=token).returncode == 0
    ref = f"refs/pull/{number}/head"
    fetched = git("fetch", "origin", f"{ref}:pr", cwd=work, token=token)
    assert fetched.returncode == 0, fetched.stderr
    assert git("rev-parse", "pr", cwd=work).stdout.strip() == sha
    shown = git("show", "pr:src/app.py", cwd=work).stdout
    assert shown == "print('patched')\n"

    moved = sim.commit(fork, "patch", {"src/app.py": "print('again')\n"})
    assert ls_remote(sim, REPO, token, ref) == moved
    sim.git(fork, "update-ref", "refs/heads/patch", sha)  # a force-push, behind the sim's back
    assert ls_remote(sim, REPO, token, ref) == sha  # noticed when the base is read

    cloned = git("clone", sim.clone_url(fork), str(tmp_path / "fork"), token=token)
    assert cloned.returncode != 0 and sim.requests[-1].status == 404
    pushed = git("push", sim.clone_url(fork), "HEAD:refs/heads/x", cwd=work, token=token)
    assert pushed.returncode != 0 and sim.requests[-1].status == 404
    assert sim.pushes == []


# -- webhooks ---------------------------------------------------------------------------------
def test_issues_labeled_payload_carries_simulator_state(sim: GitHubSim) -> None:
    number = sim.create_issue(REPO, "Broken", "It breaks.", user="alice", labels=["bug"])
    payload = sim.webhook_payload(
        "issues", "labeled", REPO, sender="bob", number=number, label="codex"
    )
    assert sim.issue(REPO, number)["labels"] == ["bug", "codex"]  # applied, as on GitHub
    assert payload["action"] == "labeled"
    assert payload["repository"]["full_name"] == REPO
    assert payload["repository"]["owner"]["login"] == "octo"
    assert payload["repository"]["clone_url"] == sim.clone_url(REPO)
    assert payload["installation"]["id"] == sim.installation_id("octo")
    assert payload["sender"]["login"] == "bob"
    issue = payload["issue"]
    assert (issue["number"], issue["title"], issue["body"], issue["state"]) == (
        number,
        "Broken",
        "It breaks.",
        "open",
    )
    assert issue["user"]["login"] == "alice"
    assert [label["name"] for label in issue["labels"]] == ["bug", "codex"]
    assert "pull_request" not in issue
    assert payload["label"]["name"] == "codex"
    assert "github.com" not in json.dumps(payload).replace("octocat@github.com", "")
    parsed = parse_obj("issues", payload)
    assert parsed.action == "labeled"


def test_issue_comment_payloads_for_issues_and_pulls(sim: GitHubSim) -> None:
    number = sim.create_issue(REPO, "Broken", "It breaks.", user="alice")
    comment = sim.add_comment(REPO, number, "/codex fix", user="alice")
    payload = sim.webhook_payload(
        "issue_comment", "created", REPO, sender="alice", number=number, comment_id=comment
    )
    assert payload["comment"]["id"] == comment
    assert payload["comment"]["body"] == "/codex fix"
    assert payload["comment"]["user"]["login"] == "alice"
    assert "pull_request" not in payload["issue"]
    assert parse_obj("issue_comment", payload).comment.id == comment

    sim.commit(REPO, "feature", {"a.txt": "a\n"})
    pull = sim.create_pull(REPO, "Feature", "feature", user="alice")
    on_pull = sim.webhook_payload(
        "issue_comment",
        "created",
        REPO,
        sender="carol",
        number=pull,
        comment_body="/codex fix the tests",
        pull=True,
    )
    assert on_pull["issue"]["number"] == pull
    assert on_pull["issue"]["pull_request"]["url"] == f"{sim.url}/repos/{REPO}/pulls/{pull}"
    assert on_pull["comment"]["body"] == "/codex fix the tests"
    stored = sim.comments(REPO, pull)  # a body without an id becomes a real comment
    assert [(c["id"], c["user"]) for c in stored] == [(on_pull["comment"]["id"], "carol")]
    assert on_pull["comment"]["user"]["login"] == "carol"
    assert parse_obj("issue_comment", on_pull).issue.pull_request is not None


def test_review_comment_payload(sim: GitHubSim) -> None:
    head = sim.commit(REPO, "feature", {"a.txt": "a\n"})
    pull = sim.create_pull(REPO, "Feature", "feature", user="alice")
    review = sim.add_review_comment(REPO, pull, "/codex rename", "alice", "a.txt", 1)
    payload = sim.webhook_payload(
        "pull_request_review_comment",
        "created",
        REPO,
        sender="alice",
        number=pull,
        comment_id=review,
    )
    assert payload["comment"]["id"] == review
    assert payload["comment"]["body"] == "/codex rename"
    assert payload["comment"]["path"] == "a.txt"
    assert payload["pull_request"]["number"] == pull
    assert payload["pull_request"]["head"]["ref"] == "feature"
    assert payload["pull_request"]["head"]["sha"] == head
    assert payload["pull_request"]["base"]["ref"] == "main"
    parsed = parse_obj("pull_request_review_comment", payload)
    assert parsed.comment.id == review


def test_review_comment_payload_from_a_body_on_a_fork_pull(sim: GitHubSim) -> None:
    calc = "def add(a, b):\n    return a - b\n"
    sim.commit(REPO, "main", {"calc.py": calc})
    fork = sim.create_fork(REPO, "mallory")
    head = sim.commit(fork, "fix", {"calc.py": calc + "\n\nX = add(1, 2)\n"})
    number = sim.create_pull(REPO, "Fix", "fix", head_repo=fork, body="Please", draft=True)
    payload = sim.webhook_payload(
        "pull_request_review_comment",
        "created",
        REPO,
        sender="alice",
        number=number,
        comment_body="/codex use sum()",
        path="calc.py",
        line=3,
    )
    comment = payload["comment"]
    (stored,) = sim.review_comments(REPO, number)
    assert (comment["id"], comment["body"], comment["path"], comment["line"]) == (
        stored["id"],
        "/codex use sum()",
        "calc.py",
        3,
    )
    assert comment["user"]["login"] == "alice" == stored["user"]
    assert comment["diff_hunk"] == "@@ -1,2 +1,5 @@\n def add(a, b):\n     return a - b\n+"
    assert comment["commit_id"] == head and "in_reply_to_id" not in comment
    pull = payload["pull_request"]
    assert (pull["number"], pull["title"], pull["body"], pull["state"], pull["draft"]) == (
        number,
        "Fix",
        "Please",
        "open",
        True,
    )
    assert pull["user"]["login"] == "mallory"
    assert (pull["head"]["ref"], pull["head"]["sha"], pull["head"]["label"]) == (
        "fix",
        head,
        "mallory:fix",
    )
    assert (pull["head"]["repo"]["full_name"], pull["head"]["repo"]["fork"]) == (fork, True)
    assert (pull["base"]["ref"], pull["base"]["repo"]["full_name"]) == ("main", REPO)
    assert payload["repository"]["full_name"] == REPO
    parsed = parse_obj("pull_request_review_comment", payload)
    assert parsed.comment.id == stored["id"] and parsed.pull_request.head.repo is not None
    assert parsed.pull_request.head.repo.full_name == fork

    on_pull = sim.webhook_payload(
        "issue_comment",
        "created",
        REPO,
        sender="alice",
        number=number,
        comment_body="/codex fix",
        pull=True,
    )
    pull_link = on_pull["issue"]["pull_request"]
    assert pull_link["url"] == f"{sim.url}/repos/{REPO}/pulls/{number}"
    assert pull_link["html_url"] == f"{sim.url}/{REPO}/pull/{number}"
    assert on_pull["issue"]["comments"] == 1  # the new comment is counted
    assert parse_obj("issue_comment", on_pull).issue.pull_request is not None

    pushed = sim.commit(fork, "fix", {"calc.py": calc + "\n\nX = add(2, 2)\n"})
    synced = sim.webhook_payload(
        "pull_request", "synchronize", REPO, sender="mallory", number=number
    )
    head_side = synced["pull_request"]["head"]
    assert (head_side["sha"], head_side["repo"]["full_name"]) == (pushed, fork)
    assert synced["pull_request"]["maintainer_can_modify"] is False
    assert parse_obj("pull_request", synced).pull_request.head.sha == pushed


def test_issue_comment_edited_and_deleted_payloads(sim: GitHubSim) -> None:
    number = sim.create_issue(REPO, "t", "b")
    comment = sim.add_comment(REPO, number, "/codex fix", "alice")
    edited = sim.webhook_payload(
        "issue_comment",
        "edited",
        REPO,
        sender="alice",
        number=number,
        comment_id=comment,
        comment_body="/codex fix quickly",
    )
    assert edited["comment"]["body"] == "/codex fix quickly"
    assert edited["changes"] == {"body": {"from": "/codex fix"}}
    assert sim.comments(REPO, number)[0]["body"] == "/codex fix quickly"  # applied
    assert parse_obj("issue_comment", edited).action == "edited"

    deleted = sim.webhook_payload(
        "issue_comment", "deleted", REPO, sender="alice", number=number, comment_id=comment
    )
    assert (deleted["comment"]["id"], deleted["comment"]["body"]) == (
        comment,
        "/codex fix quickly",
    )
    assert sim.comments(REPO, number) == []  # applied
    assert parse_obj("issue_comment", deleted).action == "deleted"

    fresh = sim.webhook_payload(
        "issue_comment",
        "edited",
        REPO,
        sender="alice",
        number=number,
        comment_body="now",
        previous_body="before",
    )
    assert fresh["changes"] == {"body": {"from": "before"}}
    assert [c["body"] for c in sim.comments(REPO, number)] == ["now"]
    gone = sim.webhook_payload(
        "issue_comment", "deleted", REPO, sender="alice", number=number, comment_body="bye"
    )
    assert gone["comment"]["body"] == "bye"
    assert [c["body"] for c in sim.comments(REPO, number)] == ["now"]


def test_closed_issues_bot_senders_and_unlabeled(sim: GitHubSim) -> None:
    number = sim.create_issue(REPO, "Old", "b", labels=["codex"])
    sim.close_issue(REPO, number)
    assert (sim.issue(REPO, number)["state"], sim.issue(REPO, number)["state_reason"]) == (
        "closed",
        "completed",
    )
    payload = sim.webhook_payload(
        "issues", "unlabeled", REPO, sender="dependabot[bot]", number=number, label="codex"
    )
    assert payload["issue"]["state"] == "closed" and payload["issue"]["closed_at"]
    assert payload["issue"]["labels"] == [] and payload["label"]["name"] == "codex"
    assert (payload["sender"]["login"], payload["sender"]["type"]) == ("dependabot[bot]", "Bot")
    assert parse_obj("issues", payload).action == "unlabeled"
    comment = sim.webhook_payload(
        "issue_comment", "created", REPO, sender="bob", number=number, comment_body="hi"
    )
    assert comment["issue"]["state"] == "closed"
    assert (comment["sender"]["type"], comment["comment"]["user"]["type"]) == ("User", "User")
    client = installation_client(sim)
    assert client.rest.issues.get("octo", "hello", number).parsed_data.state == "closed"


@pytest.mark.parametrize(
    ("event", "action", "on_pull"),
    [
        ("issues", "opened", False),
        ("issues", "labeled", False),
        ("issues", "unlabeled", False),
        ("issue_comment", "created", False),
        ("issue_comment", "edited", False),
        ("issue_comment", "created", True),
        ("pull_request", "opened", True),
        ("pull_request", "synchronize", True),
        ("pull_request", "closed", True),
        ("pull_request_review_comment", "created", True),
    ],
)
def test_payloads_parse_with_githubkits_webhook_models(
    sim: GitHubSim, event: str, action: str, on_pull: bool
) -> None:
    sim.commit(REPO, "feature", {"a.txt": "a\n"})
    number = (
        sim.create_pull(REPO, "Feature", "feature", user="alice")
        if on_pull
        else sim.create_issue(REPO, "t", "b", labels=["codex"])
    )
    comment = (
        sim.add_review_comment(REPO, number, "hm", "alice", "a.txt", 1)
        if event == "pull_request_review_comment"
        else sim.add_comment(REPO, number, "hi", "alice")
    )
    payload = sim.webhook_payload(
        event,
        action,
        REPO,
        sender="alice",
        number=number,
        label="codex" if "label" in action else None,
        comment_id=comment,
        pull=on_pull,
    )
    parsed: Any = parse_obj(event, payload)
    assert (parsed.action, parsed.repository.full_name) == (action, REPO)
    assert parsed.installation.id == sim.installation_id("octo")


def test_example_payloads_are_githubs_own(sim: GitHubSim) -> None:
    examples = sim.example_payloads("issue_comment")
    assert examples[0][0] == "created"
    assert examples[0][1]["repository"]["full_name"] == "Codertocat/Hello-World"


class _Capture(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers.items()), body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_deliver_sends_hookshot_headers(sim: GitHubSim) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        number = sim.create_issue(REPO, "t", "b")
        payload = sim.webhook_payload("issues", "opened", REPO, sender="alice", number=number)
        url = f"http://127.0.0.1:{server.server_port}/webhook"
        response = sim.deliver(url, "s3cret", "issues", payload)
        again = sim.deliver(url, "s3cret", "issues", b'{"zen":"hi"}', delivery_id="fixed-id")
    finally:
        server.shutdown()
        server.server_close()
    assert (response.status_code, again.status_code) == (202, 202)
    (headers, body), (headers2, body2) = _Capture.received[-2:]
    assert body == json.dumps(payload, separators=(",", ":")).encode()
    assert json.loads(body) == payload
    assert headers["X-GitHub-Event"] == "issues"
    assert str(uuid.UUID(headers["X-GitHub-Delivery"])) == headers["X-GitHub-Delivery"]
    assert headers["X-Hub-Signature-256"] == sign("s3cret", body)
    assert headers["X-Hub-Signature"].startswith("sha1=")
    assert headers["User-Agent"].startswith("GitHub-Hookshot/")
    assert headers["Content-Type"] == "application/json"
    assert headers["X-GitHub-Hook-Installation-Target-Type"] == "integration"
    assert headers["X-GitHub-Hook-Installation-Target-ID"] == str(sim.app_id)
    assert headers["X-GitHub-Hook-ID"]
    assert (headers2["X-GitHub-Delivery"], body2) == ("fixed-id", b'{"zen":"hi"}')
    assert headers2["X-Hub-Signature-256"] == sign("s3cret", b'{"zen":"hi"}')
    assert [d.delivery_id for d in sim.deliveries][-1] == "fixed-id"

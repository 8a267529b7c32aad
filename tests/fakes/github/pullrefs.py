"""Pull requests follow their branches, and each has `refs/pull/<n>/head` like on GitHub.

GitHub keeps `refs/pull/<n>/head` in the base repository pointing at the pull request's head
commit, also when the head branch lives in a fork, and moves it when the head branch is
pushed to (while the pull request is open). The simulator does the same at the moments that
matter: when a pull request is made, after a push or `GitHubSim.commit`, before serving git
for a repository, and before answering about a pull request. Reading the refs of both sides
takes one `git for-each-ref` per repository; only a ref that moved costs more.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from . import gitrepo
from .records import Issue, Repo
from .state import State


def head_repo(state: State, issue: Issue) -> Repo:
    """The repository holding the pull request's head branch (the base one, or a fork)."""
    assert issue.pull is not None
    return state.repo(issue.pull.head_repo or issue.full_name)


def ref_name(number: int) -> str:
    return f"refs/pull/{number}/head"


def sync(state: State, issues: Iterable[Issue]) -> None:
    """Bring the pull requests' head/base shas and `refs/pull/<n>/head` up to date."""
    with state.lock:  # git runs under the lock: two syncs must not race for one ref
        refs: dict[Path, dict[str, str]] = {}

        def refs_of(repo: Repo) -> dict[str, str]:
            if repo.path not in refs:
                refs[repo.path] = gitrepo.refs(repo.path)
            return refs[repo.path]

        for issue in issues:
            pull = issue.pull
            if pull is None:
                continue
            base, head = state.repo(issue.full_name), head_repo(state, issue)
            if issue.state == "open":  # a closed pull request keeps its last head
                pull.head_sha = refs_of(head).get(f"refs/heads/{pull.head}", pull.head_sha)
            pull.base_sha = refs_of(base).get(f"refs/heads/{pull.base}", pull.base_sha)
            ref = ref_name(issue.number)
            if refs_of(base).get(ref) != pull.head_sha:
                gitrepo.set_ref(base.path, ref, pull.head_sha, head.path)
                refs_of(base)[ref] = pull.head_sha


def sync_repo(state: State, full_name: str) -> None:
    """Every pull request with its base or its head in `full_name`."""
    sync(state, state.pulls_touching(full_name))


def network(state: State, repo: Repo) -> str:
    """The root of `repo`'s fork network (pull requests only cross forks within one)."""
    while repo.parent is not None and repo.parent in state.repos:
        repo = state.repos[repo.parent]
    return repo.full_name


def fork_of(state: State, base: Repo, owner: str) -> Repo | None:
    """`owner`'s repository in `base`'s fork network (the base itself when `owner` owns it)."""
    if owner == base.owner:
        return base
    root = network(state, base)
    with state.lock:
        found = [r for r in state.repos.values() if r.owner == owner and r.parent is not None]
    for repo in sorted(found, key=lambda r: r.id):
        if network(state, repo) == root:
            return repo
    return None

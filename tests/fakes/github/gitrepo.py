"""Real bare git repositories behind the simulated GitHub.

Repositories are ordinary bare repos under the simulator's root, so clones and pushes are
real git, and the REST answers about refs, contents and pull requests are read from them.
This module creates them (with the pre-receive hook that mimics GitHub's `workflows`
permission check), forks them, keeps pull request refs, and wraps the few read-only git
queries the API needs.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

AUTHOR = {
    "GIT_AUTHOR_NAME": "Octo Cat",
    "GIT_AUTHOR_EMAIL": "octocat@github.com",
    "GIT_COMMITTER_NAME": "Octo Cat",
    "GIT_COMMITTER_EMAIL": "octocat@github.com",
}

# GitHub refuses pushes from an App token that touch workflow files unless the token has the
# `workflows` permission. The HTTP layer says which, through SIM_TOKEN_CAN_WORKFLOWS.
PRE_RECEIVE = """#!/bin/sh
# Installed by the GitHub simulator (tests/fakes/github/gitrepo.py).
if [ "$SIM_TOKEN_CAN_WORKFLOWS" = "1" ]; then exit 0; fi
zero=0000000000000000000000000000000000000000
while read -r old new ref; do
  [ "$new" = "$zero" ] && continue
  if [ "$old" = "$zero" ]; then
    file=$(git log --format= --name-only "$new" --not --all -- .github/workflows | grep -m1 .)
  else
    file=$(git log --format= --name-only "$old..$new" -- .github/workflows | grep -m1 .)
  fi
  if [ -n "$file" ]; then
    echo "refusing to allow a GitHub App to create or update workflow \\`$file\\`" \\
      "without \\`workflows\\` permission" >&2
    exit 1
  fi
done
exit 0
"""


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment that ignores the developer's global and system git config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0")
    env.update(extra or {})
    return env


def run_git(
    git_dir: Path, *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None
) -> str:
    """Run git against a bare repo; raise CalledProcessError (with stderr) on failure."""
    done = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args],
        input=stdin,
        capture_output=True,
        env=git_env(env),
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        raise subprocess.CalledProcessError(
            done.returncode, done.args, done.stdout.decode(), done.stderr.decode()
        )
    return done.stdout.decode()


def _configure(path: Path) -> None:
    """What makes a bare repo behave like one on GitHub: pushable over smart HTTP, the
    `workflows` check, and `refs/pull/*` read-only (GitHub hides them from receive-pack, so
    a push to one is refused with "deny updating a hidden ref")."""
    run_git(path, "config", "http.receivepack", "true")
    run_git(path, "config", "receive.hideRefs", "refs/pull")
    hook = path / "hooks" / "pre-receive"
    hook.write_text(PRE_RECEIVE)
    hook.chmod(0o755)


def create_bare(path: Path, files: Mapping[str, str | bytes], default_branch: str) -> None:
    """A bare repo with one initial commit of `files`, pushable over smart HTTP."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "init", "--bare", "-q", f"--initial-branch={default_branch}", str(path)],
        check=True,
        env=git_env(),
        capture_output=True,
    )
    _configure(path)
    commit_files(path, default_branch, files, "Initial commit", parent=None)


def clone_bare(source: Path, path: Path) -> None:
    """A fork: a bare copy of `source`'s branches and tags (not its `refs/pull/*`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "clone", "--bare", "-q", "--no-hardlinks", str(source), str(path)],
        check=True,
        env=git_env(),
        capture_output=True,
    )
    run_git(path, "remote", "remove", "origin")
    _configure(path)


def set_ref(git_dir: Path, ref: str, sha: str, source: Path | None = None) -> None:
    """Point `ref` at `sha`, first fetching the objects from `source` (another bare repo of
    the fork network: GitHub shares objects between them, the simulator copies)."""
    if source is not None and source != git_dir:
        run_git(
            git_dir,
            "-c",
            "protocol.version=2",  # v2 serves any object by id, not only branch tips
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            str(source),
            f"+{sha}:{ref}",
        )
    else:
        run_git(git_dir, "update-ref", ref, sha)


def commit_files(
    git_dir: Path,
    branch: str,
    files: Mapping[str, str | bytes | None],
    message: str,
    parent: str | None,
) -> str:
    """Commit `files` (None deletes) on top of `parent` and point `branch` at it."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**AUTHOR, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if parent is not None:
            run_git(git_dir, "read-tree", parent, env=env)
        for name, content in files.items():
            if content is None:
                # Mode 0 in --index-info removes the path; --force-remove needs a work tree.
                zero = "0 0000000000000000000000000000000000000000\t"
                run_git(
                    git_dir,
                    "update-index",
                    "--index-info",
                    env=env,
                    stdin=f"{zero}{name}\n".encode(),
                )
                continue
            data = content.encode() if isinstance(content, str) else content
            blob = run_git(git_dir, "hash-object", "-w", "--stdin", stdin=data).strip()
            run_git(
                git_dir, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", env=env
            )
        tree = run_git(git_dir, "write-tree", env=env).strip()
        parents = ["-p", parent] if parent is not None else []
        sha = run_git(git_dir, "commit-tree", tree, *parents, "-m", message, env=env).strip()
    run_git(git_dir, "update-ref", f"refs/heads/{branch}", sha)
    return sha


def resolve(git_dir: Path, rev: str) -> str | None:
    """The commit `rev` names, or None."""
    try:
        return run_git(git_dir, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except subprocess.CalledProcessError:
        return None


def branch_sha(git_dir: Path, branch: str) -> str | None:
    return resolve(git_dir, f"refs/heads/{branch}")


def refs(git_dir: Path) -> dict[str, str]:
    out = run_git(git_dir, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split(" ", 1) for line in out.splitlines() if line)


def commit_count(git_dir: Path, base: str, head: str) -> int:
    return int(run_git(git_dir, "rev-list", "--count", f"{base}..{head}").strip())


def diff_stats(git_dir: Path, base: str, head: str) -> tuple[int, int, int]:
    """(additions, deletions, changed files) of head against the merge base, like a PR."""
    out = run_git(git_dir, "diff", "--numstat", f"{base}...{head}")
    additions = deletions = files = 0
    for line in out.splitlines():
        added, deleted, _ = line.split("\t", 2)
        files += 1
        additions += int(added) if added.isdigit() else 0
        deletions += int(deleted) if deleted.isdigit() else 0
    return additions, deletions, files


def tree_entry(git_dir: Path, commit: str, path: str) -> tuple[str, str] | None:
    """(type, sha) of `path` at `commit` ("blob"/"tree"), or None when absent."""
    if path in ("", "."):
        return "tree", run_git(git_dir, "rev-parse", f"{commit}^{{tree}}").strip()
    out = run_git(git_dir, "ls-tree", commit, "--", path).strip()
    if not out:
        return None
    meta, _ = out.split("\t", 1)
    _, kind, sha = meta.split(" ")
    return kind, sha


def list_tree(git_dir: Path, commit: str, path: str) -> list[tuple[str, str, str, int]]:
    """Entries (type, sha, path, size) directly under directory `path` at `commit`."""
    target = f"{commit}:{path}" if path else f"{commit}^{{tree}}"
    out = run_git(git_dir, "ls-tree", "-l", target)
    entries = []
    for line in out.splitlines():
        meta, name = line.split("\t", 1)
        _, kind, sha, size = meta.split()
        full = f"{path.rstrip('/')}/{name}" if path else name
        entries.append((kind, sha, full, int(size) if size.isdigit() else 0))
    return entries


def read_blob(git_dir: Path, sha: str) -> bytes:
    done = subprocess.run(
        ["git", f"--git-dir={git_dir}", "cat-file", "blob", sha],
        capture_output=True,
        env=git_env(),
        check=True,
        timeout=60,
    )
    return done.stdout


def commit_info(git_dir: Path, sha: str) -> dict[str, str]:
    """Tree, parents, author/committer and message of one commit."""
    fmt = "%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
    keys = (
        "tree",
        "parents",
        "author_name",
        "author_email",
        "author_date",
        "committer_name",
        "committer_email",
        "committer_date",
        "message",
    )
    values = run_git(git_dir, "log", "-1", f"--format={fmt}", sha).split("\x00")
    return dict(zip(keys, (v.strip() for v in values), strict=True))


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")


def diff_hunk(git_dir: Path, base: str, head: str, path: str, line: int) -> str:
    """GitHub's `diff_hunk` of a review comment on `line` (new side) of `path`: the pull
    request's diff hunk holding that line, from its `@@` header down to the line. A line
    outside the diff gets a one-line hunk of its own."""
    try:
        out = run_git(
            git_dir, "diff", "--no-color", "--no-ext-diff", f"{base}...{head}", "--", path
        )
    except subprocess.CalledProcessError:
        out = ""
    hunk: list[str] = []
    number = 0
    for text in out.splitlines():
        header = _HUNK.match(text)
        if header is not None:
            hunk, number = [text], int(header[1]) - 1
            continue
        if not hunk:
            continue  # the file header (diff --git, index, ---, +++)
        hunk.append(text)
        if text.startswith(("+", " ")):
            number += 1
            if number == line:
                return "\n".join(hunk)
    try:
        content = run_git(git_dir, "show", f"{head}:{path}").splitlines()
    except subprocess.CalledProcessError:
        content = []
    shown = f"\n {content[line - 1]}" if 0 < line <= len(content) else ""
    return f"@@ -{line},1 +{line},1 @@{shown}"

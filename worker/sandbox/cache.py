"""The environment cache: the setup container's filesystem, committed, reused for a while.

The key covers everything that shapes the environment: the repository, the base image's id,
the setup script, the env vars, the secret names and the lockfiles the setup reads. A warm task
starts from the snapshot, brings the checkout to its own commit from the host and runs
`maintenance` instead of `setup`. Snapshots expire (12 hours by default) and are removed.

A snapshot belongs to one repository: its name is an HMAC of the key under a server secret
(nobody can compute another repository's name from what a PR body shows), it is labelled with
its repository, and the label is checked before it is used. People see only a fingerprint.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import json
import logging
import posixpath
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.models.containers import Container

from worker import gitops
from worker.repoconfig import RepoConfig

log = logging.getLogger(__name__)

REPOSITORY = "codex-env"
LOCKFILES = (
    "package.json", "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml",
    "bun.lockb", "pyproject.toml", "poetry.lock", "uv.lock", "Pipfile", "Pipfile.lock",
    "requirements*.txt", "constraints*.txt", "setup.py", "setup.cfg", "environment.yml",
    "Cargo.toml", "Cargo.lock", "go.mod", "go.sum", "Gemfile", "Gemfile.lock", "composer.json",
    "composer.lock", ".tool-versions", ".python-version", ".nvmrc",
)  # fmt: skip
"""Names (at any depth of the tracked tree) of files a setup script installs from."""
CREATED = "codex.env.created"
OWNER = "codex.env.repo"
TEMPORARY = "codex.env.temporary"
TEMPORARY_TTL = 24 * 3600
"""A task removes its uncached environment when it ends; a crashed one's goes after this."""
_collecting: set[asyncio.Task[int]] = set()


REQUIREMENT_FOLDERS = ("requirements", "requirements.d", "constraints")
"""Folders whose `.txt`/`.in` files are requirement files (`requirements/testing.txt`)."""


def is_lockfile(path: str) -> bool:
    name = posixpath.basename(path)
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in LOCKFILES):
        return True
    folder = posixpath.basename(posixpath.dirname(path))
    return folder in REQUIREMENT_FOLDERS and name.endswith((".txt", ".in"))


def key_files(tracked: list[str], named: list[str] | None) -> list[str]:
    """The files the cache key hashes: the ones the repository names (`cache.key`, globs
    allowed, for a monorepo whose setup builds one package), else every lockfile."""
    if named:
        return sorted(p for p in tracked if any(fnmatch.fnmatchcase(p, g) for g in named))
    return sorted(path for path in tracked if is_lockfile(path))


def key(repo: str, image_id: str, config: RepoConfig, lockfiles: Mapping[str, str]) -> str:
    """The cache key: a hash of everything the environment depends on (`lockfiles` maps each
    lockfile's path to its content's hash)."""
    parts = {
        "repo": repo,
        "image": image_id,
        "setup": config.setup,
        "env": config.env,
        "secrets": sorted(config.secrets),
        "lockfiles": dict(lockfiles),
        "named": config.cache.key,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _hashes(checkout: Path, paths: list[str]) -> dict[str, str]:
    return {
        path: hashlib.sha256((checkout / path).read_bytes()).hexdigest()
        for path in paths
        if (checkout / path).is_file() and not (checkout / path).is_symlink()
    }


@dataclass(frozen=True)
class EnvironmentCache:
    client: docker.DockerClient
    ttl: int
    """Seconds a snapshot may be reused."""
    secret: bytes = b""
    """Names snapshots (HMAC of the key), so no repository can name another's."""

    def tag_for(self, cache_key: str) -> str:
        name = hmac.new(self.secret, f"env:{cache_key}".encode(), hashlib.sha256).hexdigest()
        return f"{REPOSITORY}:{name[:40]}"

    def fingerprint(self, name: str) -> str:
        """A short name for people to tell environments apart; it opens nothing."""
        return hmac.new(self.secret, f"show:{name}".encode(), hashlib.sha256).hexdigest()[:10]

    async def key_for(self, repo: str, image_id: str, config: RepoConfig, checkout: Path) -> str:
        tracked = await gitops.git("ls-files", "-z", cwd=checkout)
        files = [path for path in tracked.split("\0") if path]
        paths = key_files(files, config.cache.key)
        lockfiles = await asyncio.to_thread(_hashes, checkout, paths)
        return key(repo, image_id, config, lockfiles)

    def _usable(self, tag: str, repo: str) -> bool:
        try:
            labels = self.client.images.get(tag).labels or {}
        except docker.errors.ImageNotFound:
            return False
        if labels.get(OWNER) != repo or labels.get(TEMPORARY):
            log.warning("snapshot %s is not %s's: not used", self.fingerprint(tag), repo)
            return False
        return time.time() - float(labels.get(CREATED, 0)) < self.ttl

    async def lookup(self, cache_key: str, repo: str) -> str | None:
        """`repo`'s snapshot for `cache_key`, when there is a fresh one."""
        if self.ttl <= 0:
            return None
        tag = self.tag_for(cache_key)
        return tag if await asyncio.to_thread(self._usable, tag, repo) else None

    async def commit(
        self, container: Container, repo: str, label: str, cache_key: str | None
    ) -> tuple[str, bool]:
        """Commit `container` as `repo`'s environment: cached under `cache_key` while the cache
        is on, else under a temporary name the task removes (`discard`). Returns (tag, cached)."""
        cached = cache_key is not None and self.ttl > 0
        if cached:
            assert cache_key is not None
            tag = self.tag_for(cache_key)
        else:
            tag = f"{REPOSITORY}:tmp-{secrets.token_hex(12)}"
        labels = {CREATED: str(time.time()), OWNER: repo, "codex.task": label}
        if not cached:
            labels[TEMPORARY] = "1"
        repository, name = tag.split(":", 1)
        await asyncio.to_thread(
            container.commit, repository=repository, tag=name, conf={"Labels": labels}
        )
        log.info("task %s: environment %s committed (cached: %s)", label, self.fingerprint(tag),
                 cached)  # fmt: skip
        if cached:
            self.collect_in_background()
        return tag, cached

    async def discard(self, tag: str) -> None:
        """Remove a temporary environment (never a cached one)."""

        def remove() -> None:
            try:
                if (self.client.images.get(tag).labels or {}).get(TEMPORARY):
                    self.client.images.remove(tag, force=True)
            except docker.errors.APIError:
                log.warning("environment %s could not be removed now", self.fingerprint(tag))

        await asyncio.to_thread(remove)

    def collect_in_background(self) -> None:
        """Collection can take a while with many snapshots: it never delays a task."""
        job = asyncio.create_task(self.collect_garbage())
        _collecting.add(job)
        job.add_done_callback(_collecting.discard)

    async def collect_garbage(self) -> int:
        """Remove expired snapshots, and temporary ones a crashed task left; returns how many."""

        def collect() -> int:
            removed = 0
            for image in self.client.images.list(name=REPOSITORY):
                labels = image.labels or {}
                age = time.time() - float(labels.get(CREATED, 0))
                if age >= (TEMPORARY_TTL if labels.get(TEMPORARY) else self.ttl):
                    for tag in [t for t in image.tags if t.startswith(f"{REPOSITORY}:")]:
                        try:
                            self.client.images.remove(tag)
                            removed += 1
                        except docker.errors.APIError:
                            pass  # in use by a running task: next time
            return removed

        return await asyncio.to_thread(collect)

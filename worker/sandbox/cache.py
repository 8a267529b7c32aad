"""The environment cache: a snapshot of the sandbox after a successful setup, reused for a while.

The key covers everything that shapes the environment: the repository, the base image's id,
the setup script, the env vars, the secret names and the lockfiles the setup reads. A warm task
starts from the snapshot, brings the checkout to its own commit from the host and runs
`maintenance` instead of `setup`. Snapshots expire (12 hours by default) and are removed.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import json
import logging
import posixpath
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import docker

from worker import gitops
from worker.repoconfig import RepoConfig
from worker.sandbox.containers import DockerSandbox

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
_collecting: set[asyncio.Task[int]] = set()


def is_lockfile(path: str) -> bool:
    name = posixpath.basename(path)
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in LOCKFILES)


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

    async def key_for(self, repo: str, image: str, config: RepoConfig, checkout: Path) -> str:
        try:
            image_id = await asyncio.to_thread(lambda: str(self.client.images.get(image).id))
        except docker.errors.ImageNotFound:
            image_id = image  # the sandbox's start reports the missing image
        tracked = await gitops.git("ls-files", "-z", cwd=checkout)
        paths = sorted(path for path in tracked.split("\0") if path and is_lockfile(path))
        lockfiles = await asyncio.to_thread(_hashes, checkout, paths)
        return key(repo, image_id, config, lockfiles)

    def _fresh(self, tag: str) -> bool:
        try:
            labels = self.client.images.get(tag).labels or {}
        except docker.errors.ImageNotFound:
            return False
        return time.time() - float(labels.get(CREATED, 0)) < self.ttl

    async def lookup(self, cache_key: str) -> str | None:
        """The snapshot's image for `cache_key`, when there is a fresh one."""
        tag = f"{REPOSITORY}:{cache_key}"
        return tag if await asyncio.to_thread(self._fresh, tag) else None

    async def store(self, sandbox: DockerSandbox, cache_key: str) -> bool:
        """Snapshot the sandbox as `cache_key`'s environment; False when the cache is off."""
        if self.ttl <= 0:
            return False
        labels = {CREATED: str(time.time()), "codex.env.task": sandbox.spec.label}
        await asyncio.to_thread(
            sandbox.container.commit,
            repository=REPOSITORY,
            tag=cache_key,
            conf={"Labels": labels},
        )
        log.info("task %s: environment cached as %s:%s", sandbox.spec.label, REPOSITORY, cache_key)
        self.collect_in_background()
        return True

    def collect_in_background(self) -> None:
        """Collection can take a while with many snapshots: it never delays a task."""
        job = asyncio.create_task(self.collect_garbage())
        _collecting.add(job)
        job.add_done_callback(_collecting.discard)

    async def collect_garbage(self) -> int:
        """Remove expired snapshots; returns how many."""

        def collect() -> int:
            removed = 0
            for image in self.client.images.list(name=REPOSITORY):
                created = float((image.labels or {}).get(CREATED, 0))
                if time.time() - created >= self.ttl:
                    for tag in [t for t in image.tags if t.startswith(f"{REPOSITORY}:")]:
                        try:
                            self.client.images.remove(tag)
                            removed += 1
                        except docker.errors.APIError:
                            pass  # in use by a running task: next time
            return removed

        return await asyncio.to_thread(collect)

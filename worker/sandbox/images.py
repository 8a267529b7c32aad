"""Which images a repository may run in: the operator's allowlist, decided before the engine
hears of the name.

An image reference is an address the Docker daemon fetches from the host's network namespace,
and a snapshot's name is another repository's environment. So a repository's `image:` must
match a pattern of `SANDBOX_IMAGES` (or be the server's `SANDBOX_IMAGE`); references to
snapshots, bare image ids and digests are refused whatever the patterns say, and nothing is
ever pulled: an image missing from the engine is an error naming it.
"""

from __future__ import annotations

import asyncio
import fnmatch
import re

import docker

from worker.errors import TaskFailed
from worker.sandbox.cache import REPOSITORY

ID = re.compile(r"^(sha256:)?[0-9a-f]{12,64}$")


class ImageRefused(TaskFailed):
    """The image cannot be used; the message is for the repository's maintainers."""


def patterns_for(allowlist: dict[str, list[str]], repo: str) -> list[str]:
    """The patterns `repo` may use: every repository's (`*`), its owner's and its own."""
    owner = repo.split("/", 1)[0]
    return [p for scope in ("*", owner, repo) for p in allowlist.get(scope, [])]


def refusal(image: str, default: str, allowlist: dict[str, list[str]], repo: str) -> str | None:
    """Why `repo` may not run in `image`, or None when it may."""
    name = image.strip()
    if "@" in name:
        return f"`{image}` is pinned by digest; name an allowed image by its tag instead"
    if ID.match(name):
        return f"`{image}` is an image id; name an allowed image by its tag instead"
    if name.split(":", 1)[0].rsplit("/", 1)[-1] == REPOSITORY or name.startswith(f"{REPOSITORY}-"):
        return f"`{image}` is a cached environment, which only the server itself starts from"
    if name == default:
        return None
    allowed = patterns_for(allowlist, repo)
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in allowed):
        return None
    listed = ", ".join(f"`{p}`" for p in [default, *allowed])
    return (
        f"`{image}` is not an image this server allows (allowed: {listed}). Remove `image:` "
        "to use the default, or ask the operator to add it to `SANDBOX_IMAGES`"
    )


async def require_local(client: docker.DockerClient, image: str) -> str:
    """The id of `image` on this engine; never pulled: a missing one is an error naming it."""
    try:
        found = await asyncio.to_thread(client.images.get, image)
    except docker.errors.ImageNotFound:
        raise ImageRefused(
            f"the image `{image}` is not on this worker's Docker engine, and tasks never pull "
            "images: the operator can build or load it there"
        ) from None
    return str(found.id)

"""A disk limit per sandbox (`SANDBOX_DISK`): a sandbox must not fill the disk that Docker,
Redis and the worker share.

Where the storage driver enforces quotas (overlay2 on xfs with `pquota`, btrfs, zfs), the
container gets `storage_opt={"size": ...}` and the kernel refuses the write. Elsewhere (overlay2
on ext4, as here) a watcher reads the size of the container's writable layer every few seconds
and stops the sandbox once it passes the limit; the task then says that the disk limit stopped
it. Memory-backed mounts (tmpfs) are not on disk: the memory limit bounds them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import docker

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0
"""How often the watcher reads a layer's size: each read walks the layer, so not too often."""
QUOTA_FILESYSTEMS = {"xfs", "btrfs", "zfs"}
UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """`10g`, `512m`, `2GiB`, `1048576` → bytes; ValueError for anything else."""
    match = SIZE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size (e.g. 10g, 512m)")
    return int(float(match.group(1)) * UNITS[match.group(2).lower()])


def has_quotas(info: Mapping[str, object]) -> bool:
    """Whether the engine's storage driver can enforce `storage_opt` size (from `docker info`)."""
    driver = str(info.get("Driver", ""))
    if driver in ("btrfs", "zfs"):
        return True
    status = dict(info.get("DriverStatus") or [])  # type: ignore[call-overload]
    return driver == "overlay2" and str(status.get("Backing Filesystem", "")) in QUOTA_FILESYSTEMS


def _inspect_with_size(client: docker.DockerClient, container_id: str) -> dict[str, object]:
    # docker-py's inspect_container has no `size`: ask the API as the CLI's `inspect -s` does.
    api: Any = client.api
    found: dict[str, object] = api._result(
        api._get(api._url("/containers/{0}/json", container_id), params={"size": 1}), True
    )
    return found


def stopped_text(limit: int) -> str:
    return (
        f"the sandbox wrote more than its disk limit ({limit / (1 << 20):,.0f} MB, "
        "`SANDBOX_DISK`) and was stopped; keep build output and caches small, or ask the "
        "operator to raise the limit"
    )


async def watch(
    client: docker.DockerClient,
    container_id: str,
    limit: int,
    stop: Callable[[str], Awaitable[None]],
    every: float = POLL_SECONDS,
) -> None:
    """Until cancelled: stop the container with the reason once its writable layer passes
    `limit` bytes."""
    while True:
        await asyncio.sleep(every)
        try:
            attrs = await asyncio.to_thread(_inspect_with_size, client, container_id)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            log.warning("disk watcher: could not read the size of %s", container_id[:12])
            continue
        used = int(str(attrs.get("SizeRw") or 0))
        if used > limit:
            log.warning("sandbox %s wrote %d bytes, over its %d byte limit", container_id[:12],
                        used, limit)  # fmt: skip
            await stop(stopped_text(limit))
            return

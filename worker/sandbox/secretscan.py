"""Before the setup container becomes an environment: is any secret in what setup wrote?

`docker commit` keeps every file of the writable layer, so a token that setup put in
`~/.npmrc`, `/tmp` or the checkout would reach the agent and every later task through the
snapshot. The paths the container changed (`docker diff`) are read out through the Docker API
and scanned on the host for the live secrets and their encoded forms; the caller fails closed
on a hit, naming the file (never the value). Memory-backed mounts (`tmpfs`) are not in the
layer: that is where setup keeps credentials it needs (see `SECRETS_DIR`).
"""

from __future__ import annotations

import asyncio
import posixpath
import tarfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO

import docker
from docker.models.containers import Container

CHUNK = 1 << 20
OVERLAP = 4096
"""Bytes kept from one chunk to the next, so a secret across a chunk boundary is still seen."""
ADDED, CHANGED = 1, 0


def roots(changes: Sequence[Mapping[str, object]]) -> list[str]:
    """The fewest paths whose trees cover every added or changed path of `docker diff`: an
    added directory stands for everything under it; a changed directory whose changes are
    listed below it stands for nothing itself."""
    kinds = {str(c["Path"]): c.get("Kind") for c in changes if c.get("Kind") in (ADDED, CHANGED)}
    paths = sorted(kinds)
    covered: list[str] = []
    for path in paths:
        if any(path.startswith(root + "/") for root in covered):
            continue
        if kinds[path] == CHANGED and any(other.startswith(path + "/") for other in paths):
            continue
        covered.append(path)
    return covered


def _files(stream: Iterator[bytes]) -> Iterator[tuple[str, Iterator[bytes]]]:
    reader = _Stream(stream)
    with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            if member.isfile():
                handle = tar.extractfile(member)
                if handle is not None:
                    yield member.name, _chunks(handle)


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


class _Stream:
    """A file-like view of the Docker API's tar chunks, read once front to back."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks, self.buffer = chunks, b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.buffer) < size:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.buffer += chunk
        if size < 0:
            size = len(self.buffer)
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


def _scan(container: Container, leaks: Callable[[bytes], bool]) -> list[str]:
    found: list[str] = []
    for root in roots(container.diff() or []):
        try:
            stream, _ = container.get_archive(root)
        except docker.errors.NotFound:
            continue  # removed again before the end of setup
        parent = posixpath.dirname(root.rstrip("/"))
        for name, chunks in _files(stream):
            tail = b""
            for chunk in chunks:
                if leaks(tail + chunk):
                    found.append(posixpath.join(parent, name))
                    break
                tail = chunk[-OVERLAP:]
    return found


async def leaked_files(container: Container, leaks: Callable[[bytes], bool]) -> list[str]:
    """The files `container` wrote that hold a secret (`leaks` says), by their absolute path."""
    return await asyncio.to_thread(_scan, container, leaks)

"""Running one command in a container through the Docker API, and knowing its output is whole.

Every command runs under `timeout` inside the container, because `exec_run` itself has no
timeout (docker-py#2651); the caller keeps an outer deadline that kills the container. Docker
sometimes returns an exec's output empty or short (moby#27289, docker-py#2042), so every
command's output ends with a line of ours carrying its exit code: without that line, output
was lost. These calls block; the sandbox runs them in a thread.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping

from docker import APIClient

from worker.sandbox.output import OutputBuffer

log = logging.getLogger(__name__)

GRACE = 5
"""Seconds between TERM and KILL for a command that outlives its timeout."""
END = f"codex-end-{secrets.token_hex(8)}:"
"""Every command's output ends with a line `END<exit code>`."""
LOST_OUTPUT = (
    "[the Docker engine lost this command's output, or part of it (a known docker exec race); "
    "run the command again if you need it]"
)
READ_TRIES = 3


def framed(limit: str, command: str, *, merged: bool = False) -> list[str]:
    """`command` under `limit` (a `timeout ...` prefix), then the end line with its status.

    `merged`: stderr joins stdout inside the container, so nothing the command wrote can come
    after the end line (Docker's two streams are not ordered with each other)."""
    into = " 2>&1" if merged else ""
    script = f'{limit} sh -c "$1"{into}; s=$?; printf "\\n{END}%d\\n" "$s"; exit "$s"'
    return ["sh", "-c", script, "sh", command]


def end_line(code: int) -> bytes:
    return f"\n{END}{code}\n".encode()


def run_command(
    api: APIClient,
    container_id: str,
    command: str,
    *,
    timeout: int,
    workdir: str,
    environment: Mapping[str, str],
    output_limit: int,
    label: str,
) -> tuple[str, int]:
    """`command` (stdout and stderr merged, at most `output_limit` characters kept) and its
    exit code; a lost end is said in the text. Raises `docker.errors.APIError`."""
    argv = framed(f"timeout -k {GRACE} {timeout}", command, merged=True)
    exec_id = api.exec_create(container_id, argv, workdir=workdir, environment=dict(environment))[
        "Id"
    ]
    buffer = OutputBuffer(output_limit)
    for chunk in api.exec_start(exec_id, stream=True):
        buffer.add(chunk)
    code = api.exec_inspect(exec_id)["ExitCode"]
    code = int(code if code is not None else -1)
    if buffer.take_end(end_line(code)):
        return buffer.text(), code
    text = buffer.text()
    if code in (126, 127) and text.strip():
        return text, code  # the engine could not start it (e.g. no such workdir): its word
    log.warning("task %s: the engine lost a command's output", label)
    return (f"{text}\n{LOST_OUTPUT}" if text.strip() else LOST_OUTPUT), code


def read_output(
    api: APIClient, container_id: str, command: str, *, workdir: str, limit: int, timeout: int,
    label: str,
) -> bytes | None:  # fmt: skip
    """The raw stdout of `command`, or None when it exceeds `limit` bytes, fails, or its
    output was lost `READ_TRIES` times. Raises `docker.errors.APIError`."""
    for _ in range(READ_TRIES):  # `command` only reads: running it again is harmless
        exec_id = api.exec_create(
            container_id, framed(f"timeout {timeout}", command), workdir=workdir, stderr=False
        )["Id"]
        data = bytearray()
        for chunk in api.exec_start(exec_id, stream=True):
            data += chunk
            if len(data) > limit + len(end_line(-1)):
                return None
        end = end_line(int(api.exec_inspect(exec_id)["ExitCode"] or 0))
        if data.endswith(end):
            return bytes(data[: -len(end)]) if end == end_line(0) else None
        log.warning("task %s: the engine lost a read's output", label)
    return None

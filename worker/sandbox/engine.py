"""The container engine: how the worker connects to it, and its failures, told to the person
who must act: which engine, and what to check.

docker-py lets the transport's errors through as they are ("HTTPConnectionPool(host=...): Max
retries exceeded ..."), which reads as if the person who labelled the issue should fix something.
An engine that cannot be reached is an operator's problem and usually passes (a restart of
dockerd): the task goes back to the queue for a later try, on whichever worker takes it.
"""

from __future__ import annotations

import contextlib
import os

import docker
import docker.constants
import docker.errors
import requests.exceptions
import urllib3.exceptions

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
REACH = (
    "the Docker daemon runs and that the worker can reach it (DOCKER_HOST, DOCKER_TLS_VERIFY, "
    "DOCKER_CERT_PATH, socket permissions)"
)
"""What the operator checks when the engine does not answer."""


class EngineUnreachable(RuntimeError):
    """The worker's engine did not answer when it connected."""


def connect(timeout: int = docker.constants.DEFAULT_TIMEOUT_SECONDS) -> docker.DockerClient:
    """The engine `DOCKER_HOST`, `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` name, reached
    directly, with the API version it speaks.

    docker-py's client is a requests session, and requests lets `REQUESTS_CA_BUNDLE` and
    `CURL_CA_BUNDLE` replace a session's own CA: on a host that sets them (as hosts behind a
    TLS-inspecting proxy do) `docker.from_env()` checks a TLS engine against that bundle
    instead of `DOCKER_CERT_PATH/ca.pem` and never connects. The environment's HTTP proxies
    and `.netrc` are no way to an engine either, so the session ignores the environment; the
    version is asked with that session too (`from_env`'s "auto" asks before it can be set).
    """
    try:
        probe = docker.from_env(version=docker.constants.DEFAULT_DOCKER_API_VERSION,
                                timeout=timeout)  # fmt: skip
        probe.api.trust_env = False
        with contextlib.closing(probe):
            version = str(probe.api.version(api_version=False)["ApiVersion"])
        client = docker.from_env(version=version, timeout=timeout)
    except (requests.exceptions.RequestException, docker.errors.DockerException, KeyError) as error:
        reason = str(error).rstrip(".")
        raise EngineUnreachable(
            f"the container engine ({engine_name()}) could not be reached: {reason}. Check "
            f"that {REACH}"
        ) from error
    client.api.trust_env = False
    return client


def engine_name() -> str:
    host = os.environ.get("DOCKER_HOST")
    return f"DOCKER_HOST={host}" if host else f"the local socket {DEFAULT_SOCKET}"


def _causes(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def unreachable(error: BaseException) -> bool:
    """The engine did not answer at all (refused, reset, timed out, a socket that is gone)."""
    transport = (requests.exceptions.ConnectionError, urllib3.exceptions.HTTPError)
    for cause in _causes(error):
        if isinstance(cause, docker.errors.APIError):
            return False
        if isinstance(cause, transport):
            return True
        if isinstance(cause, docker.errors.DockerException) and "Connection" in str(cause):
            return True
    return False


def explain(error: BaseException) -> str | None:
    """The sandbox error a person reads, or None when `error` is not the engine's."""
    if unreachable(error):
        return (
            f"the container engine ({engine_name()}) could not be reached, so no sandbox could "
            f"run. This is for the operator: check that {REACH}"
        )
    for cause in _causes(error):
        if isinstance(cause, docker.errors.APIError) and cause.is_server_error():
            reason = str(cause.explanation or cause)[:300].replace("\n", " ")
            return (
                f"the container engine ({engine_name()}) answered "
                f"{cause.status_code}: {reason}. This is for the operator: check the Docker "
                "daemon's log and free disk space"
            )
    return None

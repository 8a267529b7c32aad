"""The system test harness: the app and the worker as real processes, wired to a real Redis
and the network-level fakes, and what a test does to them (deliver a label or a comment, wait for
the status comment).

The pytest fixtures that start these live in `conftest.py`; benchmarks (`bench/`) import this
module, never the conftest. A missing Redis or Docker engine skips a test locally and fails it in
CI (`CI=true`), so a green run there always means the real parts ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from arq.connections import ArqRedis

from app import queue
from app.settings import Settings
from tests.fakes.github import GitHubSim
from tests.fakes.internet import Internet
from tests.fakes.openai import ScriptedOpenAI

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_IMAGE = os.environ.get("SANDBOX_IMAGE", "codex-sandbox:local")
WEBHOOK_SECRET = "test-webhook-secret-0123456789"
NPM_TOKEN = "npm-setup-only-secret-7f3a9c"
"""A repository secret the server holds for the owner `octo-env`."""
T = TypeVar("T")


def require(what: str) -> None:
    """Skip locally, fail in CI: the real parts must run there."""
    message = f"{what} is not available"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: required, not skipped)")
    pytest.skip(message)


def wait_for(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


async def wait_async(check: Callable[[], object], what: str, timeout: float = 20) -> None:
    """`wait_for` inside an event loop: poll `check` without blocking the loop."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_answers(port: int, password: str) -> bool:
    client = redis.Redis(port=port, password=password, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
    finally:
        client.close()


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A real, password-protected redis-server on a free loopback port, and its URL."""
    server = shutil.which("redis-server")
    if server is None:
        require("redis-server")
    assert server is not None
    port, password = free_port(), "test-redis-password"
    process = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--requirepass", password, "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for(lambda: _redis_answers(port, password), 10, "redis-server to answer")
    return process, f"redis://:{password}@127.0.0.1:{port}/0"


@dataclass
class Service:
    """A process of ours (app or worker) with its log file."""

    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


@dataclass
class System:
    """The real app on uvicorn and a real arq worker, wired to Redis and the fakes."""

    github: GitHubSim
    openai: ScriptedOpenAI
    app_url: str
    env: dict[str, str]
    app: Service
    worker: Service

    def deliver(self, event: str, payload: dict[str, object], **kwargs: str) -> int:
        response = self.github.deliver(
            f"{self.app_url}/webhook", WEBHOOK_SECRET, event, payload, **kwargs
        )
        return int(response.status_code)

    def wait_idle(self, timeout: float = 60) -> None:
        """Until no task is queued or running (arq's queue is empty)."""
        client = redis.Redis.from_url(self.env["REDIS_URL"])
        try:
            wait_for(
                lambda: client.zcard("arq:queue") == 0, timeout, f"an idle queue\n{self.logs()}"
            )
        finally:
            client.close()

    def logs(self) -> str:
        return f"--- app ---\n{self.app.tail()}\n--- worker ---\n{self.worker.tail()}"

    def label(
        self, repo: str, number: int, action: str = "labeled", *, sender: str = "alice"
    ) -> int:
        """Deliver `issues.<action>` with the trigger label `codex` on issue `number`."""
        payload = self.github.webhook_payload(
            "issues", action, repo, sender=sender, number=number, label="codex"
        )
        return self.deliver("issues", payload)

    def comment(
        self, repo: str, number: int, body: str, *, sender: str = "alice", pull: bool = False
    ) -> int:
        """Deliver `issue_comment.created` with `body` on issue `number`, or on pull request
        `number` with `pull=True` (GitHub sends a PR's conversation comments as issue comments)."""
        payload = self.github.webhook_payload(
            "issue_comment", "created", repo, sender=sender, number=number, comment_body=body,
            pull=pull,
        )  # fmt: skip
        return self.deliver("issue_comment", payload)

    def status_comment(
        self, repo: str, number: int, text: str, timeout: float = 60
    ) -> dict[str, Any]:
        """The app's comment on `number` that contains `text`, once there is one."""

        def find() -> dict[str, Any] | None:
            bot = self.github.bot_login
            mine = [c for c in self.github.comments(repo, number) if c["user"] == bot]
            return next((c for c in mine if text in c["body"]), None)

        return wait_for(find, timeout, f"a comment saying {text!r}\n{self.logs()}")

    def published(self, repo: str, number: int) -> dict[str, Any]:
        """The draft PR, once the status comment on issue `number` says the task is done."""
        self.status_comment(repo, number, "Draft PR ready")
        return self.github.pulls(repo)[0]


def service_env(
    redis_url: str,
    github: GitHubSim,
    openai_fake: ScriptedOpenAI,
    internet: Internet | None = None,
    **overrides: str,
) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONUNBUFFERED": "1",  # the log files are read while the services run
        "HOME": os.environ.get("HOME", "/root"),
        "APP_ID": str(github.app_id),
        "PRIVATE_KEY": github.private_key_pem,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "REDIS_URL": redis_url,
        "GITHUB_API_URL": github.url,
        "OPENAI_API_KEY": openai_fake.api_key,
        "OPENAI_BASE_URL": openai_fake.url,
        "CODEX_MODEL": "scripted-model",
        "SANDBOX_IMAGE": SANDBOX_IMAGE,
        "COMMAND_TIMEOUT": "60",
        "MODEL_RETRIES": "2",
        "RETRY_DELAY": "2",  # a task hit by a passing GitHub or engine fault runs again soon
        "ENV_CACHE_TTL": "300",  # snapshots from earlier test runs are collected
        "REPO_SECRETS": json.dumps({"octo-env": {"NPM_TOKEN": NPM_TOKEN}}),
        "REPO_DEFAULTS": json.dumps({"octo-env": {"env": {"FROM_SERVER": "yes"}}}),
        "SANDBOX_IMAGES": json.dumps({"octo-images": ["codex-sandbox:*", "127.0.0.1:*"]}),
        # This engine (Debian's Docker 20.10) has CVE-2024-29018, which needs a loopback
        # resolver on the host; these hosts' is not, and the self-test checks the egress DNS.
        "ALLOW_VULNERABLE_ENGINE": "true",
    }
    if internet is not None:  # the egress proxy reaches the fake internet by these names
        env["EGRESS_HOSTS"] = json.dumps(internet.hosts)
        env["EGRESS_UPSTREAM_CA"] = str(internet.ca_file)
        env["EGRESS_CA_DIR"] = str(internet.directory / "proxy-ca")
        env["EGRESS_PORT"] = "3135"  # the service on this host may hold the default, 3128
    if "DOCKER_HOST" in os.environ:
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    return env | overrides


def start_service(argv: list[str], env: dict[str, str], log: Path) -> Service:
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    return Service(process, log)


def start_app(env: dict[str, str], log: Path) -> tuple[Service, str]:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--no-access-log"]
    url = f"http://127.0.0.1:{port}"
    env.setdefault("PUBLIC_URL", url)  # the worker, started with `env` next, links to this app
    service = start_service(argv, env, log)

    def healthy() -> bool:
        assert service.process.poll() is None, f"the app exited:\n{service.tail()}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_for(healthy, 20, "the app to listen")
    return service, url


def start_worker(env: dict[str, str], log: Path) -> Service:
    argv = [sys.executable, "-m", "worker"]
    service = start_service(argv, env, log)
    wait_for(
        lambda: "Starting worker" in log.read_text() or service.process.poll() is not None,
        20,
        "the worker to start",
    )
    assert service.process.poll() is None, f"the worker exited:\n{service.tail()}"
    return service


@contextlib.contextmanager
def another_system(
    github: GitHubSim, openai_fake: ScriptedOpenAI, workdir: Path, **overrides: str
) -> Iterator[System]:
    """An app and a worker beside the session's `system`, for settings it does not have (e.g.
    `MODEL_API=chat`). They get a redis-server of their own, so neither worker takes the other's
    tasks, and egress proxy port 3133, which no other test run on this host uses."""
    redis_server, url = start_redis(workdir)
    env = service_env(url, github, openai_fake, None, EGRESS_PORT="3133", **overrides)
    started: list[Service] = []
    try:
        app, app_url = start_app(env, workdir / "app.log")
        started.append(app)
        started.append(start_worker(env, workdir / "worker.log"))
        yield System(github, openai_fake, app_url, env, app, started[1])
    finally:
        for service in reversed(started):
            service.stop()
        redis_server.terminate()
        redis_server.wait(10)


def queue_settings(redis_url: str) -> Settings:
    """Settings for talking to the queue on `redis_url`, and nothing else."""
    return Settings(
        app_id=1, private_key="unused", webhook_secret="unused-in-this-test-42",
        openai_api_key="sk-unused", redis_url=redis_url,
    )  # fmt: skip


def redis_scenario(redis_url: str, scenario: Callable[[ArqRedis], Awaitable[T]]) -> T:
    """Run `scenario` on the queue's connection to an emptied database of `redis_url` (db 6, kept
    apart from the running system's), and empty it again afterwards."""

    async def wrapped() -> T:
        redis = await queue.connect(queue_settings(redis_url.replace("/0", "/6")))
        try:
            await redis.flushdb()
            return await scenario(redis)
        finally:
            await redis.flushdb()
            await redis.aclose()

    return asyncio.run(wrapped())


def model_settings(fake: ScriptedOpenAI, api: str = "responses", **overrides: Any) -> Settings:
    """Settings for a model backend pointed at the scripted server `fake`, without retries."""
    values: dict[str, Any] = {
        "app_id": 1,
        "private_key": "unused",
        "webhook_secret": "a-real-secret-value",
        "openai_api_key": fake.api_key,
        "openai_base_url": fake.url,
        "codex_model": "scripted-model",
        "model_api": api,
        "model_retries": 0,
        "model_timeout": 5.0,
    }
    return Settings(**(values | overrides))


class Form(HTMLParser):
    """The setup page's form, as a browser reads it: where it posts and its fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.method = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.action, self.method = found["action"], found["method"]
        elif tag == "input":
            self.fields[found["name"]] = found["value"]

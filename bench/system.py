"""The system under measurement, started with the tests' own harness (`tests/harness.py`).

Redis, the GitHub simulator, the scripted model, the app on uvicorn and an arq worker that
can be restarted with other settings (`MAX_CONCURRENT_TASKS` for the throughput runs).
Benchmarks arrange repositories and issues, label them, and read back what happened.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
from arq.constants import default_queue_name, health_check_key_suffix

from bench.timeline import StampedRequests, TaskLog, failure, finished_task, stamp_when
from tests.fakes.github import GitHubSim
from tests.fakes.openai import ScriptedOpenAI, Turn
from tests.harness import (
    WEBHOOK_SECRET,
    Service,
    service_env,
    start_app,
    start_redis,
    start_worker,
    wait_for,
)

OWNER = "bench"
"""Every benchmark repository lives under this owner (one installation of the App)."""
SENDER = "alice"
HEALTH_CHECK = default_queue_name + health_check_key_suffix
SELF_TEST = "network self-test:"
"""The start of the line the worker logs when its first network self-test ends, either way."""


@dataclass
class BenchSystem:
    logs: Path
    sim: GitHubSim
    fake: ScriptedOpenAI
    calls: StampedRequests
    """The fake model's requests, with their arrival times."""
    env: dict[str, str]
    app: Service
    app_url: str
    worker: Service | None = None
    worker_log: Path | None = None
    stopped: list[Service] = field(default_factory=list)
    more: list[Service] = field(default_factory=list)
    """Workers started beside `worker` (`add_worker`), stopped with it."""

    def start_worker(self, **overrides: str) -> Service:
        """A fresh worker (the previous ones stopped) with `overrides` in its environment, once
        its startup is done (arq records its first health check only after `on_startup`) and
        its first network self-test has told its verdict."""
        self.stop_worker()
        self.worker = self._started(overrides)
        self.worker_log = self.worker.log
        return self.worker

    def add_worker(self, **overrides: str) -> Service:
        """Another worker beside the running one, sharing its Redis (give it its own
        `EGRESS_PORT`)."""
        self.more.append(self._started(overrides))
        return self.more[-1]

    def _started(self, overrides: dict[str, str]) -> Service:
        number = len(self.stopped) + len(self.more) + (self.worker is not None) + 1
        log = self.logs / f"worker-{number}.log"
        client = redis.Redis.from_url(self.env["REDIS_URL"])
        try:
            client.delete(HEALTH_CHECK)
            worker = start_worker(self.env | overrides, log)
            wait_for(lambda: client.exists(HEALTH_CHECK), 30, "the worker's startup")
            # Its start-up network self-test (two probe sandboxes) runs in the background after
            # that; the figures are of a worker that is up, not of one still starting.
            wait_for(lambda: SELF_TEST in log.read_text(), 60, "the worker's network self-test")
        finally:
            client.close()
        return worker

    def stop_worker(self) -> None:
        """Stop every running worker."""
        for worker in [*self.more, *([self.worker] if self.worker else [])]:
            worker.stop()
            self.stopped.append(worker)
        self.more, self.worker = [], None

    def worker_logs(self) -> list[Path]:
        return [w.log for w in [*([self.worker] if self.worker else []), *self.more]]

    def create_repo(self, name: str, files: dict[str, str]) -> str:
        repo = f"{OWNER}/{name}"
        self.sim.create_repo(repo, files)
        self.sim.set_permission(repo, SENDER, "write")
        return repo

    def new_issue(self, repo: str, title: str, turns: list[Turn]) -> int:
        """An issue titled `title` (unique in the run), the model's script for it."""
        self.fake.script(title, turns)
        return self.sim.create_issue(repo, title, "Benchmark task.", user=SENDER)

    def label(self, repo: str, number: int, delivery: str) -> float:
        """Deliver `issues.labeled` (the trigger label); returns when it was sent."""
        payload = self.sim.webhook_payload(
            "issues", "labeled", repo, sender=SENDER, number=number, label="codex"
        )
        sent = time.time()
        url = f"{self.app_url}/webhook"
        response = self.sim.deliver(url, WEBHOOK_SECRET, "issues", payload, delivery_id=delivery)
        if response.status_code != 202:
            raise RuntimeError(f"delivery {delivery}: {response.status_code} {response.text}")
        return sent

    def pr_opened(self, repo: str, title: str, delivery: str, timeout: float = 120) -> float:
        """When the draft PR for the issue titled `title` appeared (see `stamp_when`)."""
        log = self.worker_log
        assert log is not None, "no worker is running"
        return stamp_when(
            lambda: any(title in pull["title"] for pull in self.sim.pulls(repo)),
            timeout,
            f"the PR for {title!r}",
            unless=lambda: failure(log, delivery),
        )

    def finished(self, delivery: str, timeout: float = 60) -> TaskLog:
        """The worker's log of the task of `delivery`, once it has ended."""
        assert self.worker_log is not None, "no worker is running"
        return finished_task(self.worker_logs(), delivery, timeout)

    def services(self) -> list[Service]:
        return [self.app, *self.stopped, *([self.worker] if self.worker else []), *self.more]


@contextmanager
def running_system(logs: Path) -> Iterator[BenchSystem]:
    """Everything up, a worker included; on failure the services' log tails go to stderr."""
    redis, redis_url = start_redis(logs)
    calls = StampedRequests()
    system: BenchSystem | None = None
    try:
        with GitHubSim(logs / "github") as sim, ScriptedOpenAI(requests=calls) as fake:
            env = service_env(redis_url, sim, fake)
            app, app_url = start_app(env, logs / "app.log")
            system = BenchSystem(logs, sim, fake, calls, env, app, app_url)
            try:
                system.start_worker()
                yield system
            except BaseException:
                for service in system.services():
                    print(f"--- {service.log.name} ---\n{service.tail(40)}", file=sys.stderr)
                raise
            finally:
                system.stop_worker()
                app.stop()
    finally:
        redis.terminate()
        redis.wait(10)

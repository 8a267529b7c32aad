"""Interruptions end to end: kills, an engine that goes away, a stop that outlasts its grace, a
job that vanishes. Each test runs its own Redis, app and workers (egress ports 3134 and 3136,
which no other test run on this host uses at the same time) on the real Docker engine and the
GitHub simulator, kills only processes it started, by pid, and prints its figure.

The engine is taken away from one worker only: that worker reaches the machine's engine through
a relay the test cuts (`tests/relay.py`), so the engine itself and everyone else using it carry
on.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import redis

from tests.fakes.github import GitHubSim
from tests.fakes.openai import ScriptedOpenAI, finish, shell
from tests.harness import (
    WEBHOOK_SECRET,
    Service,
    service_env,
    start_app,
    start_redis,
    start_worker,
    wait_for,
)
from tests.relay import engine_relay
from worker.reaper import FLEET_LABEL, fleet_of


@dataclass
class Fleet:
    """A Redis, an app and the workers a test starts on them."""

    sim: GitHubSim
    workdir: Path
    env: dict[str, str]
    app_url: str
    redis: redis.Redis
    started: list[Service] = field(default_factory=list)

    def worker(self, name: str, **overrides: str) -> Service:
        one = start_worker(self.env | overrides, self.workdir / f"{name}.log")
        self.started.append(one)
        return one

    def label(self, repo: str, number: int, delivery: str) -> None:
        payload = self.sim.webhook_payload(
            "issues", "labeled", repo, sender="alice", number=number, label="codex"
        )
        response = self.sim.deliver(f"{self.app_url}/webhook", WEBHOOK_SECRET, "issues", payload,
                                    delivery_id=delivery)  # fmt: skip
        assert response.status_code == 202, response.text

    def status(self, repo: str, number: int, *words: str) -> dict[str, Any] | None:
        """The status comment, once its body holds every one of `words`."""
        return next((c for c in self.sim.comments(repo, number)
                     if all(w in c["body"] for w in words)), None)  # fmt: skip

    def locked(self, repo: str, number: int) -> bool:
        return bool(self.redis.exists(f"codex:active:{repo}#{number}"))

    def presences(self) -> list[dict[str, Any]]:
        keys: list[bytes] = self.redis.keys("codex:worker:*")  # type: ignore[assignment]
        return [json.loads(self.redis.get(k) or "{}") for k in keys]  # type: ignore[arg-type]

    def logs(self) -> str:
        return "\n".join(f"--- {s.log.name} ---\n{s.tail(30)}" for s in self.started)


@contextlib.contextmanager
def fleet(sim: GitHubSim, openai: ScriptedOpenAI, workdir: Path, **env: str) -> Iterator[Fleet]:
    redis_server, url = start_redis(workdir)
    environment = service_env(url, sim, openai, None, EGRESS_PORT="3134", **env)
    client = redis.Redis.from_url(url)
    app: Service | None = None
    try:
        app, app_url = start_app(environment, workdir / "app.log")
        one = Fleet(sim, workdir, environment, app_url, client)
        try:
            yield one
        finally:
            for service in reversed(one.started):
                service.stop()
            _remove_containers(fleet_of(url))
    finally:
        if app is not None:
            app.stop()
        client.close()
        redis_server.terminate()
        redis_server.wait(10)


def _remove_containers(fleet_id: str) -> None:
    """What this test's workers left on the engine (a worker that lost its engine mid-task
    could not remove its container); only this fleet's, by its label."""
    engine = docker.from_env()
    try:
        for container in engine.containers.list(all=True, filters={"label": f"{FLEET_LABEL}="
                                                                   f"{fleet_id}"}):  # fmt: skip
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
    finally:
        engine.close()


def issue(sim: GitHubSim, openai: ScriptedOpenAI, repo: str, title: str, turns: list[Any]) -> int:
    sim.create_repo(repo, {"README.md": f"# {repo}\n"})
    sim.set_permission(repo, "alice", "write")
    openai.script(title, turns)
    return sim.create_issue(repo, title, "Add a line to the README.", user="alice")


def tries_started(worker: Service) -> list[int]:
    lines = worker.log.read_text(errors="replace").splitlines()
    return [int(line.rsplit("try ", 1)[1].rstrip(")")) for line in lines if ": started (" in line]


def test_three_kills_during_one_task_end_it_with_a_final_status_and_free_its_issue(
    github: GitHubSim, openai_fake: ScriptedOpenAI, docker_ready: None, tmp_path: Path
) -> None:
    repo, title = "octo-org/kill-thrice", "Interrupted: killed three times"
    number = issue(github, openai_fake, repo, title, [[shell("sleep 300")], [finish("No.")]])
    with fleet(github, openai_fake, tmp_path) as f:
        f.label(repo, number, "kill-thrice-1")
        for n in (1, 2, 3):
            worker = f.worker(f"worker-{n}")

            def running(n: int = n, worker: Service = worker) -> bool:
                steps = len(list(openai_fake.conversation(title)))
                return n in tries_started(worker) and steps >= n

            wait_for(running, 150, f"try {n} on worker {n}\n{f.logs()}")
            worker.process.kill()  # SIGKILL, by pid: no cleanup, no last word
            worker.process.wait(10)
            killed = time.monotonic()
            print(f"try {n}: worker {n} (pid {worker.process.pid}) killed with SIGKILL")
        f.worker("worker-4")
        final = wait_for(lambda: f.status(repo, number, "interrupted 3 times"), 120,
                         f"the final status after the third kill\n{f.logs()}")  # fmt: skip
        print(f"final status {time.monotonic() - killed:.1f} s after the third kill: "
              f"{final['body'].splitlines()[0]}")  # fmt: skip
        assert "`/codex fix`" in final["body"]
        assert not f.locked(repo, number), "the issue is free for a new task"
        assert len(github.comments(repo, number)) == 1, "one status comment, edited in place"
        assert github.pulls(repo) == []
        assert not any(tries_started(s) for s in f.started[3:]), "arq did not start a 4th try"


def test_a_worker_that_loses_its_engine_mid_task_hands_it_to_a_worker_with_one(
    github: GitHubSim, openai_fake: ScriptedOpenAI, docker_ready: None, tmp_path: Path
) -> None:
    repo, title = "octo-org/engine-gone", "Interrupted: the engine goes away"
    number = issue(github, openai_fake, repo, title, [
        [shell("sleep 15")],  # the engine goes away during this command
        [shell("echo 'another engine' >> README.md")],
        [finish("Added the line.")],
    ])  # fmt: skip
    relay = engine_relay()
    with fleet(github, openai_fake, tmp_path) as f:
        cut_off = f.worker("worker-cut", DOCKER_HOST=f"tcp://127.0.0.1:{relay.port}")
        f.label(repo, number, "engine-gone-1")
        wait_for(lambda: list(openai_fake.conversation(title)), 120, f"the agent\n{f.logs()}")
        time.sleep(1)  # the command is running in its container
        relay.cut()
        cut = time.monotonic()
        requeued = wait_for(lambda: f.status(repo, number, "Re-queued", "container engine"), 90,
                            f"the re-queued status\n{f.logs()}")  # fmt: skip
        print(f"re-queued {time.monotonic() - cut:.1f} s after the engine went away: "
              f"{requeued['body'].splitlines()[0]}")  # fmt: skip
        assert f"DOCKER_HOST=tcp://127.0.0.1:{relay.port}" in requeued["body"]
        paused = wait_for(lambda: [p for p in f.presences() if p.get("accepting") is False], 30,
                          "the worker to say it takes no tasks")  # fmt: skip
        print(f"the cut-off worker's presence: {paused[0]}")
        healthy = f.worker("worker-healthy", EGRESS_PORT="3136")
        done = wait_for(lambda: f.status(repo, number, "Draft PR ready"), 150,
                        f"the PR from the healthy worker\n{f.logs()}")  # fmt: skip
        print(f"draft PR {time.monotonic() - cut:.1f} s after the engine went away")
        assert len(github.pulls(repo)) == 1
        assert str(github.pulls(repo)[0]["number"]) in done["body"]
        assert tries_started(cut_off) == [1], "the cut-off worker took it once, not again"
        assert tries_started(healthy) == [2]
        relay.restore()
        back = time.monotonic()
        wait_for(lambda: all(p.get("accepting") for p in f.presences()) and len(f.presences())
                 == 2, 40, f"the cut-off worker to take tasks again\n{cut_off.tail()}")  # fmt: skip
        print(f"the cut-off worker takes tasks again {time.monotonic() - back:.1f} s after its "
              "engine came back")  # fmt: skip
    relay.close()


def test_a_stop_that_outlasts_its_grace_hands_the_task_to_the_next_worker(
    github: GitHubSim, openai_fake: ScriptedOpenAI, docker_ready: None, tmp_path: Path
) -> None:
    repo, title = "octo-org/stop-late", "Interrupted: the task outlasts the grace"
    number = issue(github, openai_fake, repo, title, [
        [shell("sleep 20")],  # SIGTERM arrives during this command, with 5 s of grace
        [shell("echo 'handed back' >> README.md")],
        [finish("Added the line.")],
    ])  # fmt: skip
    with fleet(github, openai_fake, tmp_path, SHUTDOWN_GRACE="5") as f:
        first = f.worker("worker-1")
        f.label(repo, number, "stop-late-1")
        wait_for(lambda: list(openai_fake.conversation(title)), 120, f"the agent\n{f.logs()}")
        first.process.terminate()  # SIGTERM, by pid
        stopping = time.monotonic()
        first.process.wait(60)
        print(f"the worker stopped {time.monotonic() - stopping:.1f} s after SIGTERM "
              "(SHUTDOWN_GRACE=5)")  # fmt: skip
        handed = f.status(repo, number, "Re-queued", "worker stopped")
        assert handed is not None, f"{github.comments(repo, number)}\n{first.tail()}"
        print(f"status while no worker runs: {handed['body'].splitlines()[0]}")
        assert f.locked(repo, number), "still the task's issue"
        second = f.worker("worker-2")
        done = wait_for(lambda: f.status(repo, number, "Draft PR ready"), 150,
                        f"the PR from the next worker\n{f.logs()}")  # fmt: skip
        print(f"draft PR {time.monotonic() - stopping:.1f} s after SIGTERM")
        assert len(github.pulls(repo)) == 1 and "Resuming" not in done["body"]
        assert tries_started(first) == [1] and tries_started(second) == [2]
        history = github.comments(repo, number)[0]["history"]
        assert any("Resuming: try 2 of 3" in body for body in history), history


def test_a_task_whose_job_vanished_is_ended_and_its_issue_can_be_triggered_again(
    github: GitHubSim, openai_fake: ScriptedOpenAI, docker_ready: None, tmp_path: Path
) -> None:
    repo, title = "octo-org/job-vanished", "Interrupted: the job vanishes"
    number = issue(github, openai_fake, repo, title, [
        [shell("echo 'second time' >> README.md")], [finish("Added the line.")],
    ])  # fmt: skip
    with fleet(github, openai_fake, tmp_path) as f:
        f.label(repo, number, "job-vanished-1")  # no worker runs yet: it stays queued
        wait_for(lambda: f.status(repo, number, "Queued"), 30, "the queued status")
        [job] = f.redis.zrange("arq:queue", 0, -1)  # type: ignore[misc]
        f.redis.delete(b"arq:job:" + job)  # lost, as a flushed or expired job is
        f.redis.zrem("arq:queue", job)
        started = time.monotonic()
        f.worker("worker")
        lost = wait_for(lambda: f.status(repo, number, "This task was lost"), 60,
                        f"the lost task's final status\n{f.logs()}")  # fmt: skip
        print(f"a task whose job vanished was ended {time.monotonic() - started:.1f} s after a "
              "worker started")  # fmt: skip
        assert "`/codex fix`" in lost["body"]
        assert not f.locked(repo, number)
        f.label(repo, number, "job-vanished-2")
        wait_for(lambda: f.status(repo, number, "Draft PR ready"), 120, f"the new task\n{f.logs()}")
        print(f"status comments: {len(github.comments(repo, number))}, "
              f"PRs: {len(github.pulls(repo))}")  # fmt: skip
        assert len(github.comments(repo, number)) == 2 and len(github.pulls(repo)) == 1

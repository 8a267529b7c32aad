"""Nothing lost, nothing twice: a killed worker's task, its containers, a 502 after a PR.

The kill test runs an app and two workers of its own, on a Redis of their own and egress port
3134, so killing a worker touches nothing another test uses; only processes it started are
killed, by pid.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import docker
import pytest

from tests.fakes.github import GitHubSim
from tests.fakes.openai import ScriptedOpenAI, finish, shell
from tests.harness import (
    Service,
    System,
    service_env,
    start_app,
    start_redis,
    start_worker,
    wait_for,
)
from worker.reaper import FLEET_LABEL, WORKER_LABEL, fleet_of


@pytest.fixture
def engine(docker_ready: None) -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    try:
        yield client
    finally:
        client.close()


def _labelled(engine: docker.DockerClient, label: str) -> list[str]:
    return [str(c.id) for c in engine.containers.list(all=True, filters={"label": label})]


def test_a_killed_workers_task_is_picked_up_by_another_and_ends_with_one_pr(
    github: GitHubSim,
    openai_fake: ScriptedOpenAI,
    engine: docker.DockerClient,
    tmp_path: Path,
) -> None:
    sim = github
    repo = "octo-org/durable-kill"
    title = "Durable: the worker dies mid-task"
    sim.create_repo(repo, {"README.md": "# durable\n"})
    sim.set_permission(repo, "alice", "write")
    number = sim.create_issue(repo, title, "Add a line to the README.", user="alice")
    openai_fake.script(
        title,
        [
            [shell("sleep 25")],  # the first worker is killed during this command
            [shell("echo 'survives a crash' >> README.md")],
            [finish("Added the line.", [])],
        ],
    )
    redis_server, url = start_redis(tmp_path)
    env = service_env(url, sim, openai_fake, None, EGRESS_PORT="3134")
    started: list[Service] = []
    try:
        app, app_url = start_app(env, tmp_path / "app.log")
        started.append(app)
        first = start_worker(env, tmp_path / "worker-1.log")
        started.append(first)
        system = System(sim, openai_fake, app_url, env, app, first)
        payload = sim.webhook_payload(
            "issues", "labeled", repo, sender="alice", number=number, label="codex"
        )
        assert system.deliver("issues", payload, delivery_id="durable-kill-1") == 202

        fleet = f"{FLEET_LABEL}={fleet_of(url)}"
        wait_for(lambda: list(openai_fake.conversation(title)), 120, f"the agent's first step\n"
                 f"{first.tail()}")  # fmt: skip
        orphans = wait_for(lambda: _labelled(engine, fleet), 30, "the task's container")
        owner = engine.containers.get(orphans[0]).labels[WORKER_LABEL]
        first.process.kill()
        first.process.wait(10)
        killed = time.monotonic()

        second = start_worker(env, tmp_path / "worker-2.log")
        started.append(second)
        wait_for(lambda: "try 2" in second.log.read_text(), 120, f"the task's second try\n"
                 f"{second.tail()}")  # fmt: skip
        recovery = time.monotonic() - killed
        print(f"time to recovery after SIGKILL: {recovery:.1f} s")
        assert recovery < 75
        wait_for(
            lambda: any("try 2 of 3" in c["body"] for c in sim.comments(repo, number)),
            60,
            "the status comment to say the task resumed",
        )
        pulls = wait_for(lambda: sim.pulls(repo), 120, f"a draft PR\n{second.tail()}")
        wait_for(
            lambda: [c for c in sim.comments(repo, number) if "Draft PR ready" in c["body"]],
            30,
            "the final status",
        )
        assert len(sim.pulls(repo)) == 1 == len(pulls), "one PR for one task"
        assert len(sim.comments(repo, number)) == 1, "one status comment, edited in place"

        left = wait_for(
            lambda: None if _labelled(engine, f"{WORKER_LABEL}={owner}") else orphans,
            120,
            f"the dead worker's containers to be reaped\n{second.tail()}",
        )
        print(f"containers the killed worker left behind, reaped: {len(left)}")
        assert "reaped" in second.log.read_text()
    finally:
        for service in reversed(started):
            service.stop()
        redis_server.terminate()
        redis_server.wait(10)


def test_a_502_after_the_pr_was_created_still_ends_with_one_pr(system: System) -> None:
    sim = system.github
    repo = "octo-org/durable-502"
    title = "Durable: GitHub loses the answer"
    sim.create_repo(repo, {"README.md": "# d\n"})
    sim.set_permission(repo, "alice", "write")
    number = sim.create_issue(repo, title, "Add a line.", user="alice")
    system.openai.script(
        title, [[shell("echo 'one PR' >> README.md")], [finish("Added the line.", [])]]
    )
    # GitHub creates the PR, then its edge answers 502; githubkit retries the POST and gets 422.
    sim.fail("POST", rf"^/repos/{repo}/pulls$", 502, after=True)
    payload = sim.webhook_payload(
        "issues", "labeled", repo, sender="alice", number=number, label="codex"
    )
    assert system.deliver("issues", payload, delivery_id="durable-502-1") == 202
    done = wait_for(
        lambda: [
            c
            for c in sim.comments(repo, number)
            if "Draft PR ready" in c["body"] or "failed" in c["body"]
        ],
        120,
        f"the final status\n{system.logs()}",
    )
    pulls = sim.pulls(repo)
    creates = [r.status for r in sim.requests if r.method == "POST" and r.path.endswith(
        f"/repos/{repo}/pulls")]  # fmt: skip
    print(f"PRs after a 502 on creation: {len(pulls)} (POST /pulls answered {creates})")
    assert creates[0] == 502, "the fault fired"
    assert "Draft PR ready" in done[0]["body"], done[0]["body"]
    assert len(pulls) == 1
    assert str(pulls[0]["number"]) in done[0]["body"]


def test_a_token_that_expires_mid_task_is_replaced_for_the_push_and_the_status(
    system: System,
) -> None:
    sim = system.github
    repo = "octo-org/durable-token"
    title = "Durable: the token dies mid-task"
    sim.create_repo(repo, {"README.md": "# t\n"})
    sim.set_permission(repo, "alice", "write")
    number = sim.create_issue(repo, title, "Add a line.", user="alice")
    system.openai.script(
        title,
        [
            [shell("sleep 8")],  # the task's tokens are expired meanwhile
            [shell("echo 'fresh token' >> README.md")],
            [finish("Added the line.", [])],
        ],
    )

    def pushers() -> list[str]:
        return [t for t in sim.tokens_issued if sim.token_info(t).allows("contents", "write")
                and "durable-token" in set(sim.token_info(t).repositories or ())]  # fmt: skip

    sim.set_token_lifetime(timedelta(seconds=302))  # 2 s before the worker's 5-minute margin
    try:
        payload = sim.webhook_payload(
            "issues", "labeled", repo, sender="alice", number=number, label="codex"
        )
        assert system.deliver("issues", payload, delivery_id="durable-token-1") == 202
        wait_for(lambda: list(system.openai.conversation(title)), 120, "the agent's first step")
        for token in pushers():
            sim.expire_token(token)
        expired = len(pushers())
        done = wait_for(
            lambda: [
                c
                for c in sim.comments(repo, number)
                if "Draft PR" in c["body"] or "failed" in c["body"]
            ],
            120,
            f"the final status\n{system.logs()}",
        )
    finally:
        sim.set_token_lifetime(timedelta(hours=1))
    print(f"tokens expired mid-task: {expired}; minted in all: {len(pushers())}")
    assert "Draft PR ready" in done[0]["body"], done[0]["body"]
    assert len(sim.pulls(repo)) == 1


def test_sigterm_lets_the_running_task_finish_before_the_worker_stops(
    github: GitHubSim,
    openai_fake: ScriptedOpenAI,
    docker_ready: None,
    tmp_path: Path,
) -> None:
    sim = github
    repo = "octo-org/durable-term"
    title = "Durable: the worker is told to stop"
    sim.create_repo(repo, {"README.md": "# term\n"})
    sim.set_permission(repo, "alice", "write")
    number = sim.create_issue(repo, title, "Add a line.", user="alice")
    openai_fake.script(
        title,
        [
            [shell("sleep 8")],  # SIGTERM arrives during this command
            [shell("echo 'graceful' >> README.md")],
            [finish("Added the line.", [])],
        ],
    )
    redis_server, url = start_redis(tmp_path)
    env = service_env(url, sim, openai_fake, None, EGRESS_PORT="3134", SHUTDOWN_GRACE="60")
    started: list[Service] = []
    try:
        app, app_url = start_app(env, tmp_path / "app.log")
        started.append(app)
        worker = start_worker(env, tmp_path / "worker.log")
        started.append(worker)
        system = System(sim, openai_fake, app_url, env, app, worker)
        payload = sim.webhook_payload(
            "issues", "labeled", repo, sender="alice", number=number, label="codex"
        )
        assert system.deliver("issues", payload, delivery_id="durable-term-1") == 202
        wait_for(lambda: list(openai_fake.conversation(title)), 120, "the agent's first step")
        worker.process.terminate()
        stopping = time.monotonic()
        worker.process.wait(60)
        print(f"the worker stopped {time.monotonic() - stopping:.1f} s after SIGTERM")
        comments = sim.comments(repo, number)
        assert any("Draft PR ready" in c["body"] for c in comments), worker.tail()
        assert len(sim.pulls(repo)) == 1
        assert "try 2" not in worker.log.read_text(), "finished on its first try"
    finally:
        for service in reversed(started):
            service.stop()
        redis_server.terminate()
        redis_server.wait(10)

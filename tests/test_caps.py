"""Concurrency caps across workers: the decision, the slots on a real Redis, and two real
workers that run two tasks of one installation one after the other under a cap of 1."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from arq.connections import ArqRedis

from app.keys import alive_key
from app.tasks import Task
from tests.fakes.github import GitHubSim
from tests.fakes.openai import ScriptedOpenAI, finish, shell
from tests.fleet import fleet
from tests.harness import redis_scenario, wait_for
from worker import caps
from worker.caps import Caps, Wait

WAITING = (
    "⏳ Queued: 1 task of this installation is running (the limit is 1); "
    "this one starts when one ends."
)


def task(repo: str, number: int, installation: int = 1) -> Task:
    return Task(repo=repo, number=number, installation_id=installation, sender="alice",
                trigger=f"label:cap-{repo}-{number}", delivery_id=f"cap-{number}")  # fmt: skip


def test_the_installation_cap_is_checked_first_and_zero_means_no_limit() -> None:
    assert caps.decide(Caps(2, 1), 2, 5) == Wait("installation", 2, 2)
    assert caps.decide(Caps(2, 1), 1, 1) == Wait("repository", 1, 1)
    assert caps.decide(Caps(2, 1), 1, 0) is None
    assert caps.decide(Caps(0, 0), 99, 99) is None
    assert caps.decide(Caps(0, 3), 99, 2) is None


def test_the_status_says_what_the_task_waits_for() -> None:
    assert caps.waiting_text(Wait("installation", 1, 1), "o/r") == WAITING
    assert caps.waiting_text(Wait("repository", 2, 2), "octo/web") == (
        "⏳ Queued: 2 tasks of `octo/web` are running (the limit is 2); "
        "this one starts when one ends."
    )


def test_twelve_tasks_racing_for_two_slots_get_exactly_two(redis_url: str) -> None:
    async def scenario(redis: ArqRedis) -> tuple[int, list[Wait | None]]:
        tasks = [task(f"octo/r{n % 3}", n) for n in range(12)]
        for one in tasks:
            await redis.set(alive_key(one.job_id), "w", ex=30)
        answers = await asyncio.gather(*(caps.take(redis, one, Caps(2, 0)) for one in tasks))
        return len([a for a in answers if a is None]), [a for a in answers if a is not None]

    found = redis_scenario(redis_url, scenario)
    assert isinstance(found, tuple)
    admitted, waits = found
    assert admitted == 2
    assert waits == [Wait("installation", 2, 2)] * 10


def test_a_slot_frees_when_its_task_ends_or_its_worker_dies(redis_url: str) -> None:
    async def scenario(redis: ArqRedis) -> list[Wait | None]:
        first, second, third = (task("octo/web", n) for n in (1, 2, 3))
        other_repo = task("octo/api", 4)
        for one in (first, second, third, other_repo):
            await redis.set(alive_key(one.job_id), "w", ex=30)
        limit = Caps(0, 1)
        seen = [await caps.take(redis, first, limit), await caps.take(redis, second, limit),
                await caps.take(redis, other_repo, limit)]  # fmt: skip
        seen.append(await caps.take(redis, first, limit))  # a new try of a task holding it
        await caps.release(redis, first)  # first ended
        seen.append(await caps.take(redis, second, limit))
        await redis.delete(alive_key(second.job_id))  # second's worker died: no more beats
        seen.append(await caps.take(redis, third, limit))
        return seen

    assert redis_scenario(redis_url, scenario) == [
        None,
        Wait("repository", 1, 1),
        None,  # another repository: its own slot
        None,
        None,
        None,
    ]


@pytest.mark.system
@pytest.mark.timeout(600)
def test_two_tasks_of_one_installation_on_two_workers_run_one_after_the_other(
    github: GitHubSim, openai_fake: ScriptedOpenAI, docker_ready: None, tmp_path: Path
) -> None:
    sim, owner = github, "octo-capped"
    repos = [f"{owner}/cap-a", f"{owner}/cap-b"]  # two repositories: the installation's cap
    issues: list[tuple[str, int, str]] = []
    for n, repo in enumerate(repos):
        sim.create_repo(repo, {"README.md": "# capped\n"})
        sim.set_permission(repo, "alice", "write")
        title = f"Capped: installation task {n}"
        openai_fake.script(
            title, [[shell(f"sleep 6 && echo {n} >> NOTES.md")], [finish(f"Noted {n}.")]]
        )
        issues.append((repo, sim.create_issue(repo, title, "Add a note.", user="alice"), title))

    seen: dict[str, dict[str, float]] = {title: {} for _, _, title in issues}
    with fleet(sim, openai_fake, tmp_path, MAX_TASKS_PER_INSTALLATION="1") as group:
        group.start_worker("worker-1", EGRESS_PORT="3131")
        group.start_worker("worker-2", EGRESS_PORT="3132")
        for n, (repo, number, _) in enumerate(issues):
            group.label(repo, number, f"capped-{n}")

        def stamp() -> bool:
            now = time.monotonic()
            for repo, number, title in issues:
                bodies = [c["body"] for c in sim.comments(repo, number)]
                marks = {"waiting": any(WAITING in b for b in bodies),
                         "working": bool(list(openai_fake.conversation(title))),
                         "done": any("Draft PR ready" in b for b in bodies)}  # fmt: skip
                for mark, on in marks.items():
                    if on:
                        seen[title].setdefault(mark, now)
            return all("done" in marks for marks in seen.values())

        wait_for(stamp, 300, "both draft PRs")
        logs = [worker.log.read_text() for worker in group.workers]

    waited = [title for title, marks in seen.items() if "waiting" in marks]
    start = min(v for marks in seen.values() for v in marks.values())
    shown = {t: {k: round(v - start, 1) for k, v in m.items()} for t, m in seen.items()}
    print(f"when each task was seen waiting, working and done (s): {shown}")
    assert len(waited) == 1, f"exactly one task waited: {seen}"
    later = seen[waited[0]]
    first = next(marks for title, marks in seen.items() if title != waited[0])
    assert later["working"] > first["done"], "the waiting task started after the first ended"
    assert "retrying job" in "".join(logs), "the waiting task went back to arq's queue"
    assert "try 2)" not in "".join(logs), "waiting used up no try"
    for repo, number, _ in issues:
        assert "Draft PR ready" in sim.comments(repo, number)[-1]["body"]
    assert len([p for repo in repos for p in sim.pulls(repo)]) == 2

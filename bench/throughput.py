"""Throughput: tasks per minute with 1, 2 and 4 tasks at once, and how it scales against 1.

For each setting a fresh worker starts with `MAX_CONCURRENT_TASKS` set, and `per_slot` tasks
per slot are labeled at once; throughput is tasks over the time from the first delivery to the
last draft PR. The scripted model answers at once, so each task's one working turn runs
`sleep THINK` in its sandbox: a fixed think time that concurrency can overlap. The same run
samples the worker's RSS and its sandboxes' memory (see `memory`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import docker
import redis

from bench.memory import Peak, container_mb, redis_mb, redis_rows, rss_mb, task_containers
from bench.report import Row, progress, ratio, target
from bench.system import BenchSystem
from bench.timeline import failure, stamp_when
from tests.fakes.openai import finish, shell

FILES = {"README.md": "# throughput\n", "src/app.py": "print('hello')\n"}
IDLE_WINDOW = 1.0
"""Seconds the idle worker's RSS is sampled for."""


@dataclass(frozen=True)
class Batch:
    slots: int
    """`MAX_CONCURRENT_TASKS` of each worker."""
    tasks: int
    seconds: float
    idle_rss: float
    """MB, the first worker's RSS before the batch."""
    busy: Peak
    """Highest first `worker` RSS, `running` sandboxes, one `sandbox`'s memory, `redis` MB."""
    workers: int = 1
    redis_before: float = 0.0
    redis_after: float = 0.0
    """MB Redis used before the batch and once every task of it had ended."""

    @property
    def per_minute(self) -> float:
        return self.tasks / self.seconds * 60


def _sample(
    client: docker.DockerClient, pid: int, prefix: str, store: redis.Redis
) -> dict[str, float]:
    containers = task_containers(client, prefix)
    sandboxes = [container_mb(c) for c in containers]
    return {"worker": rss_mb(pid), "running": len(containers), "sandbox": max(sandboxes or [0]),
            "redis": redis_mb(store)}  # fmt: skip


def run_batch(
    system: BenchSystem,
    slots: int,
    per_slot: int,
    think: int,
    workers: int = 1,
    kind: str = "throughput",
) -> Batch:
    """`per_slot` tasks for each of the `slots` of each of `workers` workers, labeled at once."""
    worker = system.start_worker(MAX_CONCURRENT_TASKS=str(slots))
    for n in range(1, workers):  # each worker process on a host has its own proxy port
        system.add_worker(MAX_CONCURRENT_TASKS=str(slots), EGRESS_PORT=str(3128 + n))
    pid = worker.process.pid
    with Peak(lambda: {"worker": rss_mb(pid)}) as idle:
        time.sleep(IDLE_WINDOW)
    name = f"{workers}x{slots}" if workers > 1 else str(slots)
    name = f"{kind}-{name}"  # one repository per batch, whichever benchmarks run together
    repo = system.create_repo(name, FILES)
    count = per_slot * slots * workers
    deliveries = [f"{name}-{i}" for i in range(count)]
    numbers = [
        system.new_issue(
            repo,
            f"Throughput {name} at once, task {i}",
            [[shell(f"sleep {think} && echo {i} >> NOTES.md")], [finish("Noted.")]],
        )
        for i in range(count)
    ]
    logs = system.worker_logs()
    client = docker.from_env()
    store = redis.Redis.from_url(system.env["REDIS_URL"])
    try:
        before = redis_mb(store)
        with Peak(lambda: _sample(client, pid, f"task:{repo}#", store)) as busy:
            sent = [system.label(repo, n, d) for n, d in zip(numbers, deliveries, strict=True)]
            ended = stamp_when(
                lambda: len(system.sim.pulls(repo)) >= count,
                60 + count * (think + 10),
                f"{count} PRs with {slots} at once on {workers} worker(s)",
                unless=lambda: next(
                    filter(None, (failure(log, d) for d in deliveries for log in logs)), None
                ),
            )
        for delivery in deliveries:  # a task stopped while tidying up would run again later
            system.finished(delivery)
        after = redis_mb(store)
    finally:
        client.close()
        store.close()
    return Batch(slots, count, ended - sent[0], idle.get("worker"), busy, workers, before, after)


def bench_throughput(
    system: BenchSystem, slots: list[int], per_slot: int, think: int
) -> tuple[list[Row], Batch]:
    """Rows for each setting, and the busiest batch (for the memory figures)."""
    batches: list[Batch] = []
    for n in slots:
        progress(f"throughput: {per_slot * n} tasks, {n} at once")
        batches.append(run_batch(system, n, per_slot, think))
    base = batches[0]
    rows = []
    for batch in batches:
        name = f"{batch.slots} at a time" + (" (baseline)" if batch is base else "")
        ideal = f"ideal {batch.slots / base.slots:.0f}x; " if batch is not base else ""
        rows.append(
            Row(
                f"throughput, {name}",
                f"{batch.per_minute:.1f} tasks/min",
                ratio(batch.per_minute, base.per_minute),
                f"{ideal}{batch.tasks} tasks in {batch.seconds:.1f} s, think time {think} s",
            )
        )
    return rows, batches[-1]


TARGET = 1.9
"""Two workers against one: what issue 13 asks of throughput."""


def bench_workers(system: BenchSystem, slots: int, per_slot: int, think: int) -> list[Row]:
    """Throughput of two workers sharing one Redis against one worker, each with `slots`
    slots, with twice the tasks; and what Redis holds per task (see `memory.redis_rows`)."""
    batches = []
    for workers in (1, 2):
        progress(f"throughput: {per_slot * slots * workers} tasks on {workers} worker(s)")
        batches.append(run_batch(system, slots, per_slot, think, workers, kind="workers"))
    one, two = batches
    scale = two.per_minute / one.per_minute
    rows = [
        Row(
            f"throughput, 1 worker of {slots} slots (baseline)",
            f"{one.per_minute:.1f} tasks/min",
            "1.00x",
            f"{one.tasks} tasks in {one.seconds:.1f} s, think time {think} s",
        ),
        Row(
            f"throughput, 2 workers of {slots} slots, one Redis",
            f"{two.per_minute:.1f} tasks/min",
            f"{scale:.2f}x",
            f"{two.tasks} tasks in {two.seconds:.1f} s; {target(scale >= TARGET, f'{TARGET}x')}",
        ),
    ]
    return rows + redis_rows(two.redis_before, two.busy.get("redis"), two.redis_after, two.tasks)

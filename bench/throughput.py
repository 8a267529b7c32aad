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

from bench.memory import Peak, container_mb, rss_mb, task_containers
from bench.report import Row, progress, ratio
from bench.system import BenchSystem
from bench.timeline import failure, stamp_when
from tests.fakes.openai import finish, shell

FILES = {"README.md": "# throughput\n", "src/app.py": "print('hello')\n"}
IDLE_WINDOW = 1.0
"""Seconds the idle worker's RSS is sampled for."""


@dataclass(frozen=True)
class Batch:
    slots: int
    tasks: int
    seconds: float
    idle_rss: float
    """MB, the worker's RSS before the batch."""
    busy: Peak
    """Highest `worker` RSS, number of `running` sandboxes, and one `sandbox`'s memory."""

    @property
    def per_minute(self) -> float:
        return self.tasks / self.seconds * 60


def _sample(client: docker.DockerClient, pid: int, prefix: str) -> dict[str, float]:
    containers = task_containers(client, prefix)
    sandboxes = [container_mb(c) for c in containers]
    return {"worker": rss_mb(pid), "running": len(containers), "sandbox": max(sandboxes or [0])}


def run_batch(system: BenchSystem, slots: int, per_slot: int, think: int) -> Batch:
    worker = system.start_worker(MAX_CONCURRENT_TASKS=str(slots))
    pid = worker.process.pid
    with Peak(lambda: {"worker": rss_mb(pid)}) as idle:
        time.sleep(IDLE_WINDOW)
    repo = system.create_repo(f"throughput-{slots}", FILES)
    count = per_slot * slots
    deliveries = [f"throughput-{slots}-{i}" for i in range(count)]
    numbers = [
        system.new_issue(
            repo,
            f"Throughput {slots} at once, task {i}",
            [[shell(f"sleep {think} && echo {i} >> NOTES.md")], [finish("Noted.")]],
        )
        for i in range(count)
    ]
    log = system.worker_log
    assert log is not None
    client = docker.from_env()
    try:
        with Peak(lambda: _sample(client, pid, f"task:{repo}#")) as busy:
            sent = [system.label(repo, n, d) for n, d in zip(numbers, deliveries, strict=True)]
            ended = stamp_when(
                lambda: len(system.sim.pulls(repo)) >= count,
                60 + count * (think + 10),
                f"{count} PRs with {slots} at once",
                unless=lambda: next(filter(None, (failure(log, d) for d in deliveries)), None),
            )
    finally:
        client.close()
    for delivery in deliveries:  # a task stopped while tidying up would run again in the next batch
        system.finished(delivery)
    return Batch(slots, count, ended - sent[0], idle.get("worker"), busy)


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

"""Environment cache: task start for a repository whose setup takes ~20 s, cold versus warm.

Task start is dequeue → the agent's first model call. Cold runs the setup script and stores
the snapshot; warm starts from the snapshot and runs only `maintenance`.
"""

from __future__ import annotations

import os

from bench.report import Row, ratio, target
from bench.system import BenchSystem
from bench.timeline import model_calls
from tests.fakes.openai import finish, shell

TARGET = 0.10


def bench_cache(system: BenchSystem, setup_seconds: int) -> list[Row]:
    # Snapshots outlive a run (their TTL is minutes): a name of this run's own starts cold.
    name = f"cache-{os.getpid()}"
    config = f"setup: sleep {setup_seconds} && echo ready > ~/ready\nmaintenance: echo maintained\n"
    repo = system.create_repo(name, {"README.md": "x\n", ".github/codex.yml": config})
    starts = []
    for run in ("cold", "warm"):
        title = f"Cache bench {run} {name}"
        number = system.new_issue(repo, title, [[shell("cat ~/ready > out.txt")], [finish("done")]])
        delivery = f"cache-{run}-{name}"
        system.label(repo, number, delivery)
        system.pr_opened(repo, title, delivery, timeout=setup_seconds + 120)
        task = system.finished(delivery)
        starts.append(model_calls(system.fake, system.calls, title)[0] - task.dequeued)
    cold, warm = starts
    return [
        Row(
            f"task start, cold (setup sleeps {setup_seconds} s; baseline)", f"{cold:.2f} s", "1.00x"
        ),
        Row(
            "task start, warm (cached environment)",
            f"{warm:.2f} s",
            ratio(warm, cold, digits=3),
            target(warm < TARGET * cold, f"< {TARGET:.2f}x"),
        ),
    ]

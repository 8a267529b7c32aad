"""Repository size: task start for repositories with 10 MB, 100 MB and 1 GB of history.

The history is generated (see `history`): heavy old commits, a small tip. Task start is
dequeue → the agent's first model call; the container is started once the clone is done, so
"container up at" bounds the preparation. A bare `git clone --depth 50` of the same repository
shows what the worker's shallow clone alone costs, a full `git clone` what it saves. The
baseline is the smallest repository.
"""

from __future__ import annotations

from bench.history import add_history
from bench.overhead import clone_seconds
from bench.report import Row, progress, ratio
from bench.system import BenchSystem
from bench.timeline import model_calls
from tests.fakes.openai import finish, shell

FILES = {"README.md": "# sized\n", "src/app.py": "print('hello')\n"}


def label_of(megabytes: int) -> str:
    return f"{megabytes / 1024:g} GB" if megabytes >= 1024 else f"{megabytes} MB"


def bench_repos(system: BenchSystem, sizes: list[int]) -> list[Row]:
    rows: list[Row] = []
    base = 0.0
    for megabytes in sizes:
        size = label_of(megabytes)
        progress(f"repo size: generating {size} of history")
        repo = system.create_repo(f"size-{megabytes}", FILES)
        history = add_history(system.sim.repos[repo].path, megabytes)
        title = f"Repo size {size}"
        delivery = f"size-{megabytes}"
        number = system.new_issue(repo, title, [[shell("echo x >> NOTES.md")], [finish("Noted.")]])
        system.label(repo, number, delivery)
        system.pr_opened(repo, title, delivery)
        task = system.finished(delivery)
        start = model_calls(system.fake, system.calls, title)[0] - task.dequeued
        container_up = task.at("^sandbox .* started") - task.dequeued
        first = megabytes == sizes[0]
        base = start if first else base
        rows.append(
            Row(
                f"task start, {size} of history" + (" (baseline)" if first else ""),
                f"{start:.2f} s",
                ratio(start, base),
                f"{history.packed_mb:.0f} MB packed in {history.commits} commits, tip tree "
                f"{history.tip_bytes} bytes; container up at {container_up:.2f} s; bare "
                f"`git clone --depth 50` {clone_seconds(system, repo):.2f} s, full "
                f"`git clone` {clone_seconds(system, repo, depth=None):.2f} s",
            )
        )
    return rows

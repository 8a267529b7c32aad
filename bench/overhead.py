"""Task overhead: what the system adds around the agent's work, against the bare floor.

The system's share is dequeue → the agent's first command (authorize, read the issue, clone,
start the container, copy the checkout in) plus the last command → the draft PR (collect the
diff, remove the container, commit, push, open the PR). The floor is what anything must pay
to run that command on a checkout: `git clone` of the same repository from the simulator's git
server, plus `docker run --rm` of the sandbox image doing the same command.

The agent's commands start right after a model call arrives at the scripted fake (it answers
in a millisecond or two), and the last one ends right before the next call: the fake's request
times bracket them. A first, unmeasured task warms the worker's caches and connections.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.report import Row, ratio, target
from bench.system import OWNER, BenchSystem
from bench.timeline import model_calls
from tests.fakes.openai import finish, shell
from worker.gitops import auth_env

COMMAND = "echo benchmark >> NOTES.md"
FILES = {"README.md": "# overhead\n", "src/app.py": "print('hello')\n"}
TARGET_RATIO = 1.3
TARGET_SECONDS = 1.5


@dataclass(frozen=True)
class Overhead:
    before: float
    """Seconds from dequeue to the agent's first command."""
    after: float
    """Seconds from the agent's last command to the draft PR."""
    to_sandbox: float
    """Of `before`: dequeue → the container started (the worker logs it)."""
    to_removed: float
    """Of `after`: the last command → the container removed."""

    @property
    def total(self) -> float:
        return self.before + self.after


def one_task(system: BenchSystem, repo: str, run: str) -> Overhead:
    title = f"Overhead task {run}"
    number = system.new_issue(repo, title, [[shell(COMMAND)], [finish("Noted.")]])
    delivery = f"overhead-{run}"
    system.label(repo, number, delivery)
    opened = system.pr_opened(repo, title, delivery)
    task = system.finished(delivery)
    calls = model_calls(system.fake, system.calls, title)
    first, last = calls[0], calls[-1]
    return Overhead(
        before=first - task.dequeued,
        after=opened - last,
        to_sandbox=task.at("^sandbox .* started") - task.dequeued,
        to_removed=task.at("^sandbox .* removed") - last,
    )


@dataclass(frozen=True)
class Floor:
    clone: float
    run: float

    @property
    def total(self) -> float:
        return self.clone + self.run


def clone_seconds(system: BenchSystem, repo: str, depth: int | None = 50) -> float:
    """A bare `git clone` from the simulator's git server, by default `--depth 50` (the
    worker's depth); `depth=None` clones the whole history."""
    env = os.environ | auth_env(system.sim.issue_token(OWNER))
    shallow = ["--depth", str(depth)] if depth else []
    with tempfile.TemporaryDirectory(prefix="codex-bench-clone-") as workdir:
        started = time.perf_counter()
        subprocess.run(
            ["git", "clone", "--quiet", *shallow, system.sim.clone_url(repo),
             str(Path(workdir) / "repo")],
            env=env, check=True,
        )  # fmt: skip
        return time.perf_counter() - started


def one_floor(system: BenchSystem, repo: str, image: str) -> Floor:
    cloned = clone_seconds(system, repo)
    started = time.perf_counter()
    subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image, "sh", "-c", COMMAND],
        check=True, capture_output=True,
    )  # fmt: skip
    return Floor(cloned, time.perf_counter() - started)


def bench_overhead(system: BenchSystem, repeat: int) -> list[Row]:
    repo = system.create_repo("overhead", FILES)
    image = system.env["SANDBOX_IMAGE"]
    one_task(system, repo, "warm-up")
    one_floor(system, repo, image)
    tasks = sorted((one_task(system, repo, str(i)) for i in range(repeat)), key=lambda o: o.total)
    floors = sorted((one_floor(system, repo, image) for _ in range(repeat)), key=lambda f: f.total)
    task, floor = tasks[len(tasks) // 2], floors[len(floors) // 2]
    spread = f"{tasks[0].total:.2f}-{tasks[-1].total:.2f} s"
    met = task.total < TARGET_RATIO * floor.total and task.total < TARGET_SECONDS
    return [
        Row(
            "task floor: `git clone` + `docker run --rm` (baseline)",
            f"{floor.total:.2f} s",
            "1.00x",
            f"clone {floor.clone:.2f} s + run {floor.run:.2f} s; median of {repeat}",
        ),
        Row(
            "task overhead: dequeue → first command + last command → PR",
            f"{task.total:.2f} s",
            ratio(task.total, floor.total),
            f"{task.before:.2f} s (container up at {task.to_sandbox:.2f} s) + {task.after:.2f} s "
            f"(container gone at {task.to_removed:.2f} s); median of {repeat} warm tasks, "
            f"range {spread}; " + target(met, f"< {TARGET_RATIO}x and < {TARGET_SECONDS} s"),
        ),
    ]

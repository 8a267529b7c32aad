"""Points in a task's life, read from what the system already records, never instrumented.

- dequeue and finish: the worker's own log lines (`task …: started (delivery …)`, then the
  result line), whose timestamps have millisecond resolution;
- the model calls: the scripted fake's request log, given a clock by `StampedRequests`;
- the PR: the simulator's pull requests, watched every few milliseconds by `stamp_when`.

All are wall-clock seconds (`time.time()`), the clock the worker's log lines are written in.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.fakes.openai import ScriptedOpenAI
from tests.harness import wait_for

LINE = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ worker\.\S+ "
    r"task (?P<job>\S+): (?P<what>.*)$"
)
STARTED = re.compile(r"^started \(delivery (?P<delivery>[^,)]+)(, try \d+)?\)$")
ATTEMPT = re.compile(r"/\d+$")
"""A job id's attempt suffix, as the sandbox's log lines carry it (`task:…/1`)."""
RESULT = re.compile(r"^(published to |picked attempt |no changes|failed: |cancelled|refused: )")
"""What `worker.jobs.run_task` logs last; a draft PR is `published to …`."""
WATCH_EVERY = 0.005
"""Seconds between looks at the simulator while stamping an event."""


class StampedRequests(list[dict[str, Any]]):
    """The fake model's request log (`ScriptedOpenAI(requests=...)`) with arrival times."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, body: dict[str, Any], /) -> None:
        self.times.append(time.time())  # the fake appends under its lock: the two stay paired
        super().append(body)


def model_calls(fake: ScriptedOpenAI, calls: StampedRequests, title: str) -> list[float]:
    """When each model call of the conversation about `title` (the issue's title) arrived."""
    ours = {id(body) for body in fake.conversation(title)}
    return [at for at, body in zip(calls.times, list(calls), strict=False) if id(body) in ours]


@dataclass(frozen=True)
class TaskLog:
    """A task as the worker's log tells it: (when, what) from `started (delivery …)` on."""

    delivery: str
    events: tuple[tuple[float, str], ...]

    @property
    def dequeued(self) -> float:
        return self.events[0][0]

    @property
    def result(self) -> str | None:
        when_what = self.events[-1]
        return when_what[1] if RESULT.match(when_what[1]) else None

    def at(self, pattern: str) -> float:
        """When the first line matching `pattern` (a regex) was logged."""
        for when, what in self.events:
            if re.search(pattern, what):
                return when
        raise LookupError(f"the worker logged no {pattern!r} for delivery {self.delivery}")


def _stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def tasks_in_log(text: str) -> dict[str, TaskLog]:
    """Every task the log shows, by delivery id."""
    deliveries: dict[str, str] = {}
    events: dict[str, list[tuple[float, str]]] = {}
    for line in text.splitlines():
        if (match := LINE.match(line)) is None:
            continue
        job, what = ATTEMPT.sub("", match["job"]), match["what"]
        if started := STARTED.match(what):
            deliveries[job] = started["delivery"]
            events[started["delivery"]] = []
        if delivery := deliveries.get(job):
            events[delivery].append((_stamp(match["at"]), what))
    return {d: TaskLog(d, tuple(e)) for d, e in events.items()}


def finished_task(logs: list[Path], delivery: str, timeout: float) -> TaskLog:
    """The task of `delivery` once the worker that ran it (its log one of `logs`) has logged
    its result."""

    def done() -> TaskLog | None:
        for log in logs:
            task = tasks_in_log(log.read_text(errors="replace")).get(delivery)
            if task is not None and task.result is not None:
                return task
        return None

    return wait_for(done, timeout, f"the task of delivery {delivery} to finish")


def stamp_when(
    check: Callable[[], object],
    timeout: float,
    what: str,
    unless: Callable[[], str | None] = lambda: None,
) -> float:
    """The wall-clock time at which `check()` first holds, to within `WATCH_EVERY`: finer
    than `wait_for`'s steps, which would blur a figure of a second or so. `unless` (looked at
    now and then) returns a reason to stop waiting, such as the task's failure."""
    deadline = time.monotonic() + timeout
    looks = 0
    while not check():
        looks += 1
        if looks % 50 == 0 and (reason := unless()):
            raise RuntimeError(f"gave up waiting for {what}: {reason}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(WATCH_EVERY)
    return time.time()


def failure(log: Path, delivery: str) -> str | None:
    """The task's result line, when it has ended without a PR."""
    task = tasks_in_log(log.read_text(errors="replace")).get(delivery)
    result = task.result if task is not None else None
    return result if result is not None and not result.startswith("published to ") else None

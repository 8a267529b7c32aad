"""Memory: resident set sizes of our processes and the memory of the sandbox containers.

A process's figure is `VmRSS` from `/proc/PID/status`; a container's is what `docker stats`
shows (the cgroup's usage minus its inactive file cache), read from the cgroup directly so a
sample costs microseconds instead of `docker stats`' second. `Peak` samples in a thread while
a benchmark runs and keeps the highest values.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import docker
import redis

from bench.report import Row, ratio

MB = 1024 * 1024
CGROUPS = (
    "/sys/fs/cgroup/memory/docker/{id}",  # v1, cgroupfs driver
    "/sys/fs/cgroup/memory/system.slice/docker-{id}.scope",  # v1, systemd driver
    "/sys/fs/cgroup/system.slice/docker-{id}.scope",  # v2, systemd driver
    "/sys/fs/cgroup/docker/{id}",  # v2, cgroupfs driver
)
TASK_LABEL = "codex.task"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def container_mb(container_id: str) -> float:
    """Like `docker stats`: usage without the inactive file cache (cgroup v1 or v2)."""
    for pattern in CGROUPS:
        root = Path(pattern.format(id=container_id))
        if not root.is_dir():
            continue
        stat = dict(
            (key, int(value))
            for key, value in (
                line.split() for line in (root / "memory.stat").read_text().splitlines()
            )
        )
        if (root / "memory.usage_in_bytes").exists():
            used = int((root / "memory.usage_in_bytes").read_text())
            return (used - stat.get("total_inactive_file", 0)) / MB
        return (int((root / "memory.current").read_text()) - stat.get("inactive_file", 0)) / MB
    raise LookupError(f"no memory cgroup found for container {container_id[:12]}")


def task_containers(client: docker.DockerClient, prefix: str) -> list[str]:
    """Ids of the running sandboxes of tasks whose job id starts with `prefix`. One API call
    (`containers.list` would inspect each container too: the sampler would load the engine it
    measures, and the more so the more sandboxes run)."""
    found = client.api.containers(filters={"label": TASK_LABEL})
    labelled = ((str(c["Id"]), str((c.get("Labels") or {}).get(TASK_LABEL, ""))) for c in found)
    return [container for container, task in labelled if task.startswith(prefix)]


class Peak:
    """Samples `measure` every `every` seconds in a thread (`with Peak(...) as peak:`) and
    keeps, per key, the highest value seen."""

    def __init__(self, measure: Callable[[], dict[str, float]], every: float = 0.2) -> None:
        self.measure = measure
        self.every = every
        self.highest: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-peak", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sample = self.measure()
            except (LookupError, OSError, ValueError, docker.errors.APIError):
                sample = {}  # a process or container went away between listing and reading
            for key, value in sample.items():
                self.highest[key] = max(value, self.highest.get(key, value))
            self._stop.wait(self.every)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(10)

    def get(self, key: str) -> float:
        return self.highest.get(key, 0.0)


def redis_mb(client: redis.Redis) -> float:
    """What Redis says it holds (`used_memory`), in MB."""
    info: dict[str, int] = client.info("memory")  # type: ignore[assignment]
    return info["used_memory"] / MB


def redis_rows(before: float, peak: float, after: float, tasks: int) -> list[Row]:
    """Redis's memory around a batch of `tasks`: the peak while they ran, and what they left
    once ended (status, comment, work log, dedupe keys: kept for days, see app/keys.py)."""
    return [
        Row("Redis memory, before the batch (baseline)", f"{before:.2f} MB", "1.00x"),
        Row(
            f"Redis memory, {tasks} tasks queued and running (peak)",
            f"{peak:.2f} MB",
            ratio(peak, before),
            f"+{(peak - before) * 1024 / tasks:.1f} KB per task",
        ),
        Row(
            f"Redis memory, after the {tasks} tasks ended",
            f"{after:.2f} MB",
            ratio(after, before),
            f"+{(after - before) * 1024 / tasks:.1f} KB kept per finished task",
        ),
    ]


def bare_container_mb(image: str) -> float:
    """The floor for a sandbox: the same image, started with `docker run`, doing nothing."""
    started = subprocess.run(
        ["docker", "run", "-d", "--rm", "--network", "none", image, "sleep", "60"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    container = started.stdout.strip()
    try:
        time.sleep(1)  # what a task's container settles at between commands
        return container_mb(container)
    finally:
        subprocess.run(["docker", "rm", "-f", container], check=True, capture_output=True)


def worker_rows(idle: float, busy: float, running: int, sandbox: float, bare: float) -> list[Row]:
    """`busy`: the worker's peak RSS with `running` tasks at once; `sandbox`: the highest
    memory of one task's container; `bare`: `bare_container_mb`."""
    per_task = (busy - idle) / running if running else 0.0
    return [
        Row("worker RSS, idle (baseline)", f"{idle:.0f} MB", "1.00x"),
        Row(
            f"worker RSS, {running} tasks running",
            f"{busy:.0f} MB",
            ratio(busy, idle),
            f"+{per_task:.1f} MB per running task",
        ),
        Row(
            "sandbox container, bare `docker run` of the image (baseline)",
            f"{bare:.1f} MB",
            "1.00x",
        ),
        Row(
            "sandbox container, per running task (peak)", f"{sandbox:.1f} MB", ratio(sandbox, bare)
        ),
    ]


def app_rows(bare: float, app: float, flooded: float, rate: int) -> list[Row]:
    """`app`: the app's peak RSS under ignored deliveries; `flooded`: under queued ones."""
    return [
        Row(f"RSS under {rate}/s deliveries, bare Starlette (baseline)", f"{bare:.0f} MB", "1.00x"),
        Row(
            f"app RSS under {rate}/s deliveries",
            f"{app:.0f} MB",
            ratio(app, bare),
            f"{flooded:.0f} MB when each queues a task",
        ),
    ]

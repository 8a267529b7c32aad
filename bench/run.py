"""Benchmarks: every figure beside a baseline measured in the same run, as a ratio.

    bash deploy/local/setup.sh --test && .venv/bin/python -m bench.run      # about 5 minutes

1. Task overhead (`overhead`): dequeue → first command and last command → PR, against
   `git clone` + `docker run --rm` of the same repository, image and command.
2. Repository size (`repos`): task start with 10 MB, 100 MB and 1 GB of history.
3. Environment cache (`cache`): task start with a ~20 s setup, cold versus warm.
4. Throughput (`throughput`): tasks per minute with 1, 2 and 4 at once, against 1.
   Many workers (`workers`): two workers sharing one Redis against one (target 1.9x), and
   Redis's memory per queued and per finished task.
5. Memory (measured by `throughput` and `ack`): the worker's RSS idle and per running task, a
   sandbox's memory against a bare container, the app's RSS under the ack load against bare
   Starlette's.
6. Webhook ack (`ack`): latency at a fixed rate against a bare Starlette 202 endpoint, for
   ignored deliveries and for deliveries that each queue a task.
7. Egress proxy (`proxy`): kept-alive HTTP and HTTPS requests through the proxy process against
   the same requests straight to the server (needs no running system).
8. A real `pip download` (`pip`): a dozen packages from the real package index through the
   allowlist proxy against the same download on the setup network (needs the registries).

Prints a line per figure as it goes, then the Markdown table for the README. Loopback only;
every wait is bounded. The knobs are environment variables (see `Knobs`); for a quick look,
`BENCH_ONLY=overhead,cache BENCH_SETUP_SECONDS=3 .venv/bin/python -m bench.run`.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import docker

from bench import memory
from bench.ack import bench_ack
from bench.cache import bench_cache
from bench.overhead import bench_overhead
from bench.pipdownload import bench_pip
from bench.proxy import bench_proxy
from bench.report import Row, progress, show, table
from bench.repos import bench_repos
from bench.system import running_system
from bench.throughput import bench_throughput, bench_workers

ALL = ("overhead", "repos", "cache", "throughput", "workers", "ack", "proxy", "pip")


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


@dataclass(frozen=True)
class Knobs:
    rate: int
    """Webhook deliveries a second (`BENCH_RATE`)."""
    trigger_rate: int
    """Task-queueing deliveries a second of the gentler ack run (`BENCH_TRIGGER_RATE`)."""
    seconds: float
    """Seconds of each ack run (`BENCH_SECONDS`)."""
    repeat: int
    """Measured tasks and floors for the overhead, the median reported (`BENCH_REPEAT`)."""
    repo_mb: list[int]
    """Megabytes of history of the generated repositories (`BENCH_REPO_MB`)."""
    setup_seconds: int
    """What the cached repository's setup sleeps (`BENCH_SETUP_SECONDS`)."""
    slots: list[int]
    """`MAX_CONCURRENT_TASKS` of the throughput runs, the first the baseline (`BENCH_SLOTS`)."""
    per_slot: int
    """Throughput tasks per slot (`BENCH_TASKS_PER_SLOT`)."""
    think: int
    """Seconds each throughput task's command sleeps: the fixed think time (`BENCH_THINK`)."""
    worker_slots: int
    """`MAX_CONCURRENT_TASKS` of each worker in the two-workers run (`BENCH_WORKER_SLOTS`)."""
    proxy_requests: int
    """Requests per egress proxy run (`BENCH_PROXY_REQUESTS`)."""
    only: list[str]
    """Which benchmarks run (`BENCH_ONLY`, comma-separated names from `ALL`)."""

    @classmethod
    def from_env(cls) -> Knobs:
        get = os.environ.get
        only = [name for name in get("BENCH_ONLY", ",".join(ALL)).split(",") if name]
        if unknown := sorted(set(only) - set(ALL)):
            raise SystemExit(f"BENCH_ONLY: unknown {', '.join(unknown)}; choose from {ALL}")
        return cls(
            rate=int(get("BENCH_RATE", "200")),
            trigger_rate=int(get("BENCH_TRIGGER_RATE", "5")),
            seconds=float(get("BENCH_SECONDS", "20")),
            repeat=int(get("BENCH_REPEAT", "3")),
            repo_mb=_ints(get("BENCH_REPO_MB", "10,100,1024")),
            setup_seconds=int(get("BENCH_SETUP_SECONDS", "20")),
            slots=_ints(get("BENCH_SLOTS", "1,2,4")),
            per_slot=int(get("BENCH_TASKS_PER_SLOT", "2")),
            think=int(get("BENCH_THINK", "5")),
            worker_slots=int(get("BENCH_WORKER_SLOTS", "2")),
            proxy_requests=int(get("BENCH_PROXY_REQUESTS", "500")),
            only=only,
        )


def measure(logs: Path, knobs: Knobs) -> list[Row]:
    rows: list[Row] = []
    if "proxy" in knobs.only:
        progress(f"egress proxy: {knobs.proxy_requests} requests per run, direct first")
        rows += show(bench_proxy(knobs.proxy_requests))
    if "pip" in knobs.only:
        progress("a real pip download, setup network first")
        rows += show(bench_pip(os.environ.get("SANDBOX_IMAGE", "codex-sandbox:local")))
    if not set(knobs.only) - {"proxy", "pip"}:
        return rows
    with running_system(logs) as system:
        if "overhead" in knobs.only:
            progress("task overhead")
            rows += show(bench_overhead(system, knobs.repeat))
        if "repos" in knobs.only:
            rows += show(bench_repos(system, knobs.repo_mb))
        if "cache" in knobs.only:
            progress(f"environment cache (setup sleeps {knobs.setup_seconds} s)")
            rows += show(bench_cache(system, knobs.setup_seconds))
        if "throughput" in knobs.only:
            found, busiest = bench_throughput(system, knobs.slots, knobs.per_slot, knobs.think)
            rows += show(found)
            bare = memory.bare_container_mb(system.env["SANDBOX_IMAGE"])
            busy = busiest.busy.get
            running = int(busy("running"))
            worker = memory.worker_rows(
                busiest.idle_rss, busy("worker"), running, busy("sandbox"), bare
            )
            rows += show(worker)
        if "workers" in knobs.only:
            rows += show(bench_workers(system, knobs.worker_slots, knobs.per_slot, knobs.think))
        if "ack" in knobs.only:
            progress(f"webhook ack: {knobs.seconds:g} s per run, the bare app first")
            rows += show(bench_ack(system, knobs.rate, knobs.seconds, knobs.trigger_rate))
    return rows


def main() -> None:
    knobs = Knobs.from_env()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="codex-bench-") as tmp:
        rows = measure(Path(tmp), knobs)
    took = time.monotonic() - started
    print(f"\nBenchmarks of {date.today()} on {machine()}, {took:.0f} s in all.\n")
    print(table(rows))


def machine() -> str:
    """Cores, CPU model, memory, and the versions the figures depend on."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if "model name" in ln), ""
    )
    meminfo = Path("/proc/meminfo").read_text().split()
    gib = int(meminfo[meminfo.index("MemTotal:") + 1]) / 1024**2
    client = docker.from_env()
    try:
        engine = client.version()["Version"]
    finally:
        client.close()
    return (
        f"{os.cpu_count()} cores ({model or platform.machine()}), {gib:.0f} GiB RAM, "
        f"Linux {platform.release()}, Docker {engine}, Python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()

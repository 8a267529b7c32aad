"""Benchmarks: every figure beside a baseline measured in the same run, as a ratio.

    .venv/bin/python -m bench.run            # after `bash deploy/local/test.sh` set the machine up

1. Webhook ack: signed deliveries at a fixed rate against the real receiver (an ignored event,
   and one that queues a task) versus a bare Starlette endpoint answering 202 on the same machine.
2. Environment cache: task start (delivery → the agent's first model call) for a repository
   whose setup takes ~20 s, cold versus warm.

Prints a Markdown table for the README. Loopback only; every loop is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import (
    WEBHOOK_SECRET,
    Service,
    free_port,
    service_env,
    start_app,
    start_redis,
    start_worker,
    wait_for,
)
from tests.fakes.github import GitHubSim, sign
from tests.fakes.openai import ScriptedOpenAI, finish, shell

RATE = int(os.environ.get("BENCH_RATE", "200"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
SETUP_SECONDS = int(os.environ.get("BENCH_SETUP_SECONDS", "20"))
BARE = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
async def hook(request):
    await request.body()
    return Response(status_code=202)
app = Starlette(routes=[Route("/webhook", hook, methods=["POST"])])
"""

Row = tuple[str, str, str, str]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def load(url: str, make: Callable[[int], tuple[bytes, dict[str, str]]]) -> dict[str, float]:
    """`RATE` requests a second for `SECONDS`, each timed; returns p50, p99 (ms) and errors."""
    latencies: list[float] = []
    errors = 0
    total = int(RATE * SECONDS)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:

        async def one(i: int) -> None:
            nonlocal errors
            body, headers = make(i)
            started = time.perf_counter()
            try:
                response = await client.post(url, content=body, headers=headers)
                if response.status_code >= 300:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

        start = time.perf_counter()
        pending = []
        for i in range(total):
            delay = start + i / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(one(i)))
        await asyncio.gather(*pending)
    return {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "errors": errors}


def signed(event: str, payload: dict[str, Any], delivery: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
        "Content-Type": "application/json",
    }
    return body, headers


@contextmanager
def bare_app(logs: Path) -> Iterator[str]:
    port = free_port()
    (logs / "bare_app.py").write_text(BARE)
    argv = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--no-access-log"]
    with (logs / "bare.log").open("wb") as sink:
        process = subprocess.Popen(argv, cwd=logs, stdout=sink, stderr=subprocess.STDOUT)
    service = Service(process, logs / "bare.log")
    try:
        wait_for(lambda: _listening(port), 20, "the bare app")
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        service.stop()


def _listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
        return True
    except httpx.HTTPError:
        return False


def bench_ack(sim: GitHubSim, app_url: str, logs: Path) -> list[Row]:
    sim.create_repo("bench/ack", {"README.md": "x\n"})
    number = sim.create_issue("bench/ack", "Ack", "x", user="alice")
    opened = sim.webhook_payload("issues", "opened", "bench/ack", sender="alice", number=number)
    labeled = sim.webhook_payload(
        "issues", "labeled", "bench/ack", sender="alice", number=number, label="codex"
    )
    with bare_app(logs) as bare_url:
        base = asyncio.run(load(bare_url, lambda i: signed("issues", opened, f"b-{i}")))
    ignored = asyncio.run(load(app_url, lambda i: signed("issues", opened, f"i-{i}")))
    queued = asyncio.run(load(app_url, lambda i: signed("issues", labeled, f"q-{i}")))
    rows = [
        (
            "webhook ack, bare Starlette 202 (baseline)",
            f"{base['p50']:.1f} / {base['p99']:.1f} ms",
            "1.00x",
            f"{base['errors']:.0f} errors",
        )
    ]
    for name, got in (("ignored event", ignored), ("labeled → queued", queued)):
        ratio = got["p99"] / base["p99"]
        rows.append(
            (
                f"webhook ack, {name}",
                f"{got['p50']:.1f} / {got['p99']:.1f} ms",
                f"{ratio:.2f}x (p99)",
                f"{got['errors']:.0f} errors",
            )
        )
    return rows


def asked(fake: ScriptedOpenAI, title: str) -> bool:
    """The agent has made its first model call for the task titled `title`."""
    return next(fake.conversation(title), None) is not None


def opened(sim: GitHubSim, repo: str, count: int) -> bool:
    return len(sim.pulls(repo)) >= count


def bench_cache(sim: GitHubSim, fake: ScriptedOpenAI, app_url: str) -> list[Row]:
    repo = f"bench/cache-{os.getpid()}"
    config = f"setup: sleep {SETUP_SECONDS} && echo ready > ~/ready\nmaintenance: echo maintained\n"
    sim.create_repo(repo, {"README.md": "x\n", ".github/codex.yml": config})
    sim.set_permission(repo, "alice", "write")
    starts = []
    for count, run in enumerate(("cold", "warm"), start=1):
        title = f"Cache bench {run} {repo}"
        number = sim.create_issue(repo, title, "x", user="alice")
        fake.script(title, [[shell("cat ~/ready > out.txt")], [finish("done")]])
        payload = sim.webhook_payload(
            "issues", "labeled", repo, sender="alice", number=number, label="codex"
        )
        body, headers = signed("issues", payload, f"cache-{run}-{repo}")
        started = time.perf_counter()
        assert httpx.post(f"{app_url}/webhook", content=body, headers=headers).status_code == 202
        wait_for(partial(asked, fake, title), SETUP_SECONDS + 120, f"{run} start")
        starts.append(time.perf_counter() - started)
        wait_for(partial(opened, sim, repo, count), 60, "the PR")
    cold, warm = starts
    return [
        (
            f"task start, cold (setup sleeps {SETUP_SECONDS} s; baseline)",
            f"{cold:.2f} s",
            "1.00x",
            "",
        ),
        (
            "task start, warm (cached environment)",
            f"{warm:.2f} s",
            f"{warm / cold:.3f}x",
            "target < 0.10x",
        ),
    ]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="codex-bench-") as tmp:
        logs = Path(tmp)
        redis, redis_url = start_redis(logs)
        services: list[Service] = []
        try:
            with GitHubSim(logs / "github") as sim, ScriptedOpenAI() as fake:
                env = service_env(redis_url, sim, fake)
                app, app_url = start_app(env, logs / "app.log")
                services.append(app)
                worker = start_worker(env, logs / "worker.log")
                services.append(worker)
                rows = bench_cache(sim, fake, app_url)
                worker.stop()  # queued tasks of the ack run stay queued
                rows += bench_ack(sim, f"{app_url}/webhook", logs)
        except BaseException:
            for service in services:
                print(f"--- {service.log.name} ---\n{service.tail(40)}", file=sys.stderr)
            raise
        finally:
            for service in services:
                service.stop()
            redis.terminate()
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    print(
        f"\nBenchmarks of {date.today()} on {machine}; {RATE}/s for {SECONDS:.0f} s per ack run.\n"
    )
    print("| figure | measured (p50 / p99) | vs baseline | notes |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

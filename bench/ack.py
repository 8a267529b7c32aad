"""Webhook ack: signed deliveries at a fixed rate against the receiver, versus bare Starlette.

The real receiver gets an ignored event (`issues.opened`, what most deliveries are) at the
full rate, then deliveries that each queue a task (`issues.labeled` on a fresh issue) at a
trigger rate and at the full rate; each is compared with a bare Starlette endpoint that reads
the body and answers 202, on the same machine in the same run, at the same rate (see `load` for
how the deliveries are sent). A queued task is acknowledged (👀, the status comment) after the
answer, so its CPU is counted too. The worker is stopped first: queued tasks stay queued. Both
receivers' RSS is sampled under the load.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.load import Delivery, Latency, measure
from bench.memory import app_rows
from bench.report import Row, progress, ratio, target
from bench.system import SENDER, BenchSystem
from tests.fakes.github import hookshot
from tests.harness import WEBHOOK_SECRET, Service, free_port, wait_for

BARE = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
async def hook(request):
    await request.body()
    return Response(status_code=202)
app = Starlette(routes=[Route("/webhook", hook, methods=["POST"])])
"""
TARGET_P99_MS = 25.0
TARGET_RATIO = 2.0


def signed(event: str, payload: dict[str, Any], delivery: str, app_id: int) -> Delivery:
    body = hookshot.encode(payload)
    return body, hookshot.headers(WEBHOOK_SECRET, event, body, delivery, app_id)


def on_issue(payload: dict[str, Any], number: int) -> dict[str, Any]:
    """`payload` about issue `number` instead: building thousands of payloads from the
    simulator's state would take longer than the run itself."""
    return {**payload, "issue": {**payload["issue"], "number": number}}


@contextmanager
def bare_app(logs: Path) -> Iterator[tuple[str, int]]:
    """The baseline receiver on uvicorn, as the app runs: its URL and process id."""
    port = free_port()
    (logs / "bare_app.py").write_text(BARE)
    argv = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--no-access-log"]
    with (logs / "bare.log").open("wb") as sink:
        process = subprocess.Popen(argv, cwd=logs, stdout=sink, stderr=subprocess.STDOUT)
    service = Service(process, logs / "bare.log")
    try:
        wait_for(lambda: _listening(port), 20, "the bare app")
        yield f"http://127.0.0.1:{port}/webhook", process.pid
    finally:
        service.stop()


def _listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
        return True
    except httpx.HTTPError:
        return False


def _row(name: str, got: Latency, base: Latency) -> Row:
    """A row of `got` against `base`; the baseline's own row when `got is base`."""
    at_least = "≥ " if got.errors else ""  # unanswered deliveries: work left over, uncounted
    notes = f"{got.errors} errors; receiver CPU {at_least}{got.cpu_ms:.1f} ms a delivery"
    if got is base:
        return Row(
            f"webhook ack, {name} (baseline)", f"{got.p50:.1f} / {got.p99:.1f} ms", "1.00x", notes
        )
    met = got.p99 < TARGET_P99_MS and got.p99 < TARGET_RATIO * base.p99
    goal = f"p99 < {TARGET_P99_MS:.0f} ms and < {TARGET_RATIO:.0f}x"
    return Row(
        f"webhook ack, {name}",
        f"{got.p50:.1f} / {got.p99:.1f} ms",
        f"{ratio(got.p99, base.p99)} (p99)",
        f"{notes}; {target(met, goal)}",
    )


def bench_ack(system: BenchSystem, rate: int, seconds: float, trigger_rate: int) -> list[Row]:
    """Latency rows, then the memory rows for the app under this load."""
    system.stop_worker()
    sim, app_id = system.sim, system.sim.app_id
    count, few = int(rate * seconds), int(trigger_rate * seconds)
    repo = system.create_repo("ack", {"README.md": "x\n"})
    numbers = [sim.create_issue(repo, f"Ack {i}", "x", user=SENDER) for i in range(count + few)]
    opened = sim.webhook_payload("issues", "opened", repo, sender=SENDER, number=numbers[0])
    labeled = sim.webhook_payload(
        "issues", "labeled", repo, sender=SENDER, number=numbers[0], label="codex"
    )
    ignored = [signed("issues", opened, f"ignored-{i}", app_id) for i in range(count)]
    queued = [signed("issues", on_issue(labeled, n), f"queued-{n}", app_id) for n in numbers]
    with bare_app(system.logs) as (bare_url, bare_pid):
        base = measure(bare_url, bare_pid, rate, ignored)
        slow_base = measure(bare_url, bare_pid, trigger_rate, ignored[:few])
    url, pid = f"{system.app_url}/webhook", system.app.process.pid
    progress(f"webhook ack: the app, an ignored event at {rate}/s")
    ignoring = measure(url, pid, rate, ignored)
    progress(f"webhook ack: the app, a task queued per delivery at {trigger_rate}/s")
    trickle = measure(url, pid, trigger_rate, queued[:few])
    progress(f"webhook ack: the app, a task queued per delivery at {rate}/s")
    flood = measure(url, pid, rate, queued[few:])  # last: its backlog outlives it
    rows = [
        _row(f"bare Starlette 202 at {rate}/s", base, base),
        _row(f"ignored event at {rate}/s", ignoring, base),
        _row(f"labeled → task queued at {rate}/s", flood, base),
        _row(f"bare Starlette 202 at {trigger_rate}/s", slow_base, slow_base),
        _row(f"labeled → task queued at {trigger_rate}/s", trickle, slow_base),
    ]
    return rows + app_rows(base.rss, ignoring.rss, flood.rss, rate)

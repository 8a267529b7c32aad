"""Open-loop load: deliveries at a fixed rate, each timed from send to answer.

The sender runs in a process of its own: the GitHub simulator lives in the benchmark's
process, and under load its threads would hold the GIL while the sender's timers are due, so
the sender would measure itself. For the same reason it writes HTTP/1.1 on asyncio's streams
rather than through an HTTP client: httpx spends about 3 ms of CPU a request, which at 200/s
takes most of a core from the receivers on a 2-core machine. Like GitHub's Hookshot, each
delivery opens its own connection (no keep-alive): a receiver that keeps a connection busy
after answering (e.g. with background work) then cannot delay the next delivery behind it. The
first half second of deliveries warms the receiver and is not counted.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from bench.memory import Peak, cpu_seconds, rss_mb
from bench.report import percentile

Delivery = tuple[bytes, dict[str, str]]
"""A request body and its headers."""
WARMUP = 0.5
"""Seconds of deliveries sent first and left out of the figures."""
TIMEOUT = 10.0
"""GitHub counts a delivery unanswered after 10 s as failed."""


@dataclass(frozen=True)
class Latency:
    p50: float
    p99: float
    """Milliseconds."""
    errors: int
    rss: float
    """The receiving process's peak RSS during the load, MB."""
    cpu_ms: float
    """The receiving process's CPU time per delivery while they were sent, ms. Work it has
    left over when the last answer arrives is not counted."""


async def _post(url: SplitResult, body: bytes, headers: dict[str, str]) -> int:
    """One delivery on a connection of its own; the answer's status."""
    host, port = url.hostname or "127.0.0.1", url.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    try:
        head = [f"POST {url.path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
        head += [f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write("\r\n".join(head).encode() + b"\r\n\r\n" + body)
        status = await reader.readline()
        await reader.readuntil(b"\r\n\r\n")
        return int(status.split()[1])
    finally:
        writer.close()


async def _send(url: str, rate: int, deliveries: list[Delivery]) -> tuple[list[float], int]:
    target = urlsplit(url)
    latencies = [0.0] * len(deliveries)
    errors = 0

    async def one(i: int, body: bytes, headers: dict[str, str]) -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            async with asyncio.timeout(TIMEOUT):
                errors += await _post(target, body, headers) >= 300
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, TimeoutError):
            errors += 1
        latencies[i] = (time.perf_counter() - started) * 1000

    start = time.perf_counter()
    pending = []
    for i, (body, headers) in enumerate(deliveries):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.create_task(one(i, body, headers)))
    await asyncio.gather(*pending)
    return latencies, errors


def send(url: str, rate: int, deliveries: list[Delivery]) -> tuple[list[float], int]:
    """Deliver everything at `rate` a second; the latencies (ms) in order sent, and errors."""
    return asyncio.run(_send(url, rate, deliveries))


def measure(url: str, pid: int, rate: int, deliveries: list[Delivery]) -> Latency:
    """`deliveries` at `rate` a second to `url`, whose server is process `pid`."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as sender:
        sender.submit(time.sleep, 0).result()  # the process is up before the clock starts
        cpu = cpu_seconds(pid)
        with Peak(lambda: {"rss": rss_mb(pid)}) as peak:
            latencies, errors = sender.submit(send, url, rate, deliveries).result()
        cpu_ms = (cpu_seconds(pid) - cpu) * 1000 / len(deliveries)
    counted = latencies[int(rate * WARMUP) :]
    p50, p99 = percentile(counted, 50), percentile(counted, 99)
    return Latency(p50, p99, errors, peak.get("rss"), cpu_ms)

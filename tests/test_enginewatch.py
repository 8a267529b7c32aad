"""The engine watch on a real arq worker, a real Redis and the real Docker engine, reached
through a relay the test cuts (the engine itself, which other tests share, is never touched):
while the engine is gone the worker takes no job and its presence key says why; once the engine
answers again the worker takes the job that waited. A worker that cannot reach its engine at all
when it starts exits saying which engine and what to check, and a worker refuses a TLS engine
whose certificate its `DOCKER_CERT_PATH` CA did not sign, whatever `REQUESTS_CA_BUNDLE` says."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from arq.worker import Worker, func

from app import queue
from app.keys import worker_key
from app.tasks import deserialize, serialize
from tests.fakes.github import GitHubSim
from tests.fakes.openai import ScriptedOpenAI
from tests.fleet import engine_certs
from tests.harness import queue_settings, service_env, start_service, wait_async
from tests.relay import engine_relay
from worker.enginewatch import BACKOFF_CAP, PING_EVERY, EngineWatch, next_ping
from worker.heartbeat import Heartbeat


def test_pings_back_off_while_the_engine_is_gone_and_not_while_it_answers() -> None:
    waits = [next_ping(n) for n in range(8)]
    print(f"seconds between pings after 0..7 failures: {waits}")
    assert waits[0] == PING_EVERY
    assert waits[1:6] == [1, 2, 4, 8, 16]
    assert waits[6:] == [BACKOFF_CAP, BACKOFF_CAP]
    assert next_ping(10_000) == BACKOFF_CAP


def test_a_worker_whose_engine_is_gone_takes_no_job_until_the_engine_answers(
    redis_url: str, docker_ready: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = engine_relay()
    address = f"tcp://127.0.0.1:{relay.port}"
    monkeypatch.setenv("DOCKER_HOST", address)
    done: list[int] = []

    async def count(ctx: dict[str, Any], n: int) -> None:
        done.append(n)

    async def scenario() -> None:
        url = redis_url.replace("/0", "/7")
        redis = await queue.connect(queue_settings(url))
        await redis.flushdb()
        options = queue.redis_settings(queue_settings(url))
        worker = Worker(functions=[func(count, name="count")], job_serializer=serialize,
                        job_deserializer=deserialize, redis_settings=options, poll_delay=0.05,
                        handle_signals=False, max_jobs=2)  # fmt: skip

        async def finalize(*_: object) -> None:
            raise AssertionError("nothing is given up here")

        beats = Heartbeat(redis, "w-watch", in_progress_ms=60_000, max_tries=3, finalize=finalize)
        await beats.beat()
        pinger = docker.from_env(timeout=2)
        watch = EngineWatch(pinger.ping, worker, beats.pause)
        watch.start()
        running = asyncio.create_task(worker.async_run())

        async def presence() -> dict[str, Any]:
            return dict(json.loads(await redis.get(worker_key("w-watch"))))

        try:
            assert (await presence())["accepting"] is True
            relay.cut()
            cut = time.monotonic()
            await wait_async(lambda: worker.max_jobs == 0, "the worker to stop taking jobs")
            print(f"took no new jobs {time.monotonic() - cut:.1f} s after its engine went away")
            seen = await presence()
            print(f"its presence key says: {seen}")
            assert seen["accepting"] is False and address in seen["why"], seen
            await redis.enqueue_job("count", 1)
            held = time.monotonic() + 3
            while time.monotonic() < held:  # the job waits for as long as the engine is gone
                assert not done and await redis.zcard("arq:queue") == 1
                await asyncio.sleep(0.1)
            assert worker.allow_pick_jobs, "arq's own switch (SIGTERM's) is left alone"
            relay.restore()
            back = time.monotonic()
            await wait_async(lambda: done == [1], "the job once the engine answers", 40)
            print(f"took the job {time.monotonic() - back:.1f} s after the engine came back")
            assert worker.max_jobs == 2
            assert (await presence())["accepting"] is True
        finally:
            await watch.close()
            pinger.close()
            with contextlib.suppress(asyncio.CancelledError):
                await worker.close()
            running.cancel()
            relay.close()
            await redis.flushdb()
            await redis.aclose()

    asyncio.run(scenario())


@contextlib.contextmanager
def tls_listener(server: Path) -> Iterator[int]:
    """A port on 127.0.0.1 that completes TLS handshakes with `server`'s certificate and then
    closes: an engine whose certificate the worker must check before saying anything."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server / "cert.pem", server / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                connection, _ = listener.accept()
                with contextlib.suppress(OSError), context.wrap_socket(connection, True) as tls:
                    tls.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def exits_saying(env: dict[str, str], log: Path) -> str:
    worker = start_service([sys.executable, "-m", "worker"], env, log)
    try:
        worker.process.wait(60)
    finally:
        worker.stop()
    said = worker.tail(20)
    assert worker.process.returncode != 0, said
    return said


def test_a_worker_that_cannot_reach_its_engine_exits_saying_which_and_what_to_check(
    redis_url: str, github: GitHubSim, openai_fake: ScriptedOpenAI, tmp_path: Path
) -> None:
    host = f"unix://{tmp_path}/no-such/docker.sock"
    env = service_env(redis_url.replace("/0", "/8"), github, openai_fake, None, DOCKER_HOST=host)
    said = exits_saying(env, tmp_path / "worker.log")
    assert f"the container engine (DOCKER_HOST={host}) could not be reached" in said
    assert "Check that the Docker daemon runs" in said


def test_a_worker_checks_a_tls_engine_against_its_cert_path_ca_whatever_the_ca_bundle(
    redis_url: str, github: GitHubSim, openai_fake: ScriptedOpenAI, tmp_path: Path
) -> None:
    """An engine whose certificate another CA signed is refused, even though the environment's
    `REQUESTS_CA_BUNDLE` (which docker-py alone would use) trusts that CA."""
    impostor = engine_certs(tmp_path / "impostor", client_ca="impostor CA")[0]
    client = engine_certs(tmp_path / "ours")[1]
    with tls_listener(impostor) as port:
        host = f"tcp://127.0.0.1:{port}"
        env = service_env(redis_url.replace("/0", "/8"), github, openai_fake, None,
                          DOCKER_HOST=host, DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(client),
                          REQUESTS_CA_BUNDLE=str(impostor / "ca.pem"))  # fmt: skip
        said = exits_saying(env, tmp_path / "worker.log")
    assert f"the container engine (DOCKER_HOST={host}) could not be reached" in said
    assert "certificate verify failed" in said, said

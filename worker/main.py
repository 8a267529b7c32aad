"""The arq worker's settings and lifetime; `python -m worker` runs it (`worker/__main__.py`).

Startup owns the clients (GitHub App, Docker, OpenAI), the heartbeat and the engine watch
(`worker/enginewatch.py`: no new tasks while the engine is gone), and shutdown closes them.
Jobs are JSON, never pickle. The job timeout is honest (the task's own deadline plus time to
report), but no longer decides when a killed worker's job runs again: the heartbeat's janitor
does, within about 40 s (`worker/heartbeat.py`), and the reaper removes its containers.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any, ClassVar

from app import github as gh
from app import queue
from app.settings import get_settings
from app.tasks import Task, deserialize, serialize
from app.warmup import warm
from worker import reaper
from worker.deps import Deps
from worker.egress.selftest import NetworkCheck
from worker.egress.service import Egress
from worker.enginewatch import PING_TIMEOUT, EngineWatch
from worker.heartbeat import Heartbeat, new_worker_id
from worker.jobs import run_task
from worker.lifecycle import give_up
from worker.model.backends import build_model, openai_client
from worker.model.backends import warm as warm_model
from worker.pick import run_pick
from worker.report import outcome
from worker.sandbox.cache import EnvironmentCache
from worker.sandbox.engine import connect

settings = get_settings()
JOB_TIMEOUT = settings.task_timeout + 60  # the task's own deadline fires first and reports
MAX_TRIES = 3
"""Tries of a task interrupted by a worker stopping or dying; a failure is final at once."""
ARQ_WORKER = "arq_worker"
"""The `ctx` key of arq's `Worker` itself, put there by `python -m worker`."""


async def startup(ctx: dict[str, Any]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    await _start_heartbeat(ctx)  # first: the self-test's probes are this live worker's
    client = openai_client(settings)
    ctx["openai"] = client
    engine = connect()
    cache = EnvironmentCache(engine, settings.env_cache_ttl, settings.cache_secret())
    egress = await Egress.start(settings, engine)
    ctx["deps"] = Deps(
        settings=settings,
        app_github=gh.app_client(settings),
        docker=engine,
        model=build_model(settings, client),
        cache=cache,
        egress=egress,
        network=NetworkCheck.start(settings, engine, proxy_running=egress.proxy is not None),
    )
    cache.collect_in_background()
    await _reap(ctx)
    _watch_engine(ctx)
    # what the first tasks would load on their way, loaded before intake opens
    ready = await asyncio.to_thread(warm, partial(warm_model, client), "the model API")
    logging.getLogger(__name__).info(ready)


def _watch_engine(ctx: dict[str, Any]) -> None:
    if ARQ_WORKER not in ctx:
        raise RuntimeError("start the worker with `python -m worker` (its engine watch needs it)")
    pinger = connect(timeout=PING_TIMEOUT)  # its own connections: never queued
    ctx["engine_pinger"] = pinger
    watch = EngineWatch(pinger.ping, ctx[ARQ_WORKER], ctx["heartbeat"].pause)
    watch.start()
    ctx["engine_watch"] = watch


async def _start_heartbeat(ctx: dict[str, Any]) -> None:
    """Announce this worker and label its containers; then, every few seconds, announce it
    again, start again the tasks of dead workers and remove their containers."""
    worker_id = new_worker_id()
    ctx["fleet"] = reaper.fleet_of(settings.redis_url)
    reaper.claim(worker_id, ctx["fleet"])

    async def finalize(task: Task, tries: int) -> None:
        await give_up(ctx["deps"], ctx["redis"], task, outcome.interrupted(tries), tries)

    async def lost(task: Task) -> None:
        await give_up(ctx["deps"], ctx["redis"], task, outcome.lost())

    beats = Heartbeat(ctx["redis"], worker_id, in_progress_ms=(JOB_TIMEOUT + 10) * 1000,
                      max_tries=MAX_TRIES, finalize=finalize, lost=lost,
                      extra=lambda: _reap(ctx))  # fmt: skip
    await beats.start()
    ctx["heartbeat"] = beats


async def _reap(ctx: dict[str, Any]) -> None:
    deps: Deps | None = ctx.get("deps")
    if deps is not None and (removed := await reaper.reap(deps.docker, ctx["redis"], ctx["fleet"])):
        logging.getLogger(__name__).warning("reaped %d containers of dead workers", removed)


async def job_ended(ctx: dict[str, Any]) -> None:
    """arq calls this before it hands a job back to the queue or drops it. A job that ended
    because the engine went away (re-queued in a few seconds) must not be taken again here:
    the watch pings now, not at its next round, and holds intake first if the engine is gone."""
    watch: EngineWatch | None = ctx.get("engine_watch")
    if watch is not None:
        try:
            await watch.check()
        except Exception:
            logging.getLogger(__name__).warning("engine watch: ping after a job failed",
                                                exc_info=True)  # fmt: skip


async def shutdown(ctx: dict[str, Any]) -> None:
    """Close what startup opened (startup may have stopped half-way: a signal, an error)."""
    if "engine_watch" in ctx:
        await ctx["engine_watch"].close()
        ctx["engine_pinger"].close()
    if "openai" in ctx:
        await ctx["openai"].close()
    if "heartbeat" in ctx:
        await ctx["heartbeat"].close()
    deps: Deps | None = ctx.get("deps")
    if deps is not None:
        await deps.network.close()
        await deps.egress.close()
        await gh.close(deps.app_github)
        deps.docker.close()


class WorkerSettings:
    functions: ClassVar = [run_task, run_pick]
    on_startup = startup
    on_shutdown = shutdown
    on_job_end = job_ended  # before a job goes back to the queue: is the engine still there?
    redis_settings = queue.redis_settings(settings)  # retries a dropped Redis with backoff
    job_serializer = serialize
    job_deserializer = deserialize
    max_jobs = settings.max_concurrent_tasks
    job_timeout = JOB_TIMEOUT
    poll_delay = 0.1
    max_tries = MAX_TRIES
    job_completion_wait = settings.shutdown_grace  # SIGTERM: no new tasks, running ones finish
    allow_abort_jobs = True

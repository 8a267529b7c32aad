"""The arq worker: `arq worker.main.WorkerSettings`.

Startup owns the clients (GitHub App, Docker, OpenAI) and shutdown closes them. Jobs are JSON,
never pickle, and the job timeout is honest: it bounds how long a killed worker's job waits
before it runs again.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import docker

from app import github as gh
from app import queue
from app.settings import get_settings
from app.tasks import deserialize, serialize
from worker.deps import Deps
from worker.jobs import run_task
from worker.model import build_model, openai_client
from worker.sandbox.cache import EnvironmentCache
from worker.sandbox.egress_service import Egress
from worker.sandbox.netcheck import NetworkCheck

settings = get_settings()


async def startup(ctx: dict[str, Any]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    client = openai_client(settings)
    ctx["openai"] = client
    engine = docker.from_env()
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


async def shutdown(ctx: dict[str, Any]) -> None:
    """Close what startup opened (startup may have stopped half-way: a signal, an error)."""
    if "openai" in ctx:
        await ctx["openai"].close()
    deps: Deps | None = ctx.get("deps")
    if deps is not None:
        await deps.network.close()
        await deps.egress.close()
        await gh.close(deps.app_github)
        deps.docker.close()


class WorkerSettings:
    functions: ClassVar = [run_task]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = queue.redis_settings(settings)  # retries a dropped Redis with backoff
    job_serializer = serialize
    job_deserializer = deserialize
    max_jobs = settings.max_concurrent_tasks
    job_timeout = settings.task_timeout + 60  # the task's own deadline fires first and reports
    poll_delay = 0.1
    max_tries = 3
    allow_abort_jobs = True

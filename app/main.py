"""The webhook receiver: verify, decide, enqueue, answer. Nothing slow happens before the answer.

Run with `uvicorn app.main:app`. What a person sees (👀, the status comment, replies) is sent
after the answer, as background work. The receiver imports neither `docker` nor `openai`.

Redis is the one thing the answer waits for, so its work for a delivery runs under
`REDIS_DEADLINE`: a Redis that is down or hung gets the delivery a 503 with `Retry-After` well
within GitHub's 10 s, never a 202 for a task that was not stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from app import events, feedback, queue, tasklog
from app.github import app_client
from app.github import close as close_github
from app.keys import while_running
from app.settings import get_settings
from app.setup_mode import UntilConfigured
from app.tasks import Task
from app.warmup import warm

log = logging.getLogger(__name__)
RETRY_AFTER = 30
"""Seconds a client told "Redis is unavailable" should wait before trying again."""


def accepted(what: str, work: BackgroundTask) -> Response:
    return JSONResponse({"accepted": what}, status_code=202, background=work)


async def webhook(request: Request) -> Response:
    services: feedback.Services = request.app.state.services
    delivery_id = request.headers.get("x-github-delivery", "")
    body = await request.body()
    try:
        events.verify_signature(
            services.settings.webhook_secret.get_secret_value().encode(),
            body,
            request.headers.get("x-hub-signature-256"),
        )
        delivery = events.parse(request.headers.get("x-github-event"), delivery_id, body)
    except events.BadSignature as error:
        log.warning("delivery %s refused: %s", delivery_id, error)
        return JSONResponse({"error": str(error)}, status_code=401)
    except events.BadPayload as error:
        log.warning("delivery %s refused: %s", delivery_id, error)
        return JSONResponse({"error": str(error)}, status_code=400)

    decision = events.decide(delivery, trigger_label=services.settings.trigger_label)
    if isinstance(decision, events.Ignored):
        log.info("delivery %s ignored: %s", delivery_id, decision.reason)
        return Response(status_code=204)
    work = route(services, delivery_id, decision)
    return await within_deadline(services, f"delivery {delivery_id}", work)


async def within_deadline(
    services: feedback.Services, what: str, work: Awaitable[Response]
) -> Response:
    """`work`'s answer, or 503 when its Redis calls fail or outlast `REDIS_DEADLINE`."""
    deadline = services.settings.redis_deadline
    try:
        async with asyncio.timeout(deadline):
            return await work
    except (TimeoutError, RedisError) as error:
        reason = (
            f"no answer within {deadline:g} s"
            if isinstance(error, TimeoutError)
            else f"{type(error).__name__}: {error}"
        )
        log.warning("%s answered 503: Redis is unavailable (%s); nothing was stored, it can be "
                    "redelivered as is once Redis answers", what, reason)  # fmt: skip
        return JSONResponse(
            {"error": "Redis is unavailable, so nothing was stored; try again later."},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER)},
        )


async def route(
    services: feedback.Services, delivery_id: str, decision: Task | events.Cancel | events.Reply
) -> Response:
    """Store what the decision needs (all of the delivery's Redis work), then answer."""
    if isinstance(decision, Task):
        return await start(services, decision)
    trigger = f"{decision.thread.key}:{decision.trigger}"
    if not await queue.first_time(services.redis, trigger):
        log.info("delivery %s ignored: %s was handled before", delivery_id, trigger)
        return Response(status_code=204)
    if isinstance(decision, events.Cancel):
        # The sender's permission is checked first, after the answer: a stop from someone
        # without write access must not touch the task.
        log.info("delivery %s: cancel requested on %s", delivery_id, decision.thread.key)
        work = feedback.cancel(services, decision)
        return accepted("cancel", BackgroundTask(feedback.guarded, services, "cancel", work))
    log.info("delivery %s: %s reply on %s", delivery_id, decision.kind, decision.thread.key)
    work = feedback.reply(services, decision)
    return accepted("reply", BackgroundTask(feedback.guarded, services, "reply", work))


async def start(services: feedback.Services, task: Task) -> Response:
    submission = await queue.submit(
        services.redis, task, active_ttl=while_running(services.settings)
    )
    log.info("delivery %s: %s %s", task.delivery_id, task.job_id, submission.outcome)
    if submission.outcome == "duplicate":
        return Response(status_code=204)
    if submission.outcome == "busy":
        work = feedback.busy(services, task, submission.active)
        return accepted("busy", BackgroundTask(feedback.guarded, services, "busy reply", work))
    work = feedback.acknowledge(services, task)
    return accepted(
        task.job_id, BackgroundTask(feedback.guarded, services, "acknowledgement", work)
    )


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def work_log(request: Request) -> Response:
    """A task's full work log; the unguessable id in the PR body's link is the credential."""
    services: feedback.Services = request.app.state.services
    log_id = request.path_params["log_id"]
    return await within_deadline(services, f"work log {log_id}", show_log(services, log_id))


async def show_log(services: feedback.Services, log_id: str) -> Response:
    text = await tasklog.load(services.redis, log_id)
    if text is None:
        return PlainTextResponse("No such log (logs are kept for 30 days).", status_code=404)
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=60"}
    return PlainTextResponse(text, headers=headers)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    redis = await queue.connect(settings)
    github = app_client(settings)
    app.state.services = feedback.Services(settings, redis, github)
    try:
        log.info(await asyncio.to_thread(warm))
        yield
    finally:
        await redis.aclose()
        await close_github(github)


service = Starlette(
    routes=[
        Route("/webhook", webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/logs/{log_id}", work_log, methods=["GET"]),
    ],
    lifespan=lifespan,
)
app = UntilConfigured(service)
"""Setup mode (app/setup_mode.py) until the App's credentials are set, then `service`."""

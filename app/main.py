"""The webhook receiver: verify, decide, enqueue, answer. Nothing slow happens here.

Run with `uvicorn app.main:app`. The receiver imports neither `docker` nor `openai`: all the
heavy work is the worker's.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from app import events, queue
from app.settings import get_settings

log = logging.getLogger(__name__)


async def webhook(request: Request) -> Response:
    settings = request.app.state.settings
    delivery_id = request.headers.get("x-github-delivery", "")
    body = await request.body()
    try:
        events.verify_signature(
            settings.webhook_secret.get_secret_value().encode(),
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

    decision = events.decide(delivery, trigger_label=settings.trigger_label)
    if isinstance(decision, events.Ignored):
        log.info("delivery %s ignored: %s", delivery_id, decision.reason)
        return Response(status_code=204)
    if not await queue.submit(request.app.state.redis, decision):
        log.info("delivery %s ignored: %s was queued before", delivery_id, decision.job_id)
        return Response(status_code=204)
    log.info("delivery %s queued %s", delivery_id, decision.job_id)
    return JSONResponse({"queued": decision.job_id}, status_code=202)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings = get_settings()
    app.state.settings = settings
    app.state.redis = await queue.connect(settings.redis_url)
    try:
        yield
    finally:
        await app.state.redis.aclose()


app = Starlette(
    routes=[
        Route("/webhook", webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ],
    lifespan=lifespan,
)

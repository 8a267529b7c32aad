"""Setup mode: until the GitHub App exists, the receiver registers it from `app.yml`.

The way probot does it: `GET /` shows one button that posts the manifest (app/manifest.py) to
GitHub's "new App" page; GitHub sends the person back to `/setup/callback` with a one-time
`code` and our `state`; the code is exchanged (`POST /app-manifests/{code}/conversions`) for
the App's id, key and secrets, which are written to `.env` and `PRIVATE_KEY_PATH`; then the
receiver starts for real in the same process and the person lands on the App's install page.
`UntilConfigured` is the switch: once configured, nothing of setup mode answers (404).

A `state` is ours, random, for one use and an hour: a callback we did not start (a forged link
that would make this service adopt someone else's App) writes nothing. Anyone who reaches setup
mode can register the App, as with probot: expose `PUBLIC_URL` only once setup is done, or
register from a trusted network.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import jinja2
import yaml
from githubkit import GitHub
from githubkit.exception import GitHubException, RequestFailed
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app import manifest
from app.settings import SettingsError, SetupSettings, configured, get_settings, get_setup_settings
from app.setup_files import Registered, save

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
APP_YML = ROOT / "app.yml"
STATE_TTL = 3600.0
"""Seconds a `state` is good for; GitHub's code itself lasts an hour."""
CODE = re.compile(r"[A-Za-z0-9_-]{1,100}")
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action *",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
pages = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


class States:
    """The `state` values the setup page handed out: each is good once, for `ttl` seconds."""

    def __init__(
        self, ttl: float = STATE_TTL, limit: int = 1000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl, self.limit, self.clock = ttl, limit, clock
        self._issued: OrderedDict[str, float] = OrderedDict()

    def issue(self) -> str:
        value = secrets.token_urlsafe(24)
        self._issued[value] = self.clock() + self.ttl
        while len(self._issued) > self.limit:  # page views must not grow memory without end
            self._issued.popitem(last=False)
        return value

    def take(self, value: str) -> bool:
        expires = self._issued.pop(value, None)
        return expires is not None and self.clock() < expires


class ExchangeFailed(Exception):
    """GitHub did not turn the code into an App; the message is for the person."""


def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(pages.get_template(template).render(**context), status, HEADERS)


def problem(title: str, detail: str, status: int) -> HTMLResponse:
    return page("setup_problem.html", status, title=title, detail=detail)


async def exchange(settings: SetupSettings, code: str) -> Registered:
    """The App GitHub created for `code` (one use): unauthenticated, no retries (a retried
    POST whose first try took effect would only get 404 for the spent code)."""
    client = GitHub(
        base_url=settings.github_api_url,
        timeout=settings.github_timeout,
        http_cache=False,
        auto_retry=False,
    )
    try:
        async with client:
            created = (await client.rest.apps.async_create_from_manifest(code)).parsed_data
    except RequestFailed as error:
        status = error.response.status_code
        why = {404: "the code is unknown, spent or older than an hour"}.get(status, "")
        raise ExchangeFailed(f"GitHub answered {status}{': ' + why if why else ''}.") from None
    except (GitHubException, httpx.HTTPError) as error:
        raise ExchangeFailed(f"GitHub could not be reached at {settings.github_api_url}: "
                             f"{type(error).__name__} {error}.") from None  # fmt: skip
    if created.webhook_secret is None:
        raise ExchangeFailed("GitHub created the App without a webhook secret.")
    return Registered(
        app_id=created.id,
        html_url=created.html_url,
        webhook_secret=created.webhook_secret,
        client_id=created.client_id,
        client_secret=created.client_secret,
        pem=created.pem,
    )


class UntilConfigured:
    """ASGI: the setup pages while the App's credentials are missing, then `service` for good.

    Configured at startup: `service` alone, lifespan included. Otherwise setup mode; a good
    callback writes the files, sets the same values in this process's environment, reloads
    the settings and enters `service`'s lifespan here (its exit runs at shutdown)."""

    def __init__(self, service: Starlette, environ: MutableMapping[str, str] = os.environ) -> None:
        self.service = service
        self.environ = environ
        self.states = States()
        self.running = False
        self._stack = AsyncExitStack()
        self._lock = asyncio.Lock()
        self._setup = Starlette(
            routes=[
                Route("/", self.start, methods=["GET"]),
                Route(manifest.CALLBACK_PATH, self.callback, methods=["GET"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route(manifest.WEBHOOK_PATH, self.not_yet, methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and configured(self.environ):
            self.running = True
            await self.service(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif self.running:
            await self.service(scope, receive, send)
        else:
            await self._setup(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
        try:
            get_setup_settings()
        except SettingsError as error:
            await send({"type": "lifespan.startup.failed", "message": str(error)})
            return
        log.warning("setup mode: APP_ID, PRIVATE_KEY(_PATH) or WEBHOOK_SECRET is not set; "
                    "open this app's / in a browser to register the GitHub App")  # fmt: skip
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        await self._stack.aclose()
        await send({"type": "lifespan.shutdown.complete"})

    async def start(self, request: Request) -> Response:
        settings = get_setup_settings()
        public_url = settings.public_url or str(request.base_url)
        app_yml = yaml.safe_load(APP_YML.read_text())
        built = manifest.build_manifest(app_yml, public_url, settings.webhook_proxy_url)
        state = self.states.issue()
        return page(
            "setup.html",
            action=manifest.new_app_url(settings.github_url, settings.github_org, state),
            manifest=json.dumps(built),
            hook_url=built["hook_attributes"]["url"],
            owner=settings.github_org,
            github_url=settings.github_url,
            public_url_set=settings.public_url is not None,
        )

    async def callback(self, request: Request) -> Response:
        async with self._lock:  # two callbacks at once must not both write
            return await self._callback(request)

    async def _callback(self, request: Request) -> Response:
        code, state = request.query_params.get("code", ""), request.query_params.get("state", "")
        if self.running:
            return PlainTextResponse("Not Found", 404)
        if not self.states.take(state):
            return problem(
                "This link is not from this setup page",
                "Its state is unknown, already used or older than an hour, so nothing was "
                "saved. Start again from this app's front page.",
                400,
            )
        if not CODE.fullmatch(code):
            return problem("No code from GitHub", "The link carries no valid code.", 400)
        settings = get_setup_settings()
        try:
            registered = await exchange(settings, code)
        except ExchangeFailed as error:
            log.warning("setup mode: the manifest code was not exchanged: %s", error)
            return problem(
                "GitHub did not hand over the App",
                f"{error} Nothing was saved. Start again from this app's front page.",
                502,
            )
        try:
            values = save(settings, registered)
        except (ValueError, OSError) as error:
            log.error("setup mode: App %s not saved: %s", registered.app_id, error)
            return problem(
                "The App could not be saved",
                f"GitHub created App {registered.app_id}, but saving it failed: {error}. Fix "
                f"that (ENV_FILE, PRIVATE_KEY_PATH), delete the App in GitHub's settings and "
                "start again from this app's front page.",
                500,
            )
        log.info(
            "setup mode: App %s registered, written to %s", registered.app_id, settings.env_file
        )
        return await self._run(values, registered)

    async def _run(self, values: dict[str, str], registered: Registered) -> Response:
        """Start the receiver in this process with the values just saved."""
        self.environ.pop("PRIVATE_KEY", None)
        self.environ.update(values)
        get_settings.cache_clear()
        try:
            get_settings()
            await self._stack.enter_async_context(
                self.service.router.lifespan_context(self.service)
            )
        except (SettingsError, Exception) as error:  # saved: a restart will pick it up
            log.exception(
                "setup mode: App %s saved, but the receiver did not start", registered.app_id
            )
            return page("setup_saved.html", 500, registered=registered, error=str(error))
        self.running = True
        return RedirectResponse(registered.install_url, 303, HEADERS)

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("setup mode")

    async def not_yet(self, request: Request) -> Response:
        return PlainTextResponse("The GitHub App is not registered yet (setup mode).", 503)

"""The HTTP server: one loopback port for the REST API and git smart HTTP.

Requests for `/{owner}/{repo}.git/...` go to git, the browser's post of an App manifest to
GitHub's "new App" page to api_manifests; everything else to the REST route table.
Before either, an injected fault (see `GitHubSim.fail`) may answer instead. Every request is
recorded with its status and the kind of credentials it carried, before its answer is sent.
"""

from __future__ import annotations

import re
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from . import api_manifests, git_http
from .auth import identify
from .errors import ApiError
from .records import RecordedRequest
from .routes import ROUTES
from .routing import dispatch
from .state import State
from .wire import read_body, send, send_json

GIT_PATH = re.compile(r"/(?P<owner>[^/]+)/(?P<name>[^/]+?)\.git(?P<rest>/.*)?")


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: State, host: str = "127.0.0.1") -> None:
        self.state = state
        super().__init__((host, 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read `sim.requests` instead."""

    def version_string(self) -> str:
        return "GitHub.com"

    def _handle(self) -> None:
        assert isinstance(self.server, SimServer)
        state = self.server.state
        try:
            self._serve(state)
        except Exception:  # a simulator bug: answer 500 and show it, don't drop the socket
            traceback.print_exc()
            self.close_connection = True
            self._record(state, urlsplit(self.path).path, 500, "none")
            send_json(self, 500, ApiError(500).body())

    def _serve(self, state: State) -> None:
        split = urlsplit(self.path)
        path = split.path
        fault = state.take_fault(self.command, path)
        if fault is not None and not fault.after:
            read_body(self)
            caller = identify(state, self.headers.get("Authorization"))
            self._record(state, path, fault.status, caller.kind)
            send_json(self, fault.status, ApiError(fault.status).body())
            return
        if self.command == "POST" and api_manifests.NEW_APP_PAGE.fullmatch(path):
            status, headers, text = api_manifests.new_app_page(state, split.query, read_body(self))
            self._record(state, path, status, "none")
            send(self, status, text.encode(), {"Content-Type": "text/html", **headers})
            return
        git = GIT_PATH.fullmatch(path)
        if git is not None:
            git_http.serve(
                self,
                state,
                git["owner"],
                git["name"],
                git["rest"] or "/",
                split.query,
                lambda status, kind: self._record(state, path, status, kind),
            )
            return
        reply, kind = dispatch(
            state,
            ROUTES,
            self.command,
            path,
            split.query,
            read_body(self),
            self.headers.get("Authorization"),
        )
        headers = {"X-GitHub-Request-Id": f"SIM:{len(state.requests) + 1}", **reply.headers}
        if fault is not None:  # done, but the answer is lost on the way back
            self._record(state, path, fault.status, kind)
            send_json(self, fault.status, ApiError(fault.status).body(), headers)
            return
        self._record(state, path, reply.status, kind)  # first: tests read it once answered
        send_json(self, reply.status, reply.body, headers)

    def _record(self, state: State, path: str, status: int, kind: str) -> None:
        state.record(RecordedRequest(self.command, path, status, kind))

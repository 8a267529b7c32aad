"""A scripted OpenAI-compatible server on loopback: the model, played from a script.

Speaks the Responses API (`POST /v1/responses`) and Chat Completions
(`POST /v1/chat/completions`) in their wire formats, so the openai SDK runs unmodified against
it. A test registers a script (a list of turns) under a text that identifies its conversation;
each request is answered with the next turn of the matching script, the turn being derived from
the request itself (the ids of earlier calls it carries), so the server keeps no session state.
Inside `owned_by(test)` (the conftest enters it around every test that uses the session's
server) a script belongs to that test: no other test's requests are answered from it, and it is
dropped when the test ends, so two tests may script the same text; `conversation` there shows
only the requests that arrived during the test.
Faults are injected per request, in arrival order: an error status (with `Retry-After`), a
reply that comes late (to play a timeout), or a body that is not JSON.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TURN_ID = re.compile(r"_t(\d+)(?:_|$)")


@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict[str, Any] | str
    """A dict is sent as JSON; a str is sent verbatim (to play a malformed call)."""

    @property
    def raw(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


def shell(command: str, **extra: Any) -> Call:
    return Call("shell", {"command": command, **extra})


def finish(summary: str, validation: list[str] | None = None) -> Call:
    return Call("finish", {"summary": summary, "validation": validation or []})


Turn = list[Call] | str
"""Tool calls, or a plain text answer."""


@dataclass
class Script:
    match: tuple[str, ...]
    """Every one of these must appear in the conversation's opening."""
    turns: list[Turn]
    owner: str | None = None
    """The test that registered it; None for a script every conversation may use."""

    def matches(self, opening: str) -> bool:
        return all(part in opening for part in self.match)


@dataclass(frozen=True)
class Fault:
    """What the next request gets instead of (or before) its scripted answer."""

    status: int | None = None
    """Answer with this error status."""
    retry_after: float | None = None
    """Seconds sent as `Retry-After` with the error."""
    delay: float = 0.0
    """Seconds to wait before answering."""
    body: str | None = None
    """Answer 200 with this text instead of the scripted turn."""
    content_type: str = "text/html"


@dataclass
class ScriptedOpenAI:
    api_key: str = "sk-test-" + "0" * 32
    scripts: list[Script] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    arrived_for: list[str | None] = field(default_factory=list)
    """The owner at the time each of `requests` arrived."""
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    owner: str | None = None
    """The test now running, whose scripts (and the unowned ones) answer requests."""

    def __post_init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedOpenAI:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def script(self, match: str | tuple[str, ...], turns: Sequence[Turn]) -> None:
        """Answer conversations whose instructions or first message contain `match` (every
        part of it, for a tuple: e.g. a title and `attempt 2 of 3`). Of the scripts the
        current test may use, the first registered that matches wins."""
        parts = (match,) if isinstance(match, str) else match
        with self.lock:
            self.scripts.append(Script(parts, list(turns), self.owner))

    @contextlib.contextmanager
    def owned_by(self, test: str) -> Iterator[None]:
        """Scripts registered inside belong to `test`: only requests arriving inside are
        answered from them, and they are unregistered when it ends."""
        with self.lock:
            self.owner = test
        try:
            yield
        finally:
            with self.lock:
                self.scripts = [s for s in self.scripts if s.owner != test]
                self.owner = None

    def fail(self, status: int, times: int = 1, *, retry_after: float | None = None) -> None:
        """The next `times` requests get `status` with an OpenAI-style error body."""
        self.inject(Fault(status, retry_after), times)

    def delay(self, seconds: float, times: int = 1) -> None:
        """The next `times` requests are answered only after `seconds`."""
        self.inject(Fault(delay=seconds), times)

    def garble(self, body: str, times: int = 1, content_type: str = "text/html") -> None:
        """The next `times` requests get `body` with status 200."""
        self.inject(Fault(body=body, content_type=content_type), times)

    def inject(self, fault: Fault, times: int) -> None:
        with self.lock:
            self.faults += [fault] * times

    def conversation(self, match: str) -> Iterator[dict[str, Any]]:
        """The requests of conversations that matched `match`, in order; inside `owned_by`
        only those that arrived during it."""
        with self.lock:
            pairs = list(zip(self.arrived_for, self.requests, strict=True))
            owner = self.owner
        return (r for o, r in pairs if (owner is None or o == owner) and match in _opening(r))

    def tool_outputs(self, match: str) -> list[str]:
        """The tool outputs the last request of the conversation `match` sent back."""
        requests = list(self.conversation(match))
        items: list[dict[str, Any]] = requests[-1]["input"] if requests else []
        return [str(i["output"]) for i in items if i.get("type") == "function_call_output"]

    def find(self, body: dict[str, Any]) -> Script | None:
        opening = _opening(body)
        with self.lock:
            usable = [s for s in self.scripts if s.owner in (None, self.owner)]
        return next((s for s in usable if s.matches(opening)), None)


def _opening(body: dict[str, Any]) -> str:
    """The text that identifies a conversation: instructions and the first message (for Chat
    Completions the system message, if any, and the message after it)."""
    items = body.get("input") if "input" in body else body.get("messages")
    if not isinstance(items, list):
        items = [items]
    opening = items[:2] if items and _is_system(items[0]) else items[:1]
    contents = [i.get("content") if isinstance(i, dict) else i for i in opening]
    return "\n".join([body.get("instructions", ""), *(json.dumps(c) for c in contents)])


def _is_system(item: Any) -> bool:
    return isinstance(item, dict) and item.get("role") in ("system", "developer")


def _turn_index(body: dict[str, Any]) -> int:
    """1 + the highest turn number among the ids of earlier model output in the request."""
    seen = [-1]
    items = body.get("input") if "input" in body else body.get("messages")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        ids = [item.get("id"), item.get("call_id")]
        ids += [c.get("id") for c in item.get("tool_calls") or [] if isinstance(c, dict)]
        if item.get("role") == "assistant" and "tool_calls" not in item and "id" not in item:
            seen.append(seen[-1] + 1)
        for value in ids:
            if isinstance(value, str) and (m := TURN_ID.search(value)):
                seen.append(int(m.group(1)))
    return max(seen) + 1


def _usage(body: dict[str, Any], output: Any) -> tuple[int, int]:
    return len(json.dumps(body)) // 4, len(json.dumps(output)) // 4 + 1


def responses_reply(body: dict[str, Any], turn: Turn, index: int) -> dict[str, Any]:
    output: list[dict[str, Any]]
    if isinstance(turn, str):
        output = [
            {
                "type": "message",
                "id": f"msg_t{index}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": turn, "annotations": []}],
            }
        ]
    else:
        output = [
            {
                "type": "function_call",
                "id": f"fc_t{index}_{k}",
                "call_id": f"call_t{index}_{k}",
                "name": call.name,
                "arguments": call.raw,
                "status": "completed",
            }
            for k, call in enumerate(turn)
        ]
    tokens_in, tokens_out = _usage(body, output)
    return {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": body.get("model", "scripted"),
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": body.get("tools", []),
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "metadata": {},
        "usage": {
            "input_tokens": tokens_in,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": tokens_out,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": tokens_in + tokens_out,
        },
    }


def chat_reply(body: dict[str, Any], turn: Turn, index: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if isinstance(turn, str):
        message["content"] = turn
    else:
        message["tool_calls"] = [
            {
                "id": f"call_t{index}_{k}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.raw},
            }
            for k, call in enumerate(turn)
        ]
    tokens_in, tokens_out = _usage(body, message)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "scripted"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "stop" if isinstance(turn, str) else "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": tokens_in,
            "completion_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        },
    }


def _handler(fake: ScriptedOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def send(
            self,
            status: int,
            raw: bytes,
            kind: str = "application/json",
            headers: dict[str, str] | None = None,
        ) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)
            except OSError:
                self.close_connection = True  # the client gave up (a timeout being played)

        def send_json(self, status: int, data: dict[str, Any]) -> None:
            self.send(status, json.dumps(data).encode())

        def error(
            self,
            status: int,
            message: str,
            kind: str = "invalid_request_error",
            headers: dict[str, str] | None = None,
        ) -> None:
            body = {"error": {"message": message, "type": kind, "code": None}}
            self.send(status, json.dumps(body).encode(), headers=headers)

        def fault(self, fault: Fault) -> bool:
            """Play `fault`; True when it answered the request."""
            time.sleep(fault.delay)
            if fault.status is not None:
                kind = {429: "rate_limit_error"}.get(fault.status, "server_error")
                headers = (
                    {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
                )
                self.error(fault.status, f"scripted failure {fault.status}", kind, headers)
                return True
            if fault.body is not None:
                self.send(200, fault.body.encode(), fault.content_type)
                return True
            return False

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            with fake.lock:
                fake.requests.append(body)
                fake.arrived_for.append(fake.owner)
                fault = fake.faults.pop(0) if fake.faults else None
            if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                return self.error(401, "Incorrect API key provided.")
            if fault is not None and self.fault(fault):
                return None
            script = fake.find(body)
            if script is None:
                return self.error(400, "no script matches this conversation")
            index = _turn_index(body)
            turn = script.turns[index] if index < len(script.turns) else "(end of script)"
            if self.path == "/v1/responses":
                return self.send_json(200, responses_reply(body, turn, index))
            if self.path == "/v1/chat/completions":
                return self.send_json(200, chat_reply(body, turn, index))
            return self.error(404, f"unknown path {self.path}")

    return Handler

"""HTTP/1.1 plumbing the standard library leaves out: request bodies and replies.

`BaseHTTPRequestHandler` neither reads bodies nor decodes `Transfer-Encoding: chunked`
(which git uses for large pushes). Keep-alive needs every body drained and every reply
sized, so both live here.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

MAX_BODY = 512 * 1024 * 1024


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The whole request body, from Content-Length or chunked framing."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size_line = handler.rfile.readline(1024)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline(1024)
    length = int(handler.headers.get("Content-Length") or 0)
    if length > MAX_BODY:
        raise ValueError("request body too large")
    return handler.rfile.read(length) if length > 0 else b""


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    if status not in (204, 304):
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if status not in (204, 304) and handler.command != "HEAD":
        handler.wfile.write(body)


def send_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    payload: Any,
    headers: dict[str, str] | None = None,
) -> None:
    body = b"" if payload is None else json.dumps(payload).encode()
    send(
        handler,
        status,
        body,
        {
            "Content-Type": "application/json; charset=utf-8",
            "X-GitHub-Media-Type": "github.v3; format=json",
            **(headers or {}),
        },
    )

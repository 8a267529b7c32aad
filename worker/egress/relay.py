"""Moving one decided request and its response between a client and an upstream, event by event.

The request body and the response are relayed at once (so `Expect: 100-continue` and an early
answer work), both re-serialized by h11; trailers are forwarded as fields, minus the ones that
frame or route. A reused upstream connection the server closed while it sat in the pool is
retried once on a new one, when the request had no body (nothing was lost). Tunnels the proxy
does not decrypt (`network.agent: on`) are spliced as bytes, after their ClientHello was read.
"""

from __future__ import annotations

import asyncio
import time

import h11

from worker.egress.http import (
    CHUNK,
    NOT_IN_TRAILERS,
    Refused,
    Side,
    Streams,
    Traffic,
    UpstreamBroken,
    forwarded_headers,
    header,
    within,
)
from worker.egress.upstream import Key, Pool


class _Stale(Exception):
    """A pooled connection that ended before answering."""


async def _send_body(client: Side, upstream: Side, idle: float) -> None:
    while True:
        event = await client.next_event(idle)
        if isinstance(event, h11.Data):
            await upstream.send(h11.Data(data=event.data), idle)
        elif isinstance(event, h11.EndOfMessage):
            trailers = forwarded_headers(event.headers, NOT_IN_TRAILERS)
            await upstream.send(h11.EndOfMessage(headers=trailers), idle)
            return
        else:
            raise asyncio.IncompleteReadError(b"", None)  # the client went away mid-body


async def _relay_response(upstream: Side, client: Side, idle: float, fresh: bool) -> int:
    """Relay interim (1xx) heads and the final response; returns the final status."""
    status = 0
    while True:
        try:
            event = await upstream.next_event(idle)
        except (OSError, UpstreamBroken):
            if status == 0 and not fresh:
                raise _Stale from None
            raise
        if isinstance(event, h11.InformationalResponse):
            if event.status_code == 101:
                raise Refused(502, "the upstream switched protocols, which the proxy refuses")
            await client.send(h11.InformationalResponse(
                status_code=event.status_code, headers=forwarded_headers(event.headers),
                reason=event.reason), idle)  # fmt: skip
        elif isinstance(event, h11.Response):
            status = event.status_code
            headers = forwarded_headers(event.headers)
            response = h11.Response(status_code=status, headers=headers, reason=event.reason)
            await client.send(response, idle, hold=True)
        elif isinstance(event, h11.Data):
            await client.send(h11.Data(data=event.data), idle)
        elif isinstance(event, h11.EndOfMessage):
            trailers = forwarded_headers(event.headers, NOT_IN_TRAILERS)
            await client.send(h11.EndOfMessage(headers=trailers), idle)
            return status
        elif status == 0 and not fresh:
            raise _Stale
        else:
            raise asyncio.IncompleteReadError(b"", None)  # closed before the response ended


async def _once(
    client: Side, upstream: Side, request: h11.Request, idle: float, fresh: bool
) -> int:
    upstream.traffic = client.traffic
    await upstream.send(request, idle, counted=False)
    lengths = header(request, b"content-length")
    has_body = bool(header(request, b"transfer-encoding")) or lengths not in ([], [b"0"])
    if not has_body:  # the common case, and without two tasks per request
        await _send_body(client, upstream, idle)
        return await _relay_response(upstream, client, idle, fresh)
    sending = asyncio.ensure_future(_send_body(client, upstream, idle))
    response = asyncio.ensure_future(_relay_response(upstream, client, idle, True))
    try:
        done, _ = await asyncio.wait({sending, response}, return_when=asyncio.FIRST_COMPLETED)
        if response not in done:
            sending.result()
        return await response
    finally:
        for task in (sending, response):
            task.cancel()
        await asyncio.gather(sending, response, return_exceptions=True)


async def forward(client: Side, request: h11.Request, pool: Pool, key: Key, idle: float) -> int:
    """Send `request` (already rewritten for upstream) on a pooled connection and relay the
    exchange; returns the upstream's status. The client's request head is already read."""
    for _attempt in range(2):
        upstream, fresh = await pool.acquire(key)
        try:
            status = await _once(client, upstream, request, idle, fresh)
        except _Stale:
            upstream.streams.writer.close()
            continue
        except TimeoutError:
            upstream.streams.writer.close()
            if client.h11.our_state is not h11.SEND_RESPONSE:
                raise  # the response had begun: all that is left is to cut the connection
            raise Refused(408, f"nothing moved for {idle:g} s", tried=True) from None
        except BaseException:
            upstream.streams.writer.close()
            raise
        pool.release(key, upstream)
        return status
    raise Refused(502, f"`{key[1]}` closed the connection before answering", tried=True)


async def _copy(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, traffic: Traffic, idle: float
) -> None:
    """Copy until EOF, giving up once neither direction moved for `idle`."""
    while True:
        try:
            data = await within(reader.read(CHUNK), idle)
        except TimeoutError:
            if time.monotonic() - traffic.last < idle:
                continue
            raise
        if not data:
            if writer.can_write_eof():
                writer.write_eof()
            return
        writer.write(data)
        await within(writer.drain(), idle)
        traffic.moved(len(data))


async def splice(client: Streams, upstream: Streams, traffic: Traffic, idle: float) -> None:
    """Bytes both ways until both sides are done, either fails, or nothing moves for `idle`."""
    directions = {
        asyncio.ensure_future(_copy(client.reader, upstream.writer, traffic, idle)),
        asyncio.ensure_future(_copy(upstream.reader, client.writer, traffic, idle)),
    }
    try:
        done, pending = await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)
        if pending and all(task.exception() is None for task in done):
            await asyncio.wait(pending)
    finally:
        for task in directions:
            task.cancel()
        await asyncio.gather(*directions, return_exceptions=True)

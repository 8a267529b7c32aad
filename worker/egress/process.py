"""The egress proxy's own process, so its descriptors, CPU and memory are not the worker's.

`python -m worker.egress.process` reads its configuration as the first JSON line on stdin,
answers `{"event": "listening", "port": N}` (or `failed`), then takes commands as JSON lines:

    {"op": "register", "id": 1, "ip": "172.30.0.5", "label": "task", "policy": {...}}
    {"op": "unregister", "id": 2, "ip": "172.30.0.5"}

each answered `{"event": "ack", "id": N}` once done (an unregister after the sandbox's open
connections were cut and recorded), and streams every request as
`{"event": "request", "ip": ..., "request": {...}}`. Its log goes to stderr, the worker's log.
When stdin closes (the worker is gone), the proxy closes and the process ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from worker.egress.certs import CertificateAuthority
from worker.egress.limits import Caps, descriptor_budget
from worker.egress.policy import NetworkPolicy, Request
from worker.egress.proxy import EgressProxy

log = logging.getLogger(__name__)


FLUSH_EVERY = 0.05
"""Seconds request lines may wait to go out together (one wake-up of the worker per batch);
acknowledgements go out at once, after every line before them."""
_flushing: list[asyncio.TimerHandle] = []


def _flush() -> None:
    _flushing.clear()
    sys.stdout.flush()


def _emit(message: dict[str, Any], *, now: bool = True) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    if now:
        for handle in _flushing:
            handle.cancel()
        _flush()
    elif not _flushing:
        _flushing.append(asyncio.get_running_loop().call_later(FLUSH_EVERY, _flush))


def _proxy(config: dict[str, Any]) -> EgressProxy:
    ca = CertificateAuthority.load_or_create(Path(config["ca_dir"]))
    total = min(int(config.get("total") or 1 << 30), descriptor_budget())
    caps = Caps(per_sandbox=int(config.get("per_sandbox") or 64), total=total)
    upstream_ca = Path(config["upstream_ca"]) if config.get("upstream_ca") else None
    return EgressProxy(ca, hosts=config.get("hosts") or {}, upstream_ca=upstream_ca, caps=caps)


def _recorder(ip: str) -> Any:
    def record(request: Request) -> None:
        # vars(), not dataclasses.asdict(): the fields are plain values, and asdict's deep copy
        # was a tenth of the proxy's time per kept-alive request
        _emit({"event": "request", "ip": ip, "request": vars(request)}, now=False)

    return record


async def _command(proxy: EgressProxy, command: dict[str, Any]) -> None:
    ip = str(command["ip"])
    if command["op"] == "register":
        policy = command["policy"]
        rules = NetworkPolicy(policy["mode"], tuple(policy["allow"]), tuple(policy["methods"]))
        proxy.register(ip, rules, _recorder(ip), label=str(command.get("label", "")))
    else:
        await proxy.release(ip)
    _emit({"event": "ack", "id": command["id"]})


async def serve(stdin: asyncio.StreamReader) -> None:
    config = json.loads(await stdin.readline())
    proxy = _proxy(config)
    try:
        port = await proxy.start(config["bind"], int(config["port"]))
    except OSError as error:
        _emit({"event": "failed", "error": error.strerror or str(error)})
        return
    _emit({"event": "listening", "port": port, "total": proxy.caps.total})
    try:
        while line := await stdin.readline():
            await _command(proxy, json.loads(line))
    finally:
        await proxy.close()


async def _main() -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    await serve(stdin)


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s[proxy] %(message)s",
    )
    asyncio.run(_main())

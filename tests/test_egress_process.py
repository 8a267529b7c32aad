"""The egress proxy in its own process, as the worker runs it: policies pushed over its pipe,
requests streamed back with their verdicts; and `@preset` entries in `network.allow`."""

from __future__ import annotations

import asyncio
import http.client
import os
from pathlib import Path

import pytest

from tests.fakes.internet import Internet
from worker.egress.client import ProxyGone, ProxyProcess
from worker.egress.policy import NetworkPolicy, Request, UnknownPreset, expand_presets
from worker.egress.service import Egress, EgressUnavailable
from worker.repoconfig import NetworkConfig


def fetch(port: int, url: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", url)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_the_proxy_process_serves_a_registered_sandbox_and_streams_its_log(
    internet: Internet, tmp_path: Path
) -> None:
    async def scenario() -> tuple[list[Request], list[int], int, bytes]:
        config = {
            "bind": "127.0.0.1", "port": 0, "ca_dir": str(tmp_path / "ca"),
            "hosts": internet.hosts, "upstream_ca": str(internet.ca_file), "per_sandbox": 8,
        }  # fmt: skip
        process = await ProxyProcess.start(config)
        records: list[Request] = []
        try:
            policy = NetworkPolicy("allowlist", ("allowed.example",))
            before = await asyncio.to_thread(fetch, process.port, "http://allowed.example/")
            await process.register("127.0.0.1", policy, records.append, "task-7")
            statuses = [
                await asyncio.to_thread(fetch, process.port, "http://allowed.example/in"),
                await asyncio.to_thread(fetch, process.port, "http://denied.example/out"),
            ]
            await process.unregister("127.0.0.1")
            after = await asyncio.to_thread(fetch, process.port, "http://allowed.example/")
            pid = process.process.pid
            environment = await asyncio.to_thread(Path(f"/proc/{pid}/environ").read_bytes)
            return records, [before, *statuses, after], pid, environment
        finally:
            await process.close()

    os.environ["OPENAI_API_KEY"] = "sk-test-not-for-the-proxy"
    try:
        records, statuses, pid, environment = asyncio.run(scenario())
    finally:
        del os.environ["OPENAI_API_KEY"]
    assert pid != os.getpid()
    assert b"sk-test-not-for-the-proxy" not in environment  # no worker secret in the proxy
    assert statuses == [403, 200, 403, 403]  # unregistered, allowed, denied, unregistered
    assert [(r.host, r.path, r.allowed, r.status) for r in records] == [
        ("allowed.example", "/in", True, 200), ("denied.example", "/out", False, None),
    ]  # fmt: skip


def test_a_proxy_process_that_cannot_listen_says_why(tmp_path: Path) -> None:
    async def scenario() -> None:
        config = {"bind": "192.0.2.1", "port": 3999, "ca_dir": str(tmp_path / "ca")}
        await ProxyProcess.start(config)

    with pytest.raises(ProxyGone, match=r"[Aa]ddress"):
        asyncio.run(scenario())


PRESETS = {"internal-registries": ["pypi.corp.example", "*.npm.corp.example"]}


def test_presets_expand_among_plain_names() -> None:
    allow = expand_presets(["@internal-registries", "api.example.com"], PRESETS)
    assert allow == ("pypi.corp.example", "*.npm.corp.example", "api.example.com")


def test_an_unknown_preset_is_refused_by_name() -> None:
    with pytest.raises(UnknownPreset, match=r"`@internal-mirrors`.*`@internal-registries`"):
        expand_presets(["@internal-mirrors"], PRESETS)


def test_the_repository_config_accepts_a_preset_and_the_task_is_told_when_it_is_unknown() -> None:
    config = NetworkConfig(agent="allowlist", allow=["@internal-registries", "api.example.com"])
    egress = Egress("codex-egress", presets=PRESETS)
    policy = egress.policy(config)
    assert policy.allow == ("pypi.corp.example", "*.npm.corp.example", "api.example.com")
    with pytest.raises(EgressUnavailable, match="EGRESS_PRESETS"):
        Egress("codex-egress", presets={}).policy(config)
    with pytest.raises(ValueError, match="nor a preset"):
        NetworkConfig(agent="allowlist", allow=["@Not_A_Preset"])

"""The network boundary with real containers. The agent phase's modes: `allowlist` and `on` go
through the egress proxy to local servers standing in for the internet (`allowed.example`,
`denied.example`, and their HTTPS twins `tls.*`), and nothing on the host is reachable but the
proxy in any mode. The firewall (deploy/docker/sandbox-network.sh): setup resolves real names and
installs from the real package index, reaches the host's resolvers on port 53 and no other
private address; the worker's start-up self-test refuses network modes where the firewall is
missing; no sandbox reaches the host over IPv6."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
import httpx
import pytest

from app.settings import Settings
from tests.fakes.internet import Internet
from tests.fakes.openai import finish, shell
from tests.harness import SANDBOX_IMAGE, System, wait_for
from tests.repos import env_repo
from worker.egress import probe as netprobe
from worker.egress.probe import Findings, Probe
from worker.egress.selftest import NetworkCheck
from worker.egress.verdict import Verdict, engine_affected
from worker.sandbox.containers import open_sandbox
from worker.sandbox.removal import removals_settled
from worker.sandbox.spec import SandboxSpec

FETCH = """\
import ssl, sys, urllib.error, urllib.request
method, url = sys.argv[1], sys.argv[2]
context = ssl._create_unverified_context() if "--insecure" in sys.argv else None
data = b"payload" if method in ("POST", "PUT") else None
try:
    with urllib.request.urlopen(urllib.request.Request(url, data, method=method), timeout=15,
                                context=context) as reply:
        print(method, url, "->", reply.status, reply.read().decode())
except urllib.error.HTTPError as error:
    print(method, url, "->", error.code)
except Exception as error:
    print(method, url, "-> failed:", type(error).__name__)
"""

PROBE = """\
import os, socket, sys
from urllib.parse import urlsplit
proxy = urlsplit(os.environ.get("HTTP_PROXY", "http://0.0.0.0:0"))
targets = [(proxy.hostname, proxy.port, "proxy")]
targets += [(host, int(port), "host service") for host, port in
            (arg.split(":") for arg in sys.argv[1:])]
targets += [(proxy.hostname, int(arg.split(":")[1]), "gateway") for arg in sys.argv[1:]]
targets += [("169.254.169.254", 80, "metadata")]
for host, port, what in targets:
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
        print(what, host, port, "reachable")
    except OSError:
        print(what, host, port, "blocked")
try:  # names are the proxy's to resolve: the sandbox has no DNS to leak through
    socket.getaddrinfo("tls.allowed.example", 443)
    print("dns answered")
except OSError:
    print("dns blocked")
"""


def network_repo(system: System, network: str) -> str:
    repo = env_repo(system, f"network: {network}\n")
    system.github.commit(repo, "main", {"fetch.py": FETCH, "probe.py": PROBE})
    return repo


def fetches(*requests: str) -> str:
    return "; ".join(f"python3 fetch.py {request}" for request in requests)


def probe(system: System, host_service: int) -> str:
    redis_port = urlsplit(system.env["REDIS_URL"]).port
    return f"python3 probe.py 172.17.0.1:{host_service} 172.17.0.1:{redis_port}"


def test_allowlist_lets_listed_hosts_and_methods_through_and_reports_the_rest(
    system: System, internet: Internet, host_service: int
) -> None:
    network = "{agent: allowlist, allow: [allowed.example, '*.allowed.example'], methods: [GET]}"
    repo = network_repo(system, network)
    internet.seen.clear()
    number = system.github.create_issue(repo, "Allowlisted fetch", "x", user="alice")
    run = fetches(
        "GET http://allowed.example/plain",
        "GET https://tls.allowed.example/secure",
        "POST https://tls.allowed.example/upload",
        "GET http://denied.example/leak",
        "GET https://tls.denied.example/leak",
        f"GET http://127.0.0.1:{host_service}/",
    )
    system.openai.script(
        "Allowlisted fetch",
        [[shell(run)], [shell(probe(system, host_service))], [shell("echo ok > ok.txt")],
         [finish("Fetched.")]],
    )  # fmt: skip

    assert system.label(repo, number) == 202
    pull = wait_for(lambda: system.github.pulls(repo), 90, f"a PR\n{system.logs()}")[0]

    fetched, probed = system.openai.tool_outputs("Allowlisted fetch")[:2]
    assert "GET http://allowed.example/plain -> 200 http allowed.example GET /plain" in fetched
    # HTTPS is decrypted with the deployment's CA, which the sandbox trusts, to check methods.
    assert "-> 200 https tls.allowed.example GET /secure" in fetched, fetched
    assert "POST https://tls.allowed.example/upload -> 403" in fetched
    assert "GET http://denied.example/leak -> 403" in fetched
    assert "GET https://tls.denied.example/leak -> failed" in fetched  # CONNECT refused
    assert f"GET http://127.0.0.1:{host_service}/ -> failed" in fetched  # no_proxy: loopback
    assert [(s.method, s.path) for s in internet.arrived("allowed.example")] == [("GET", "/plain")]
    assert [(s.method, s.path) for s in internet.arrived("tls.allowed.example")] == [
        ("GET", "/secure")
    ]
    assert internet.arrived("denied.example") == internet.arrived("tls.denied.example") == []
    assert_only_the_proxy_is_reachable(probed)

    network_section = pull["body"].split("## Network", 1)[1].split("\n## ", 1)[0]
    assert "Network `allowlist`: 2 requests allowed, 3 refused" in network_section
    for refused in ("POST tls.allowed.example/upload", "GET denied.example/leak",
                    "CONNECT tls.denied.example"):  # fmt: skip
        assert f"`{refused}`" in network_section, network_section
    # The full log has every request with its verdict, status and reason.
    link = pull["body"].split("The full log, every step's whole output: ", 1)[1].split()[0]
    egress = httpx.get(link, timeout=10).text.split("--- egress log\n", 1)[1]
    assert " allowed GET allowed.example/plain → 200, " in egress, egress
    assert " REFUSED GET denied.example/leak" in egress
    assert "is not allowed by `.github/codex.yml` network.allow" in egress


def test_on_lets_any_public_host_through_still_logged_and_never_the_host(
    system: System, internet: Internet, host_service: int
) -> None:
    repo = network_repo(system, "{agent: on}")
    number = system.github.create_issue(repo, "Open network", "x", user="alice")
    run = fetches(
        "POST http://denied.example/anything",
        "PUT https://tls.denied.example/tunnel --insecure",  # not decrypted in `on` mode
        "GET http://169.254.169.254/latest/meta-data/",
        f"GET http://172.17.0.1:{host_service}/",
    )
    system.openai.script(
        "Open network",
        [[shell(run)], [shell(probe(system, host_service))], [shell("echo ok > ok.txt")],
         [finish("Fetched.")]],
    )  # fmt: skip

    assert system.label(repo, number) == 202
    pull = wait_for(lambda: system.github.pulls(repo), 90, f"a PR\n{system.logs()}")[0]

    fetched, probed = system.openai.tool_outputs("Open network")[:2]
    assert "POST http://denied.example/anything -> 200 http denied.example POST /anything 7" in (
        fetched
    )
    assert "PUT https://tls.denied.example/tunnel -> 200 https tls.denied.example PUT" in fetched
    assert "GET http://169.254.169.254/latest/meta-data/ -> 403" in fetched
    assert f"GET http://172.17.0.1:{host_service}/ -> 403" in fetched
    assert_only_the_proxy_is_reachable(probed)
    assert "Network `on`: 2 requests allowed, 2 refused" in pull["body"]


def assert_only_the_proxy_is_reachable(probed: str) -> None:
    lines = probed.splitlines()[1:]
    assert lines[0].startswith("proxy ") and lines[0].endswith(" 3135 reachable"), probed
    assert len(lines) == 7 and all(line.endswith(" blocked") for line in lines[1:]), probed
    assert lines[-1] == "dns blocked"


# --- The firewall itself: DNS for setup and only DNS, the start-up self-test, IPv6 ---------

INSTALL = "pip install --no-deps --target /home/codex/deps six"  # pip's own default index


def test_setup_resolves_real_names_and_installs_a_real_package_from_the_package_index(
    system: System,
) -> None:
    repo = env_repo(system, f"setup: {INSTALL}\n")
    number = system.github.create_issue(repo, "Real install", "x", user="alice")
    imports = "PYTHONPATH=/home/codex/deps python3 -c 'import six; print(\"six\", six.__version__)'"
    system.openai.script(
        "Real install", [[shell(imports)], [shell("echo ok > ok.txt")], [finish("Done.")]]
    )

    assert system.label(repo, number) == 202
    pull = wait_for(lambda: system.github.pulls(repo), 120, f"a PR\n{system.logs()}")[0]
    setup = pull["body"].split("**setup**", 1)[1].split("**1.**", 1)[0]
    assert "Successfully installed six-" in setup, setup
    assert "name resolution" not in setup
    assert system.openai.tool_outputs("Real install")[0].startswith("exit code: 0\nsix 1.")


def run_probe(network: str, probe: Probe) -> Findings:
    engine = docker.from_env()
    try:
        return asyncio.run(netprobe.run_probe(engine, SANDBOX_IMAGE, network, probe))
    finally:
        engine.close()


def test_setup_reaches_the_hosts_resolvers_on_port_53_and_nothing_else_private(
    docker_ready: None, host_service: int, redis_url: str
) -> None:
    resolvers = netprobe.private_resolvers()
    if not resolvers:
        pytest.skip("this host's resolvers are public: no private resolver to attack")
    redis_port = urlsplit(redis_url).port or 6379
    seconds = 1.5
    connect = {
        f"{r}:{p}": (r, p, 3.0 if p == 53 else seconds) for r in resolvers for p in (53, 443)
    }
    for host in ("172.17.0.1", "172.18.0.1"):
        for port in (host_service, redis_port, 2375):
            connect[f"{host}:{port}"] = (host, port, seconds)
    connect["169.254.169.254:80"] = ("169.254.169.254", 80, seconds)
    found = run_probe("codex-setup", Probe({"localhost.": 3.0}, connect))
    assert all(found.connected[f"{r}:53"] == "open" for r in resolvers), found
    assert [label for label in found.connected if found.reached(label)] == [
        f"{r}:53" for r in resolvers
    ], found


def test_the_worker_checks_its_firewall_at_start_and_finds_it_whole(system: System) -> None:
    worker_log = system.worker.log
    line = wait_for(
        lambda: [x for x in worker_log.read_text().splitlines() if "network self-test" in x],
        30,
        f"the self-test's verdict\n{system.logs()}",
    )
    assert "setup and egress networks are firewalled as they should be" in line[0], line


@contextlib.contextmanager
def bare_network(*, internal: bool = False, name: str = "") -> Iterator[tuple[str, str]]:
    """A Docker network the firewall knows nothing about (its name and bridge), removed after."""
    engine = docker.from_env()
    name = name or f"codex-nettest-{secrets.token_hex(3)}"
    bridge = f"cxt{secrets.token_hex(4)}"
    network = engine.networks.create(
        name, driver="bridge", internal=internal, labels={"codex.test": "1"},
        options={"com.docker.network.bridge.name": bridge},
    )  # fmt: skip
    try:
        yield name, bridge
    finally:
        deadline = time.monotonic() + 30
        while True:  # a probe of a self-test still running may attach meanwhile: again
            for container in engine.containers.list(all=True, filters={"network": name}):
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True)
            try:
                network.remove()
                break
            except docker.errors.APIError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        engine.close()


def selftest_settings(setup_network: str, egress_network: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_id": 1, "private_key": "unused", "webhook_secret": "a-real-secret-value",
        "openai_api_key": "a-real-key-value", "sandbox_image": SANDBOX_IMAGE,
        "sandbox_network": setup_network, "egress_network": egress_network,
    }  # fmt: skip
    return Settings(**(values | overrides))


def self_test(setup_network: str, egress_network: str, **overrides: Any) -> Verdict:
    settings = selftest_settings(setup_network, egress_network, **overrides)

    async def check() -> Verdict:
        engine = docker.from_env()
        network = NetworkCheck.start(settings, engine, proxy_running=False)
        try:
            started = time.monotonic()
            verdict = await network.verdict()
            assert time.monotonic() - started < 15, "the self-test is bounded to seconds"
            for mode in ("setup", "allowlist", "on"):
                assert await network.problem_for(mode) == (
                    verdict.setup if mode == "setup" else verdict.egress
                )
            assert await network.problem_for("off") is None
            return verdict
        finally:
            await network.close()
            await removals_settled()
            engine.close()

    return asyncio.run(check())


def test_the_self_test_refuses_network_modes_where_the_firewall_is_missing(
    docker_ready: None,
) -> None:
    with bare_network() as (setup, _), bare_network(internal=True) as (egress, _):
        verdict = self_test(setup, egress, allow_vulnerable_engine=True)
    firewall = "the sandbox firewall is missing or incomplete (run deploy/docker/sandbox-network.sh"
    assert verdict.setup == (
        f"network for setup is off on this worker: {firewall} as root): a setup sandbox "
        "reached a service on this host"
    ), verdict
    assert verdict.egress == (
        f"network for allowlist/on is off on this worker: {firewall} as root): an egress sandbox "
        "reached a service on this host"
    ), verdict


def test_the_self_test_refuses_allowlist_and_on_on_this_engine_without_the_override(
    docker_ready: None,
) -> None:
    if not engine_affected(str(docker.from_env().version()["Version"])):
        pytest.skip("this Docker engine is not affected by CVE-2024-29018")
    verdict = self_test("codex-setup", "codex-egress")
    assert verdict.setup is None and verdict.warnings == (), verdict
    assert verdict.egress is not None and "CVE-2024-29018" in verdict.egress


def test_a_self_test_that_cannot_run_refuses_network_modes(docker_ready: None) -> None:
    verdict = self_test("codex-setup", "codex-egress", sandbox_image="codex-sandbox:absent")
    for problem, network in ((verdict.setup, "codex-setup"), (verdict.egress, "codex-egress")):
        assert problem is not None, verdict
        assert f"the network self-test could not run (the probe on {network!r}: " in problem


async def _until(
    network: NetworkCheck, mode: str, done: Callable[[str | None], bool], what: str
) -> str | None:
    deadline = time.monotonic() + 60
    while not done(problem := await network.problem_for(mode)):
        assert time.monotonic() < deadline, f"timed out waiting for {what}; still {problem!r}"
        await asyncio.sleep(0.2)
    return problem


@pytest.mark.system
def test_the_self_test_reruns_so_a_firewall_missing_under_a_running_worker_turns_network_off(
    docker_ready: None,
) -> None:
    """The setup network's firewall goes missing while the worker runs (a network the firewall
    script never configured appears under the setup network's name), then the hole is gone: the
    periodic rerun refuses setup's network with the start-up status, then allows it again."""
    name = f"codex-nettest-{secrets.token_hex(3)}"
    settings = selftest_settings(
        name, "codex-egress", allow_vulnerable_engine=True, network_check_interval=0.5
    )
    firewall = "the sandbox firewall is missing or incomplete (run deploy/docker/sandbox-network.sh"
    refused = (
        f"network for setup is off on this worker: {firewall} as root): a setup sandbox reached "
        "a service on this host"
    )

    async def check() -> None:
        engine = docker.from_env()
        network = NetworkCheck.start(settings, engine, proxy_running=False)
        try:
            assert await network.problem_for("setup") is None  # no such network: no hole yet
            with bare_network(name=name):
                runs = network.runs
                problem = await _until(network, "setup", bool, "the rerun to refuse setup")
                assert problem == refused
                assert network.runs > runs, "refused by a rerun, not by the start-up test"
                assert await network.problem_for("allowlist") is None  # the egress side holds
            await _until(network, "setup", lambda p: p is None, "the rerun to allow setup")
        finally:
            await network.close()
            await removals_settled()
            engine.close()

    asyncio.run(check())


IPV6_ATTACK = """\
import errno, socket, sys, time
target = sys.argv[1]
deadline = time.monotonic() + 6
while True:  # the container's link-local address is tentative for a moment (DAD)
    try:
        address = socket.getaddrinfo(target, int(sys.argv[2]), socket.AF_INET6)[0][4]
        s = socket.socket(socket.AF_INET6)
        s.settimeout(2)
        s.connect(address)
        print("reachable")
        break
    except OSError as error:
        if error.errno == errno.EADDRNOTAVAIL and time.monotonic() < deadline:
            time.sleep(0.2)
            continue
        print("blocked", error)
        break
"""


@pytest.fixture
def host_service6() -> Iterator[int]:
    """A service on every IPv6 (and IPv4) address of this host, as `::`-bound servers are."""
    server = socket.socket(socket.AF_INET6)
    server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    server.bind(("::", 0))
    server.listen(16)

    def accept() -> None:
        with contextlib.suppress(OSError):  # closed at the end
            while True:
                server.accept()[0].close()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


def link_local(bridge: str) -> str | None:
    """This host's link-local IPv6 address on `bridge` (from /proc/net/if_inet6)."""
    for line in Path("/proc/net/if_inet6").read_text().splitlines():
        hexa, _, _, scope, _, name = line.split()
        if name == bridge and scope == "20":
            return str(ipaddress.IPv6Address(bytes.fromhex(hexa)))
    return None


def ipv6_attack(network: str, bridge: str, port: int) -> str:
    """From a container on `network` with IPv6 turned back on (what a future Docker default or
    a changed setting would give), connect to this host's `::` service over the bridge."""
    engine = docker.from_env()
    container = engine.containers.run(
        SANDBOX_IMAGE, ["sleep", "60"], detach=True, network=network, user="1000:1000",
        sysctls={"net.ipv6.conf.all.disable_ipv6": "0", "net.ipv6.conf.eth0.disable_ipv6": "0"},
        labels={"codex.test": "ipv6"}, cap_drop=["ALL"],
    )  # fmt: skip
    try:
        address = wait_for(lambda: link_local(bridge), 10, f"an IPv6 address on {bridge}")
        result = container.exec_run(["python3", "-c", IPV6_ATTACK, f"{address}%eth0", str(port)])
        assert isinstance(result.output, bytes)
        return result.output.decode().strip()
    finally:
        container.remove(force=True)
        engine.close()


def test_no_sandbox_reaches_the_host_over_ipv6(docker_ready: None, host_service6: int) -> None:
    engine = docker.from_env()
    for network in ("codex-setup", "codex-egress"):  # as tasks start them: IPv6 is off
        bridge = engine.networks.get(network).attrs["Options"]["com.docker.network.bridge.name"]
        assert ipv6_attack(network, bridge, host_service6).startswith("blocked"), network

        async def ipv6_setting() -> str:
            spec = SandboxSpec(image=SANDBOX_IMAGE, network=network, label="test-ipv6")  # noqa: B023
            async with open_sandbox(engine, spec) as sandbox:
                result = await sandbox.run(
                    "cat /proc/sys/net/ipv6/conf/all/disable_ipv6", timeout=10
                )
            return result.output.strip()

        assert asyncio.run(ipv6_setting()) == "1", f"a task's sandbox on {network} has IPv6 off"
    engine.close()
    # The control: the same attack on a network without these rules gets through.
    with bare_network() as (network, bridge):
        assert ipv6_attack(network, bridge, host_service6) == "reachable"

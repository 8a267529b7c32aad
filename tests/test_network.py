"""The agent phase's network modes with real containers: `allowlist` and `on` go through the
egress proxy to local servers standing in for the internet (`allowed.example`,
`denied.example`, and their HTTPS twins `tls.*`), and nothing on the host is reachable but the
proxy in any mode."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from tests.conftest import System, wait_for
from tests.fakes.internet import Internet
from tests.fakes.openai import finish, shell
from tests.test_environments import env_repo, tool_outputs
from tests.test_triggers import label

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

    assert label(system, repo, number) == 202
    pull = wait_for(lambda: system.github.pulls(repo), 90, f"a PR\n{system.logs()}")[0]

    fetched, probed = tool_outputs(system, "Allowlisted fetch")[:2]
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

    assert label(system, repo, number) == 202
    pull = wait_for(lambda: system.github.pulls(repo), 90, f"a PR\n{system.logs()}")[0]

    fetched, probed = tool_outputs(system, "Open network")[:2]
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

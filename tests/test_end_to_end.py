"""Label an issue, get a draft PR: the whole path on real parts.

GitHub simulator → the app on uvicorn → Redis → the arq worker → a Docker container running
the scripted model's commands → a branch pushed over smart HTTP and a draft PR.
"""

from __future__ import annotations

import docker

from tests.fakes.openai import finish, shell
from tests.harness import System, wait_for
from tests.repos import CALC, TEST_CALC


def test_labeling_an_issue_yields_a_draft_pr_that_fixes_it(system: System) -> None:
    sim = system.github
    repo = "octo-org/calculator"
    sim.create_repo(repo, {"calc.py": CALC, "test_calc.py": TEST_CALC, "README.md": "# calc\n"})
    sim.set_permission(repo, "alice", "write")
    number = sim.create_issue(repo, "add() subtracts", "`add(2, 3)` returns -1.", user="alice")
    system.openai.script(
        ("add() subtracts", "`add(2, 3)` returns -1."),  # other tests' issues say the first
        [
            [shell("python3 -m unittest -v")],
            [shell("sed -i 's/a - b/a + b/' calc.py")],
            [shell("python3 -m unittest -v")],
            [finish("Fixed `add` to add its arguments.", ["python3 -m unittest -v"])],
        ],
    )
    payload = sim.webhook_payload(
        "issues", "labeled", repo, sender="alice", number=number, label="codex"
    )

    assert system.deliver("issues", payload, delivery_id="e2e-delivery-1") == 202

    pulls = wait_for(lambda: sim.pulls(repo), 120, f"a draft PR\n{system.logs()}")
    assert len(pulls) == 1
    pull = pulls[0]
    assert pull["draft"] is True
    assert pull["title"] == "add() subtracts"
    assert pull["base"] == "main"
    assert pull["head"] == f"codex/issue-{number}-add-subtracts"
    # The pushed branch fixes the bug and touches nothing else.
    assert "return a + b" in sim.git(repo, "show", f"{pull['head']}:calc.py")
    changed = sim.git(repo, "diff", "--name-only", "main", pull["head"]).split()
    assert changed == ["calc.py"]
    # The body is the evidence: summary, validation backed by the log, the test run, the link.
    body = pull["body"]
    assert "Fixed `add` to add its arguments." in body
    assert "✅ exit 0" in body
    assert "FAILED (failures=1)" in body  # the first, failing run is in the work log
    assert "Ran 1 test" in body and "\nOK" in body
    assert f"Fixes #{number}" in body
    # The person who asked sees the outcome where they asked.
    comments = wait_for(
        lambda: [c for c in sim.comments(repo, number) if "Draft PR ready" in c["body"]],
        20,
        "the final status comment",
    )
    assert len(sim.comments(repo, number)) == 1, "one status comment, edited in place"
    assert str(pull["number"]) in comments[0]["body"]
    assert "Fixed `add` to add its arguments." in comments[0]["body"]
    assert "tokens" in comments[0]["body"] and "≈ $0.0" in comments[0]["body"]
    # Nothing lingers: the container is gone and the token is revoked.
    client = docker.from_env()
    try:
        leftovers = client.containers.list(all=True, filters={"label": "codex.task"})
    finally:
        client.close()
    assert leftovers == []
    name = repo.split("/")[1]
    pushers = [
        t
        for t in sim.tokens_issued
        if sim.token_info(t).allows("contents", "write")
        and {repo, name} & set(sim.token_info(t).repositories or ())
    ]
    assert len(pushers) == 1, "one token could push this repository: the task's"
    wait_for(
        lambda: pushers[0] in sim.tokens_revoked,
        10,
        f"the task's token to be revoked\n{system.logs()}",
    )


def test_a_redelivered_webhook_queues_nothing_new(system: System) -> None:
    sim = system.github
    repo = "octo-org/redelivery"
    sim.create_repo(repo, {"README.md": "# r\n"})
    sim.set_permission(repo, "alice", "admin")
    number = sim.create_issue(repo, "Typo in README", "Say hello.", user="alice")
    system.openai.script(
        "Typo in README",
        [[shell("echo hello >> README.md")], [finish("Said hello.", [])]],
    )
    payload = sim.webhook_payload(
        "issues", "labeled", repo, sender="alice", number=number, label="codex"
    )
    assert system.deliver("issues", payload, delivery_id="redelivered-1") == 202
    wait_for(lambda: sim.pulls(repo), 120, f"a draft PR\n{system.logs()}")
    assert system.deliver("issues", payload, delivery_id="redelivered-1") == 204
    openings = list(system.openai.conversation("Typo in README"))
    assert len(openings) == 2, "the model ran once: two turns, no second task"
    assert len(sim.pulls(repo)) == 1

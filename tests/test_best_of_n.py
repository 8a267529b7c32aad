"""Best-of-N: attempts in parallel, each in its own container, ranked; `/codex pick N`."""

from __future__ import annotations

import docker

from tests.fakes.openai import finish, shell
from tests.harness import System
from tests.repos import CHECK, FIX, calc_repo

TITLE = "Best of three"


def test_attempts_run_apart_the_best_is_published_and_pick_moves_the_pr(system: System) -> None:
    sim = system.github
    repo = calc_repo(system, f"validate: {CHECK}\n")
    number = sim.create_issue(repo, TITLE, "add() subtracts", user="alice")
    attempts = {
        1: "echo '# not the fix' >> calc.py",  # validation fails
        2: f"{FIX} && printf '\\n# add adds\\n# really\\n' >> calc.py",  # passes, bigger diff
        3: FIX,  # passes, smallest diff
    }
    for n, command in attempts.items():
        turns = [[shell(f"hostname; {command}")], [finish(f"Attempt {n}.")]]
        system.openai.script((TITLE, f"attempt {n} of 3"), turns)

    assert system.comment(repo, number, "/codex fix --attempts 3") == 202

    system.status_comment(repo, number, "Draft PR ready")
    pull = sim.pulls(repo)[0]
    assert len(sim.pulls(repo)) == 1, "one PR carries the winner"
    assert pull["head"] == f"codex/issue-{number}-best-of-three"
    assert "Attempt 3." in pull["body"]
    branches = [f"codex/issue-{number}-attempt-{n}" for n in (1, 2, 3)]
    for n, branch in enumerate(branches, 1):
        assert sim.git(repo, "rev-parse", f"{branch}^") == sim.git(repo, "rev-parse", "main"), n
    assert sim.git(repo, "rev-parse", pull["head"]) == sim.git(repo, "rev-parse", branches[2])
    table = pull["body"].split("## Attempts", 1)[1].split("##", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1].startswith("| 1 | ❌ failed")
    assert rows[2].startswith("| 2 | ✅ passed")
    assert rows[3].startswith("| 3 ⭐ (this PR) | ✅ passed")
    assert "/codex pick N" in table
    # The three ran in three containers, none of which is left.
    hosts = {o.splitlines()[1] for o in _tool_outputs(system) if o.startswith("exit code: 0")}
    assert len(hosts) == 3, hosts
    client = docker.from_env()
    try:
        assert client.containers.list(all=True, filters={"label": "codex.task"}) == []
    finally:
        client.close()

    assert system.comment(repo, pull["number"], "/codex pick 2", pull=True) == 202

    system.status_comment(repo, pull["number"], "now carries attempt 2")
    moved = sim.pulls(repo)[0]
    assert sim.git(repo, "rev-parse", moved["head"]) == sim.git(repo, "rev-parse", branches[1])
    assert "Attempt 2." in moved["body"] and "| 2 ⭐ (this PR) |" in moved["body"]
    assert "# add adds" in sim.git(repo, "show", f"{moved['head']}:calc.py")

    assert system.comment(repo, pull["number"], "/codex pick 4", pull=True) == 202
    refused = system.status_comment(repo, pull["number"], "has no attempt 4")
    assert "attempts with a change: 1, 2, 3" in refused["body"]
    assert sim.git(repo, "rev-parse", moved["head"]) == sim.git(repo, "rev-parse", branches[1])


def _tool_outputs(system: System) -> list[str]:
    outputs = []
    for request in system.openai.conversation(TITLE):
        for item in request["input"]:
            if item.get("type") == "function_call_output":
                outputs.append(str(item["output"]))
    return outputs

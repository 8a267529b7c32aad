"""`/codex fix` on pull requests: new commits on the PR's branch, or a draft PR for a fork."""

from __future__ import annotations

import time

from tests.harness import System, wait_for
from tests.repos import new_repo, script_fix


def test_a_fix_on_a_same_repo_pull_request_pushes_to_its_branch(system: System) -> None:
    sim = system.github
    repo = new_repo(system)
    before = sim.commit(repo, "feature", {"f.py": "x = 1\n"}, message="Add f")
    sim.add_review_comment(
        repo,
        sim.create_pull(repo, "Tune x", "feature", user="alice"),
        "x should be 2",
        "bob",
        "f.py",
        1,
    )
    pull = sim.pulls(repo)[0]["number"]
    script_fix(system, "Tune x")
    payload = sim.webhook_payload(
        "pull_request_review_comment", "created", repo, sender="alice", number=pull,
        comment_body="/codex fix as bob says", path="f.py", line=1,
    )  # fmt: skip

    assert system.deliver("pull_request_review_comment", payload) == 202

    done = system.status_comment(repo, pull, "Pushed to `feature`")
    assert "Set x to 2." in done["body"] and "<details>" in done["body"]
    log = sim.git(repo, "log", "--format=%P %an", "-1", "feature").split()
    assert log == [before, "codex-app[bot]"], "one new commit on top of the PR's head"
    assert sim.git(repo, "show", "feature:f.py") == "x = 2\n"
    assert len(sim.pulls(repo)) == 1, "no new PR"
    opening = next(system.openai.conversation("Tune x"))["input"][0]["content"]
    assert "x should be 2" in opening and "f.py line 1" in opening
    assert "as bob says" in opening
    assert any(r.subject.startswith("review_comment:") for r in sim.reactions(repo))


def test_a_fix_on_a_fork_pull_request_opens_a_draft_pr_over_a_copy_of_its_branch(
    system: System,
) -> None:
    sim = system.github
    repo = new_repo(system)
    fork = sim.create_fork(repo, "contributor")
    head = sim.commit(fork, "patch", {"f.py": "x = 1\n"}, message="Add f")
    pull = sim.create_pull(repo, "Fork change", "contributor:patch")
    script_fix(system, "Fork change")
    payload = sim.webhook_payload(
        "issue_comment", "created", repo, sender="alice", number=pull, comment_body="/codex fix",
        pull=True,
    )  # fmt: skip

    assert system.deliver("issue_comment", payload) == 202

    drafts = wait_for(
        lambda: [p for p in sim.pulls(repo) if p["number"] != pull], 60, f"a PR\n{system.logs()}"
    )
    draft = drafts[0]
    assert draft["draft"] and draft["base"] == f"codex/pr-{pull}-head"
    assert draft["head"] == f"codex/pr-{pull}-fork-change"
    assert sim.git(repo, "rev-parse", draft["base"]).strip() == head
    assert sim.git(repo, "diff", "--name-only", draft["base"], draft["head"]).split() == ["f.py"]
    assert "is in a fork" in draft["body"]
    assert sim.git(fork, "rev-parse", "patch").strip() == head, "the fork is untouched"
    system.status_comment(repo, pull, "Draft PR ready")


def test_a_second_run_sees_only_the_review_comments_made_since_the_first(
    system: System,
) -> None:
    sim = system.github
    repo = new_repo(system)
    sim.commit(repo, "tweak", {"f.py": "x = 1\n"}, message="Add f")
    pull = sim.create_pull(repo, "Tweak x twice", "tweak", user="alice")
    sim.add_review_comment(repo, pull, "first remark: x should be 2", "bob", "f.py", 1)
    script_fix(system, "Tweak x twice")

    def ask(text: str) -> None:
        payload = sim.webhook_payload(
            "issue_comment", "created", repo, sender="alice", number=pull,
            comment_body=f"/codex fix {text}", pull=True,
        )  # fmt: skip
        assert system.deliver("issue_comment", payload) == 202

    ask("round one")
    system.status_comment(repo, pull, "Pushed to `tweak`")
    time.sleep(1.1)  # GitHub's timestamps have whole seconds: the next remark is a second later
    sim.add_review_comment(repo, pull, "second remark: keep it tidy", "bob", "f.py", 1)
    ask("round two")
    wait_for(lambda: len(list(system.openai.conversation("round two"))) >= 1, 60, "run two")
    system.wait_idle()

    first = next(system.openai.conversation("round one"))["input"][0]["content"]
    second = next(system.openai.conversation("round two"))["input"][0]["content"]
    assert "first remark" in first and "second remark" not in first
    assert "second remark" in second and "first remark" not in second

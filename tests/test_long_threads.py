"""Long threads: the prompt keeps the newest comments and the line asked about, cuts the oldest."""

from __future__ import annotations

import itertools
import secrets

from tests.harness import System, wait_for
from tests.repos import bump_script, script_fix

counter = itertools.count(1)
RUN = secrets.token_hex(3)

LONG = " ".join(["filler"] * 500)
"""About 3.5 KB: a dozen such comments fill the prompt's budget for quotes."""


def new_repo(system: System) -> str:
    """A repository of this module's own. The GitHub simulator's request log is shared by the run:
    the texts here must not contain another test's match strings or logins."""
    repo = f"octo-org/long-{RUN}-{next(counter)}"
    system.github.create_repo(repo, {"README.md": "# hello\n", "app.py": "VERSION = 1\n"})
    system.github.set_permission(repo, "alice", "write")
    return repo


def test_an_issue_with_a_long_thread_shows_the_model_its_newest_comments(system: System) -> None:
    sim = system.github
    repo = new_repo(system)
    number = sim.create_issue(
        repo, "Long issue thread", "Set VERSION to 2 in app.py.", user="alice"
    )
    for k in range(129):  # two pages of 100: the newest are on the second
        sim.add_comment(repo, number, f"remark-{k}: {LONG}", "alice" if k % 2 else "passer-by")
    sim.add_comment(repo, number, "newest remark: 2, not 3", "alice")
    bump_script(system, "Long issue thread")

    assert system.label(repo, number) == 202
    wait_for(lambda: sim.pulls(repo), 90, f"a PR\n{system.logs()}")

    opening = next(system.openai.conversation("Long issue thread"))["input"][0]["content"]
    assert "Set VERSION to 2 in app.py." in opening, "the issue itself is kept"
    assert "newest remark: 2, not 3" in opening
    assert "remark-128:" in opening and "remark-0:" not in opening and "remark-99:" not in opening
    assert "older comments cut to fit the prompt" in opening


def test_a_review_request_on_a_long_pull_request_keeps_the_line_it_is_attached_to(
    system: System,
) -> None:
    sim = system.github
    repo = new_repo(system)
    sim.commit(repo, "busy", {"f.py": "x = 1\n"}, message="Add f")
    pull = sim.create_pull(repo, "Busy review", "busy", user="alice")
    for k in range(120):
        sim.add_review_comment(repo, pull, f"review-{k}: {LONG}", "bob", "f.py", 1)
    sim.add_review_comment(repo, pull, "last review: x should be 2", "bob", "f.py", 1)
    script_fix(system, "Busy review")
    payload = sim.webhook_payload(
        "pull_request_review_comment", "created", repo, sender="alice", number=pull,
        comment_body="/codex fix this line", path="f.py", line=1,
    )  # fmt: skip

    assert system.deliver("pull_request_review_comment", payload) == 202

    system.status_comment(repo, pull, "Pushed to `busy`")
    opening = next(system.openai.conversation("Busy review"))["input"][0]["content"]
    assert "The request is attached to f.py line 1." in opening
    assert "last review: x should be 2" in opening and "review-119:" in opening
    assert "review-0:" not in opening
    assert "older comments cut to fit the prompt" in opening

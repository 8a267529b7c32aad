"""What a finished task publishes and says, decided from plain data (`worker/report/outcome.py`):
titles, labels, branches, commit messages, the record later commands read, the status texts."""

from __future__ import annotations

import pytest

from app.tasks import Task
from worker import errors
from worker.agent.loop import Outcome
from worker.attempt import Attempt
from worker.change import Change
from worker.plan import Plan
from worker.redact import Redactor
from worker.repoconfig import RepoConfig
from worker.report import outcome
from worker.report.worklog import Step, WorkLog

TASK = Task(repo="octo/calc", number=7, installation_id=1, sender="alice", trigger="label:1",
            delivery_id="d1")  # fmt: skip


def plan(mode: str = "new_pr", **extra: object) -> Plan:
    fields: dict[str, object] = dict(
        title="Fix the adder (#7)", fetch_ref="main", mode=mode, push_branch="codex/issue-7-fix",
        pr_base="main", clone_url="http://git/octo/calc.git", html_url="http://gh/octo/calc/7",
        config=RepoConfig(), about="Fix the adder", author="bob", body="It adds wrong.",
        attempts_prefix="codex/task-7",
    )  # fmt: skip
    fields.update(extra)
    return Plan(**fields)  # type: ignore[arg-type]


def attempt(
    number: int,
    *,
    files: list[str] | None = None,
    stop: str | None = None,
    check_exit: int | None = 0,
    steps: int = 3,
    problems: list[str] | None = None,
) -> Attempt:
    log = WorkLog(steps=[Step(1, "pytest -q", 0, 0.5, "1 passed")], input_tokens=1000,
                  output_tokens=200)  # fmt: skip
    if check_exit is not None:
        log.check = Step(None, "pytest", check_exit, 1.0, "", kind="check")
    files = ["calc.py"] if files is None else files
    change = Change(files=files, problems=problems or [], tree="t" * 40 if files else None)
    done = Outcome(summary=f"Fixed it, attempt {number}.\n\nMore.", claimed=["pytest: ok"],
                   steps=steps, stop_reason=stop)  # fmt: skip
    return Attempt(number, done, log, b"diff --git a/calc.py b/calc.py\n+x\n", change, None)


def publish(attempts: list[Attempt], the_plan: Plan | None = None) -> outcome.Publication:
    return outcome.publication(TASK, the_plan or plan(), attempts, closing=None,
                               log_url="http://app/log/1", duration=12.0,
                               cost=lambda i, o: (i + o) / 1e6, redact=Redactor([]))  # fmt: skip


def test_one_attempt_is_published_on_the_issue_branch_with_fixes_and_no_labels() -> None:
    done = publish([attempt(1)])
    assert done.winner == 1 and done.attempt_branches == {}
    chosen = done.chosen
    assert chosen.title == "Fix the adder (#7)"
    assert chosen.branch == "codex/issue-7-fix"
    assert chosen.labels == {outcome.INCOMPLETE: False, outcome.FAILING: False}
    assert "Fixes #7" in chosen.body and "Fixed it, attempt 1." in chosen.body
    assert done.messages[1] == "Fix the adder (#7)\n\nFor #7, started by @alice."


def test_an_incomplete_failing_attempt_says_so_in_its_title_and_labels() -> None:
    done = publish([attempt(1, stop="the step limit (40) was reached", check_exit=1)])
    assert done.chosen.title == "[incomplete] [failing validation] Fix the adder (#7)"
    assert done.chosen.labels == {outcome.INCOMPLETE: True, outcome.FAILING: True}


def test_a_rerun_does_not_stack_markers_on_the_title() -> None:
    rerun = plan(title="[incomplete] Fix the adder (#7)")
    assert publish([attempt(1)], rerun).chosen.title == "Fix the adder (#7)"


def test_best_of_n_pushes_each_publishable_attempt_and_the_validated_one_wins() -> None:
    attempts = [attempt(1, check_exit=1), attempt(2), attempt(3, files=[])]
    done = publish(attempts)
    assert done.winner == 2
    assert done.attempt_branches == {1: "codex/task-7-attempt-1", 2: "codex/task-7-attempt-2"}
    assert set(done.versions) == {1, 2}  # attempt 3 changed nothing
    assert done.versions[1].branch == "codex/task-7-attempt-1"
    assert "| attempt |" in done.versions[2].body  # the table of all attempts
    assert done.messages[2].startswith("Fix the adder (#7) (attempt 2 of 3)")


def test_the_run_record_keeps_what_continue_and_pick_need() -> None:
    attempts = [attempt(1), attempt(2, check_exit=1)]
    done = publish(attempts)
    record = outcome.run_record(TASK, plan(), attempts[0], done, None)
    assert record.closing == "Fixes #7" and record.branch == "codex/issue-7-fix"
    assert record.commands == ["pytest -q"]
    assert set(record.attempts) == {1, 2}
    same = plan("same_branch", pull_number=9, owned=True)
    single = publish([attempt(1)], same)
    kept = outcome.run_record(TASK, same, attempt(1), single, "Fixes #3")
    assert kept.closing == "Fixes #3" and kept.attempts == {}  # nothing to pick from


def test_the_status_after_a_push_names_the_pr_and_what_it_cost() -> None:
    best = attempt(1)
    text = outcome.published(TASK, plan(), best, "http://gh/pull/8", "body", "12 s · 1200 tokens")
    assert text.startswith("✅ Draft PR ready for review: http://gh/pull/8")
    assert "Fixed it, attempt 1." in text and "More." not in text
    warned = outcome.published(TASK, plan(), attempt(1, stop="time"), "http://gh/pull/8", "", "")
    assert warned.startswith("⚠️") and warned.endswith("Incomplete: time.")
    foreign = plan("same_branch", pull_number=9, owned=False)
    assert outcome.published(TASK, foreign, best, "`feature`", "BODY", "").startswith(
        "✅ Pushed to `feature`.\n\nBODY"
    )


def test_nothing_to_publish_says_why_and_a_refused_change_fails() -> None:
    assert outcome.nothing_published(attempt(1, files=[]), None).startswith("🤷 No changes")
    limit = outcome.nothing_published(attempt(1, files=[], stop="the step limit"), "http://l")
    assert "raise the limit in `.github/codex.yml`" in limit and limit.endswith("http://l")
    with pytest.raises(errors.TaskFailed, match="not published: a file over 1 MB"):
        outcome.nothing_published(attempt(1, problems=["a file over 1 MB"]), None)


def test_a_transient_failure_reads_as_passing_and_a_permanent_one_asks_for_a_fix() -> None:
    down = errors.GitHubUnavailable("GitHub answered 502: Bad Gateway")
    told = down.told(str)
    assert "This usually passes" in outcome.failed(down, told, tries=3)
    assert "tried 3 times" in outcome.failed(down, told, tries=3)
    denied = errors.GitHubRejected("GitHub answered 403: Resource not accessible")
    assert "Fix the cause" in outcome.failed(denied, denied.told(str))
    late = outcome.failed(down, told, pushed=True)
    assert "after publishing" in late and "Nothing was published" not in late
    again = outcome.requeued(told, 30, 1, 3)
    assert again == (
        "⏳ Re-queued: GitHub answered 502: Bad Gateway. The task runs again in 30 s, on any "
        "worker (try 2 of 3)."
    )

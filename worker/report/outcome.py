"""What a finished task says, decided from plain data: no I/O, tested with plain values.

`publication` turns the plan, the attempts and their ranking into every text a publish needs:
each attempt's commit message, branch, PR title, body and labels (`runrecord.Version`), and
which one the PR carries. The status texts (`published`, `nothing_published`, `failed`,
`requeued`, `interrupted`, `lost`) are the task's last words in its status comment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.tasks import Task
from worker import ranking
from worker.attempt import Attempt
from worker.errors import TaskError, TaskFailed
from worker.plan import Plan
from worker.publish import bare_title, titled
from worker.redact import Redactor
from worker.report.markdown import safe_line
from worker.report.prbody import Report, render_pr_body
from worker.report.worklog import WorkLog
from worker.runrecord import RunRecord, Version

INCOMPLETE = "incomplete"
FAILING = "failing validation"
"""Labels on a draft PR that stopped on a limit, or whose validate command failed."""
Cost = Callable[[int, int], float]
"""US dollars for (input tokens, output tokens), at the server's prices."""


@dataclass(frozen=True)
class Publication:
    winner: int
    """The attempt the PR carries (the first in the ranking)."""
    versions: dict[int, Version]
    """Every publishable attempt's version of the PR."""
    messages: dict[int, str]
    """Each publishable attempt's commit message."""
    attempt_branches: dict[int, str]
    """Best-of-N: where each publishable attempt is pushed besides the PR's branch."""

    @property
    def chosen(self) -> Version:
        return self.versions[self.winner]


def publication(
    task: Task,
    plan: Plan,
    attempts: Sequence[Attempt],
    *,
    closing: str | None,
    log_url: str | None,
    duration: float,
    cost: Cost,
    redact: Redactor,
) -> Publication:
    """The texts of publishing `attempts` (ranked here; the first publishable one wins)."""
    candidates = [one.candidate() for one in attempts]
    winner = ranking.order(candidates)[0].number
    publishable = [one for one in attempts if one.publishable and one.change.tree is not None]
    many = len(attempts) > 1
    branches = {
        one.number: f"{plan.attempts_prefix}-attempt-{one.number}" for one in publishable if many
    }
    messages = {
        one.number: commit_message(plan.title, task, one.number if many else None, len(attempts))
        for one in publishable
    }
    versions = {}
    for one in publishable:
        report = Report(
            number=task.number,
            repo=task.repo,
            summary=one.outcome.summary or "The agent stopped before writing a summary.",
            claimed=one.outcome.claimed,
            log=one.worklog,
            changed_files=one.change.files,
            duration=duration,
            stop_reason=one.outcome.stop_reason,
            attempts=ranking.table(candidates, one.number, branches) if branches else "",
            cost=cost(one.worklog.input_tokens, one.worklog.output_tokens),
        )
        labels = {INCOMPLETE: bool(one.outcome.stop_reason), FAILING: report.check_failed}
        versions[one.number] = Version(
            title=titled(plan.title, [name for name, on in labels.items() if on]),
            body=render_pr_body(report, redact, closing, log_url),
            labels=labels,
            branch=branches.get(one.number, plan.push_branch),
        )
    return Publication(winner, versions, messages, branches)


def commit_message(title: str, task: Task, attempt: int | None, attempts: int) -> str:
    of = f" (attempt {attempt} of {attempts})" if attempt is not None else ""
    return f"{bare_title(title)}{of}\n\nFor #{task.number}, started by @{task.sender}."


def fork_closing(task: Task, plan: Plan) -> str:
    """The PR body's last line when the PR's head is in a fork, which the app cannot push to."""
    return (
        f"The head of #{task.number} is in a fork, which this app cannot push to. "
        f"This draft PR is based on `{plan.base_copy}`, a copy of that branch, so its "
        f"diff shows only the proposed changes; the author of #{task.number} can merge "
        f"`{plan.push_branch}` into their branch."
    )


def run_record(
    task: Task, plan: Plan, best: Attempt, done: Publication, closing: str | None
) -> RunRecord:
    """What `/codex continue` and `/codex pick` need later."""
    pickable = len(done.versions) > 1 or plan.mode != "same_branch"
    return RunRecord(
        branch=plan.push_branch,
        stop_reason=best.outcome.stop_reason,
        summary=best.outcome.summary,
        commands=[step.command for step in best.worklog.steps if step.kind == "agent"][-25:],
        closing=closing if closing is not None else f"Fixes #{task.number}",
        attempts=dict(done.versions) if pickable else {},
    )


def took(duration: float, worklog: WorkLog, cost: Cost) -> str:
    used_in, used_out = worklog.input_tokens, worklog.output_tokens
    return (
        f"{duration:.0f} s · {used_in + used_out} tokens ({used_in} in, {used_out} out) · "
        f"≈ ${cost(used_in, used_out):.4f}"
    )


def published(task: Task, plan: Plan, best: Attempt, link: str, body: str, spent: str) -> str:
    """The status after a push: where the change is, its first summary line, what it cost."""
    first = best.outcome.summary.strip().splitlines()[0] if best.outcome.summary else ""
    summary = safe_line(first, task.number, task.repo)
    mark = "⚠️" if best.outcome.stop_reason else "✅"
    if plan.mode == "same_branch" and not plan.owned:
        parts = [f"{mark} Pushed to {link}.", body]
    elif plan.mode == "same_branch":
        parts = [f"{mark} Pushed to {link} and updated this PR.", summary]
    else:
        parts = [f"{mark} Draft PR ready for review: {link}", summary]
    parts += [best.cache_note(), f"<sub>{spent}</sub>"]
    if best.outcome.stop_reason:
        parts.append(f"Incomplete: {best.outcome.stop_reason}.")
    return "\n\n".join(part for part in parts if part)


def nothing_published(best: Attempt, log_url: str | None) -> str:
    """The status when the best attempt has nothing to publish; TaskFailed when it has a
    change that cannot be published."""
    if best.change.problems:
        raise TaskFailed("the change was not published: " + "; ".join(best.change.problems))
    reason = best.outcome.stop_reason
    if reason and best.outcome.model_failed:
        text = (
            f"⏹️ Stopped without a change to publish: {reason}. Comment `/codex fix` to try again."
        )
    elif reason:
        text = (
            f"⏹️ Stopped without a change to publish: {reason}. Narrow the request, or raise "
            "the limit in `.github/codex.yml` `limits` (within the server's), then comment "
            "`/codex fix`."
        )
    else:
        text = "🤷 No changes were made: the agent finished without changing any file."
    return f"{text}\n\nThe work log: {log_url}" if log_url else text


def failed(error: TaskError, told: str, tries: int = 1, *, pushed: bool = False) -> str:
    """The final status of a failure; `told` is `error.told(...)`, the reason made inert;
    `pushed`: the change already reached the pull request."""
    if pushed:
        return (
            f"❌ The task failed after publishing: {told}\n\nThe change is on GitHub; check "
            "the pull request (its title, labels or body may be out of date), then comment "
            "`/codex fix` if it needs another run."
        )
    if error.transient:
        after = (
            f"It was tried {tries} times. This usually passes: comment `/codex fix` to try "
            "again later; if it keeps happening, the worker's log says more."
            if tries > 1
            else "This usually passes: comment `/codex fix` to try again later."
        )
    else:
        after = "Fix the cause, then comment `/codex fix` to try again."
    return f"❌ The task failed: {told}\n\nNothing was published. {after}"


def requeued(told: str, wait: int, try_number: int, max_tries: int) -> str:
    return (
        f"⏳ Re-queued: {told} The task runs again in {wait} s, on any worker "
        f"(try {try_number + 1} of {max_tries})."
    )


def handed_back(try_number: int, max_tries: int) -> str:
    return (
        "⏸️ Re-queued: the worker stopped before the task finished. It resumes on the next "
        f"worker (try {try_number + 1} of {max_tries})."
    )


def interrupted(tries: int) -> str:
    return (
        f"❌ The task was interrupted {tries} times (its worker stopped or died each time), "
        "so it was given up. Comment `/codex fix` to try again; if the workers keep "
        "stopping, their logs say why."
    )


def lost() -> str:
    """A task whose job is gone from the queue (expired, failed outside the task, deleted)."""
    return (
        "❌ This task was lost: its job is no longer queued and no worker runs it (the worker's "
        "log says why), so it will not finish. Comment `/codex fix` to start it again."
    )

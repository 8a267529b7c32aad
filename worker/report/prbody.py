"""The PR body: the evidence a reviewer reads, always under GitHub's size limit.

Validation evidence comes from the record, not from the model's word: a command the model says
it ran is shown with the exit code it actually had, or as "not run". What the model wrote is
untrusted Markdown (`worker/report/markdown.py`), so it cannot hide or fake the sections after it.
Each part has its own budget, so a long summary or log is cut where the Markdown around it
still renders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from worker.redact import Redactor
from worker.report.markdown import fence, inline_code, plain, safe_line, safe_markdown, trim_middle
from worker.report.worklog import Step, WorkLog, render_network, render_step

PR_BODY_LIMIT = 65_536
"""GitHub refuses longer bodies; we stay well under it."""
BODY_BUDGET = 60_000
TOP_BUDGET = 45_000
"""Everything above the work log; in practice the caps below keep it far shorter."""
SUMMARY_LIMIT = 16_000
"""Characters of the model's summary shown; a longer one is cut with a note saying so."""
FILES_LIMIT = 6_000
NOTE_LIMIT = 300
CHECK_OUTPUT = 3_000
FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True)
class Report:
    number: int
    summary: str
    claimed: list[str]
    log: WorkLog
    changed_files: list[str]
    duration: float
    stop_reason: str | None = None
    attempts: str = ""
    """The Markdown table of all attempts, when there were several."""
    cost: float = 0.0
    """US dollars the model's tokens cost, at the server's prices."""
    repo: str | None = None
    """`owner/name` of the task's issue: a closing keyword in the summary may name only it."""

    @property
    def check_failed(self) -> bool:
        check = self.log.check
        return check is not None and (check.exit_code != 0 or check.timed_out)


def render_check(check: Step) -> str:
    """The repository's own validate command, as the worker ran it."""
    if check.timed_out:
        verdict = f"❌ timed out after {check.duration:.0f} s"
    elif check.exit_code == 0:
        verdict = f"✅ passed ({check.duration:.1f} s)"
    else:
        verdict = f"❌ failed with exit {check.exit_code} ({check.duration:.1f} s)"
    head = (
        f"**Repository check** {inline_code(check.command)}, run by the worker after the agent "
        f"finished: {verdict}"
    )
    output = trim_middle(check.output.strip(), CHECK_OUTPUT)
    if not output:
        return head
    return f"{head}\n\n<details><summary>Output</summary>\n\n{fence(output, 'text')}\n\n</details>"


def render_validation(report: Report) -> str:
    parts = [render_check(report.log.check)] if report.log.check else []
    parts.append(render_claims(report))
    return "\n\n".join(parts)


def render_claims(report: Report) -> str:
    if not report.claimed:
        return "The agent named no validation command."
    lines = ["Commands the agent named as validation:"]
    for command in report.claimed:
        step = report.log.last_run_of(command)
        if step is None:
            lines.append(f"- {inline_code(command)}: ⚠️ named by the agent but never run")
        else:
            mark = "✅" if step.exit_code == 0 else "❌"
            lines.append(f"- {inline_code(command)}: {mark} exit {step.exit_code} ({step.name})")
    return "\n".join(lines)


def render_log(steps: list[str], budget: int) -> str:
    """The steps, dropping whole steps from the middle until they fit `budget`."""
    kept = list(steps)
    omitted = 0
    while kept and sum(len(s) + 2 for s in kept) > budget:
        kept.pop(len(kept) // 2)
        omitted += 1
    if omitted:
        kept.insert(len(kept) // 2, f"*[... {omitted} steps omitted here ...]*")
    return "\n\n".join(kept)


def open_fence(text: str) -> str | None:
    """The code fence `text` leaves open, if any."""
    fence = None
    for line in text.splitlines():
        match = FENCE.match(line)
        if match is None:
            continue
        mark = match.group(1)
        if fence is None:
            fence = mark
        elif mark[0] == fence[0] and len(mark) >= len(fence) and line.strip() == mark:
            fence = None
    return fence


def cut(text: str, limit: int, what: str) -> str:
    """`text` cut at a line end to fit `limit`, its open code fence and `<details>` closed, and
    a note saying how much of `what` is not shown: the Markdown after it renders as intended."""
    if len(text) <= limit:
        return text
    kept = text[: max(0, limit - 200)]
    kept = kept.rsplit("\n", 1)[0] if "\n" in kept else kept
    closers = []
    if (fence := open_fence(kept)) is not None:
        closers.append(fence)
    unclosed = len(re.findall(r"<details\b", kept)) - len(re.findall(r"</details>", kept))
    closers += ["</details>"] * max(0, unclosed)
    note = f"*[... {what} cut here: {len(text) - len(kept):,} more characters not shown ...]*"
    return "\n\n".join([kept, *closers, note])


def render_files(names: list[str]) -> str:
    lines: list[str] = []
    size = 0
    for name in names:
        line = f"- {inline_code(name)}"
        size += len(line) + 1
        if size > FILES_LIMIT:
            lines.append(f"- ... and {len(names) - len(lines)} more")
            break
        lines.append(line)
    return "\n".join(lines) or "- (none)"


def redacted(report: Report, redact: Redactor) -> Report:
    """`report` with secrets masked before anything in it is cut, so no cut keeps part of one."""

    def step(one: Step) -> Step:
        # Escapes go first: one splitting a secret would hide it from redaction.
        return replace(one, command=redact(plain(one.command)), output=redact(plain(one.output)))

    log = replace(
        report.log,
        steps=[step(one) for one in report.log.steps],
        check=step(report.log.check) if report.log.check else None,
        notes=[redact(note) for note in report.log.notes],
    )
    return replace(
        report,
        summary=redact(report.summary),
        claimed=[redact(command) for command in report.claimed],
        log=log,
    )


def render_pr_body(
    report: Report, redact: Redactor, closing: str | None = None, log_url: str | None = None
) -> str:
    """The PR body (or final comment): evidence first, the work log folded, then `closing`.

    Each part has its own budget, so the body stays under GitHub's limit without a cut through
    its markup: the summary is cut with a note, the work log loses whole steps from the middle.
    """
    report = redacted(report, redact)
    log = report.log
    head = [
        "## Summary",
        cut(
            safe_markdown(report.summary.strip(), report.number, report.repo),
            SUMMARY_LIMIT,
            "summary",
        ),
        "## Validation",
        render_validation(report),
        "## Changed files",
        render_files(report.changed_files),
        *(["## Attempts", report.attempts] if report.attempts else []),
        *(["## Network", network] if (network := render_network(log)) else []),
        "## Run",
        f"{len(log.steps)} commands in {report.duration:.0f} s; "
        f"{log.input_tokens} input and {log.output_tokens} output tokens (≈ ${report.cost:.4f})."
        + (f" Environment: {log.environment}." if log.environment else "")
        + "".join(f"\n- {inline_code(trim_middle(note, NOTE_LIMIT))}" for note in log.notes[:20]),
    ]
    if report.check_failed:
        check = log.check
        assert check is not None
        head[:0] = [
            f"> [!CAUTION]\n> Failing validation: {inline_code(check.command)} "
            f"{'timed out' if check.timed_out else f'exited {check.exit_code}'}. Review with care."
        ]
    if report.stop_reason:
        head[:0] = [
            f"> [!WARNING]\n> Incomplete: {safe_line(report.stop_reason)}. "
            "Comment `/codex continue` to resume on this branch."
        ]
    # Masked again as a whole for what `redacted` does not cover: files, network, environment.
    top = cut(redact("\n\n".join(head)), TOP_BUDGET, "description")
    tail = f"Fixes #{report.number}" if closing is None else closing
    full = f"The full log, every step's whole output: {log_url}\n\n" if log_url else ""
    opening, ending = f"<details>\n<summary>Work log</summary>\n\n{full}", "\n\n</details>"
    budget = BODY_BUDGET - len(top) - len(opening) - len(ending) - len(tail) - 4
    steps = [render_step(step) for step in log.steps]
    work_log = f"{opening}{render_log(steps, budget)}{ending}"
    return "\n\n".join([top, work_log, tail])

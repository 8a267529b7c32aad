"""The record of a run and its Markdown rendering: the evidence a reviewer reads in the PR.

Validation evidence comes from the record, not from the model's word: a command the model says
it ran is shown with the exit code it actually had, or as "not run".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from worker.redact import Redactor
from worker.sandbox.output import trim_middle

PR_BODY_LIMIT = 65_536
"""GitHub refuses longer bodies; we stay well under it."""
BODY_BUDGET = 60_000
OUTPUT_IN_LOG = 2_000


@dataclass(frozen=True)
class Step:
    step: int
    """The agent's turn; 0 for the repository's setup script."""
    command: str
    exit_code: int
    duration: float
    output: str
    timed_out: bool = False


@dataclass
class WorkLog:
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    environment: str = ""
    """The image and whether the environment came from the cache."""

    def last_run_of(self, command: str) -> Step | None:
        wanted = command.strip()
        return next((s for s in reversed(self.steps) if s.command.strip() == wanted), None)


@dataclass(frozen=True)
class Report:
    number: int
    summary: str
    validation: list[str]
    log: WorkLog
    changed_files: list[str]
    duration: float
    stop_reason: str | None = None


def fence(text: str, info: str = "") -> str:
    """A code fence longer than any run of backticks inside `text`."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text}\n{ticks}"


def inline_code(text: str) -> str:
    text = text.replace("\n", " ")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def render_step(step: Step) -> str:
    status = "timed out" if step.timed_out else f"exit {step.exit_code}"
    name = f"**{step.step}.**" if step.step else "**setup**"
    head = f"{name} {inline_code(step.command)} → {status} ({step.duration:.1f} s)"
    output = trim_middle(step.output.strip(), OUTPUT_IN_LOG)
    return f"{head}\n\n{fence(output, 'text')}" if output else head


def render_validation(report: Report) -> str:
    if not report.validation:
        return "The agent named no validation command."
    lines = []
    for command in report.validation:
        step = report.log.last_run_of(command)
        if step is None:
            lines.append(f"- {inline_code(command)}: ⚠️ named by the agent but never run")
        else:
            mark = "✅" if step.exit_code == 0 else "❌"
            lines.append(
                f"- {inline_code(command)}: {mark} exit {step.exit_code} (step {step.step})"
            )
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


def render_pr_body(report: Report, redact: Redactor, closing: str | None = None) -> str:
    """The PR body (or final comment): evidence first, the work log folded, then `closing`."""
    log = report.log
    files = "\n".join(f"- `{name}`" for name in report.changed_files) or "- (none)"
    head = [
        "## Summary",
        report.summary.strip(),
        "## Validation",
        render_validation(report),
        "## Changed files",
        files,
        "## Run",
        f"{len(log.steps)} commands in {report.duration:.0f} s; "
        f"{log.input_tokens} input and {log.output_tokens} output tokens."
        + (f" Environment: {log.environment}." if log.environment else ""),
    ]
    if report.stop_reason:
        head[:0] = [f"> [!WARNING]\n> Incomplete: {report.stop_reason}"]
    top = "\n\n".join(head)
    tail = f"Fixes #{report.number}" if closing is None else closing
    budget = BODY_BUDGET - len(top) - len(tail) - 200
    steps = [redact(render_step(step)) for step in log.steps]
    work_log = (
        f"<details>\n<summary>Work log</summary>\n\n{render_log(steps, budget)}\n\n</details>"
    )
    body = "\n\n".join([redact(top), work_log, tail])
    return trim_middle(body, BODY_BUDGET)

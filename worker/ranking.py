"""Best-of-N: which attempt wins, and the table that shows all of them. Pure, no I/O.

Order: a publishable change first, then validation passed (over not run, over failed) > fewer
failures > smaller diff > fewer steps; the lower attempt number breaks ties, so the choice is
deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.report.worklog import WorkLog


@dataclass(frozen=True)
class Candidate:
    number: int
    """1-based attempt number."""
    publishable: bool
    """A non-empty diff that passed the host's checks."""
    passed: bool | None
    """The repository's validate command passed; None when there is none."""
    failures: int
    """Named checks that failed or never ran, plus one for stopping on a limit."""
    diff_lines: int
    steps: int
    tokens: int
    note: str = ""
    """Why it was not publishable, or how it stopped."""


def diff_lines(diff: bytes) -> int:
    """Added plus removed lines: those in hunks, so a removed `-- comment` counts too."""
    count = 0
    in_hunk = False
    for line in diff.decode(errors="replace").splitlines():
        if line.startswith("diff --git "):
            in_hunk = False
        elif line.startswith("@@"):
            in_hunk = True
        elif in_hunk and line.startswith(("+", "-")):
            count += 1
    return count


def failures(log: WorkLog, named: list[str], stopped: bool) -> int:
    failed = 0
    for command in named:
        step = log.last_run_of(command)
        failed += step is None or step.exit_code != 0
    return failed + int(stopped)


def order(candidates: list[Candidate]) -> list[Candidate]:
    """Best first."""
    return sorted(
        candidates,
        key=lambda c: (
            not c.publishable,
            {True: 0, None: 1, False: 2}[c.passed],
            c.failures,
            c.diff_lines,
            c.steps,
            c.number,
        ),
    )


def table(candidates: list[Candidate], shown: int, branches: dict[int, str]) -> str:
    """All attempts, `shown` marked as the one this PR carries."""
    rows = [
        "| attempt | validation | failures | diff (lines) | steps | tokens | branch |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in sorted(candidates, key=lambda c: c.number):
        mark = " ⭐ (this PR)" if c.number == shown else ""
        check = {True: "✅ passed", False: "❌ failed", None: "—"}[c.passed]
        branch = f"`{branches[c.number]}`" if c.number in branches else c.note or "not pushed"
        branch = branch.replace("|", "\\|").replace("\n", " ")
        rows.append(
            f"| {c.number}{mark} | {check} | {c.failures} | {c.diff_lines} | {c.steps} | "
            f"{c.tokens} | {branch} |"
        )
    rows.append("")
    rows.append("Comment `/codex pick N` to move this PR to attempt N.")
    return "\n".join(rows)

"""The record of a run: every step with its real exit code, the notes, the egress log; and
the plain-text full log the task page serves. `prbody.py` renders it for the PR."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from worker.report.markdown import fence, inline_code, plain, trim_middle

OUTPUT_IN_LOG = 2_000
COMMAND_IN_LOG = 4_000
"""Characters of one command in the PR body's log (a heredoc can carry a whole file)."""

Kind = Literal["setup", "maintenance", "agent", "check"]
"""Who ran a step: the repository's setup script, its maintenance script on a cached
environment, the agent, or the worker's own run of the `validate` command after the agent."""


@dataclass(frozen=True)
class Step:
    step: int | None
    """The agent's turn (1, 2, ...); None for the steps that are not the agent's (`kind`)."""
    command: str
    exit_code: int
    duration: float
    output: str
    timed_out: bool = False
    kind: Kind = "agent"

    @property
    def name(self) -> str:
        """How the logs name the step: `step 3`, `setup`, `maintenance`, `repository check`."""
        if self.kind == "agent":
            return f"step {self.step}"
        return "repository check" if self.kind == "check" else self.kind


@dataclass
class WorkLog:
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    environment: str = ""
    """The image and whether the environment came from the cache."""
    check: Step | None = None
    """The repository's `validate` command, run by the worker after the agent finished."""
    egress_allowed: int = 0
    egress_denied: dict[str, int] = field(default_factory=dict)
    """Requests the egress proxy refused, e.g. `POST allowed.example/upload`, with how often."""
    network: str = "off"
    egress_log: list[str] = field(default_factory=list)
    """Every request the proxy saw, one line each (the first 5,000), for the full log."""

    def record_egress(self, allowed: bool, request: str, line: str = "") -> None:
        if line and len(self.egress_log) < 5_000:
            self.egress_log.append(line)
        if allowed:
            self.egress_allowed += 1
            return
        request = request if len(request) <= 200 else request[:199] + "…"
        if request in self.egress_denied or len(self.egress_denied) < 100:
            self.egress_denied[request] = self.egress_denied.get(request, 0) + 1

    def last_run_of(self, command: str) -> Step | None:
        wanted = command.strip()
        return next((s for s in reversed(self.steps) if s.command.strip() == wanted), None)


def render_step(step: Step) -> str:
    """One step for the PR body: a one-line command inline, a longer one (a script, a heredoc)
    as a fenced block, line breaks as written."""
    status = "timed out" if step.timed_out else f"exit {step.exit_code}"
    name = f"**{step.step}.**" if step.kind == "agent" else f"**{step.name}**"
    command = trim_middle(plain(step.command).strip("\r\n"), COMMAND_IN_LOG)
    tail = f"→ {status} ({step.duration:.1f} s)"
    if "\n" in command or "\r" in command:
        head = f"{name} {tail}\n\n{fence(command, 'sh')}"
    else:
        head = f"{name} {inline_code(command)} {tail}"
    output = trim_middle(plain(step.output).strip(), OUTPUT_IN_LOG)
    return f"{head}\n\n{fence(output, 'text')}" if output else head


def render_network(log: WorkLog) -> str:
    if log.network == "off":
        return ""
    refused = list(log.egress_denied.items())
    denied = "\n".join(
        f"- {inline_code(entry)}" + (f" ({count} times)" if count > 1 else "")
        for entry, count in refused[:50]
    )
    more = len(refused) - 50
    text = (
        f"Network `{log.network}`: {log.egress_allowed} requests allowed, "
        f"{sum(log.egress_denied.values())} refused by the egress proxy."
    )
    if denied:
        text += f" Refused:\n\n{denied}" + (f"\n- ... and {more} more" if more > 0 else "")
    return text


def render_full(logs: list[WorkLog]) -> str:
    """Every step of every attempt with its whole output (as the model saw it), in plain text:
    what the task page serves when the PR body's log is trimmed."""
    parts: list[str] = []
    for number, log in enumerate(logs, 1):
        if len(logs) > 1:
            parts.append(f"======== Attempt {number} of {len(logs)} ========")
        for step in [*log.steps, *([log.check] if log.check else [])]:
            status = "timed out" if step.timed_out else f"exit {step.exit_code}"
            parts.append(
                f"--- {step.name}: {status} ({step.duration:.1f} s)\n$ {plain(step.command)}"
            )
            if step.output.strip():
                parts.append(plain(step.output).rstrip())
        parts += [f"note: {note}" for note in log.notes]
        if log.network != "off":
            parts.append(render_network(log))
            parts.append("--- egress log\n" + "\n".join(log.egress_log or ["(no requests)"]))
    return "\n\n".join(parts) + "\n"

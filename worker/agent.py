"""The agent loop: model turn → tool calls → observations, until it finishes or hits a limit.

Control flow by exceptions that carry their message (after mini-swe-agent): `Submitted` ends
the loop with the model's summary, `LimitsExceeded` ends it with the reason. A malformed call
is answered with an error the model can act on, never a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from worker import tools
from worker.protocols import Conversation, Sandbox, ToolCall, ToolResult
from worker.worklog import Step, WorkLog

log = logging.getLogger(__name__)

NUDGE = "Use the tools to work on the task, and call `finish` with a summary when it is done."


@dataclass(frozen=True)
class Limits:
    max_steps: int = 40
    """Model turns before the agent stops."""
    command_timeout: int = 300
    """Upper bound, in seconds, for one shell command."""


@dataclass(frozen=True)
class Outcome:
    summary: str
    validation: list[str]
    steps: int
    stop_reason: str | None = None
    """Why the agent stopped before calling `finish`, or None when it finished."""


class Submitted(Exception):
    def __init__(self, call: tools.FinishCall) -> None:
        super().__init__(call.summary)
        self.call = call


class LimitsExceeded(Exception):
    """The reason is the message."""


Progress = Callable[[int], Awaitable[None]]


async def _quiet(step: int) -> None:
    pass


class Agent:
    def __init__(
        self,
        sandbox: Sandbox,
        worklog: WorkLog,
        limits: Limits,
        label: str,
        progress: Progress = _quiet,
    ) -> None:
        self.sandbox = sandbox
        self.worklog = worklog
        self.limits = limits
        self.label = label
        self.progress = progress
        self.step = 0

    async def run(self, conversation: Conversation) -> Outcome:
        results: list[ToolResult] = []
        note: str | None = None
        try:
            while True:
                if self.step >= self.limits.max_steps:
                    raise LimitsExceeded(f"the step limit ({self.limits.max_steps}) was reached")
                self.step += 1
                await self.progress(self.step)
                turn = await conversation.next_turn(results, note)
                self.worklog.input_tokens += turn.input_tokens
                self.worklog.output_tokens += turn.output_tokens
                note = None if turn.calls else NUDGE
                results = [await self.execute(call) for call in turn.calls]
        except Submitted as done:
            return Outcome(done.call.summary, done.call.validation, self.step)
        except LimitsExceeded as stop:
            log.info("task %s: agent stopped: %s", self.label, stop)
            return Outcome("", [], self.step, stop_reason=str(stop))

    async def execute(self, call: ToolCall) -> ToolResult:
        try:
            parsed = tools.parse_call(
                call.name, call.arguments, max_timeout=self.limits.command_timeout
            )
        except tools.BadToolCall as error:
            self.worklog.notes.append(f"step {self.step}: malformed {call.name} call: {error}")
            return ToolResult(call.call_id, f"error: {error}")
        if isinstance(parsed, tools.FinishCall):
            raise Submitted(parsed)
        result = await self.sandbox.run(
            parsed.command, timeout=parsed.timeout, workdir=parsed.workdir
        )
        self.worklog.steps.append(
            Step(
                step=self.step,
                command=parsed.command,
                exit_code=result.exit_code,
                duration=result.duration,
                output=result.output,
                timed_out=result.timed_out,
            )
        )
        log.info("task %s: step %d exit %d", self.label, self.step, result.exit_code)
        status = f"timed out after {parsed.timeout}s" if result.timed_out else "exit code"
        return ToolResult(call.call_id, f"{status}: {result.exit_code}\n{result.output}")

"""The agent loop: model turn → tool calls → observations, until it finishes or hits a limit.

Control flow by exceptions that carry their message (after mini-swe-agent): `Submitted` ends
the loop with the model's summary, `LimitsExceeded` ends it with the reason. A malformed call
is answered with an error the model can act on, never a crash.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from worker.agent import tools
from worker.agent.patch import PatchError
from worker.protocols import Conversation, ModelError, Sandbox, ToolCall, ToolResult
from worker.report.markdown import plain
from worker.report.worklog import Step, WorkLog

log = logging.getLogger(__name__)

NUDGE = "Use the tools to work on the task, and call `finish` with a summary when it is done."


@dataclass(frozen=True)
class Limits:
    """An attempt's limits; `repoconfig.limits_for` makes them from the settings (which hold
    their defaults) and the repository's config."""

    max_steps: int
    """Model turns before the agent stops."""
    command_timeout: int
    """Upper bound, in seconds, for one shell command."""
    seconds: float
    """Wall time of the agent phase."""
    max_tokens: int
    """Input plus output tokens."""
    max_cost: float
    """US dollars, as priced by `price`."""
    price: Callable[[int, int], float] = field(default=lambda i, o: 0.0, compare=False)
    """US dollars for (input tokens, output tokens)."""


@dataclass(frozen=True)
class Outcome:
    summary: str
    claimed: list[str]
    steps: int
    stop_reason: str | None = None
    """Why the agent stopped before calling `finish`, or None when it finished."""
    model_failed: bool = False
    """Stopped because the model API failed (after retries), not because of a limit."""


class Submitted(Exception):
    def __init__(self, call: tools.FinishCall) -> None:
        super().__init__(call.summary)
        self.call = call


class LimitsExceeded(Exception):
    """The reason is the message."""


Progress = Callable[[int], Awaitable[None]]


async def _quiet(step: int) -> None:
    pass


def _unchanged(text: str) -> str:
    return text


class Agent:
    def __init__(
        self,
        sandbox: Sandbox,
        worklog: WorkLog,
        limits: Limits,
        label: str,
        progress: Progress = _quiet,
        *,
        redact: Callable[[str], str] = _unchanged,
    ) -> None:
        """`redact` masks secrets in every tool output before the model or the work log sees
        it: what setup left in a file, or a value a command decodes, is no one's to read."""
        self.sandbox = sandbox
        self.worklog = worklog
        self.limits = limits
        self.label = label
        self.progress = progress
        self.redact = redact
        self.step = 0
        self.deadline = time.monotonic() + limits.seconds

    async def run(self, conversation: Conversation) -> Outcome:
        results: list[ToolResult] = []
        note: str | None = None
        self.deadline = time.monotonic() + self.limits.seconds
        try:
            while True:
                self.check_limits()
                self.step += 1
                await self.progress(self.step)
                try:
                    async with asyncio.timeout_at(self._loop_deadline()):
                        turn = await conversation.next_turn(results, note)
                except TimeoutError:
                    raise LimitsExceeded(self._time_limit()) from None

                self.worklog.input_tokens += turn.input_tokens
                self.worklog.output_tokens += turn.output_tokens
                note = None if turn.calls else NUDGE
                results = [await self.execute(call) for call in turn.calls]
        except Submitted as done:
            return Outcome(done.call.summary, done.call.validation, self.step)
        except LimitsExceeded as stop:
            log.info("task %s: agent stopped: %s", self.label, stop)
            return Outcome("", [], self.step, stop_reason=str(stop))
        except ModelError as error:
            log.warning("task %s: the model failed: %s", self.label, error)
            reason = f"the model failed at step {self.step}: {error}"
            return Outcome("", [], self.step, stop_reason=reason, model_failed=True)

    def check_limits(self) -> None:
        """Raise `LimitsExceeded` when another model turn would go past a limit."""
        limits, log_ = self.limits, self.worklog
        used = log_.input_tokens + log_.output_tokens
        spent = limits.price(log_.input_tokens, log_.output_tokens)
        if self.step >= limits.max_steps:
            raise LimitsExceeded(
                f"the step limit ({limits.max_steps} step{'s' * (limits.max_steps != 1)}) "
                f"was reached at step {self.step}"
            )
        if time.monotonic() >= self.deadline:
            raise LimitsExceeded(self._time_limit())
        if used >= limits.max_tokens:
            raise LimitsExceeded(
                f"the token limit ({limits.max_tokens:,} tokens) was reached at step "
                f"{self.step} ({used:,} used)"
            )
        if spent >= limits.max_cost:
            raise LimitsExceeded(
                f"the cost limit (${limits.max_cost:g}) was reached at step {self.step} "
                f"(${spent:.4f} spent)"
            )

    def _time_limit(self) -> str:
        minutes = self.limits.seconds / 60
        return f"the time limit ({minutes:g} min) was reached at step {self.step}"

    def _loop_deadline(self) -> float:
        return asyncio.get_running_loop().time() + max(0.0, self.deadline - time.monotonic())

    async def execute(self, call: ToolCall) -> ToolResult:
        try:
            parsed = tools.parse_call(
                call.name, call.arguments, max_timeout=self.limits.command_timeout
            )
        except tools.BadToolCall as error:
            reason = self.redact(str(error))
            self.worklog.notes.append(f"step {self.step}: malformed {call.name} call: {reason}")
            return ToolResult(call.call_id, f"error: {reason}")
        if isinstance(parsed, tools.FinishCall):
            raise Submitted(parsed)
        if isinstance(parsed, tools.PatchCall):
            return ToolResult(call.call_id, await self.apply_patch(parsed))
        remaining = int(self.deadline - time.monotonic())
        if remaining < 1:
            raise LimitsExceeded(self._time_limit())
        timeout = min(parsed.timeout, remaining)
        result = await self.sandbox.run(parsed.command, timeout=timeout, workdir=parsed.workdir)
        output = self.redact(plain(result.output))  # colours cost tokens; a secret split by
        # one is whole again once they are gone, so redaction comes after
        self.worklog.steps.append(
            Step(
                step=self.step,
                command=parsed.command,
                exit_code=result.exit_code,
                duration=result.duration,
                output=output,
                timed_out=result.timed_out,
                kind="agent",
            )
        )
        log.info("task %s: step %d exit %d", self.label, self.step, result.exit_code)
        status = f"timed out after {timeout}s" if result.timed_out else "exit code"
        return ToolResult(call.call_id, f"{status}: {result.exit_code}\n{output}")

    async def apply_patch(self, call: tools.PatchCall) -> str:
        """Apply all of the patch or none of it; the answer says which, and why not."""
        started, patch = time.monotonic(), call.patch
        try:
            current = {path: await self._text(path) for path in patch.paths}
            changes = patch.apply(current)
            await self.sandbox.write_files(
                {path: None if text is None else text.encode() for path, text in changes.items()}
            )
            exit_code, answer = 0, f"applied: {patch.summary()}"
        except PatchError as error:  # it quotes the file, which may hold what setup wrote
            exit_code, answer = 1, self.redact(f"error: {error}")
        self.worklog.steps.append(
            Step(self.step, f"apply_patch  # {patch.summary()}", exit_code,
                 time.monotonic() - started, answer if exit_code else self.redact(call.text),
                 kind="agent")
        )  # fmt: skip
        return answer

    async def _text(self, path: str) -> str | None:
        data = await self.sandbox.read_file(path)
        if data is None:
            return None
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise PatchError(f"{path} is not UTF-8 text; change it with shell instead") from None

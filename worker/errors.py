"""Every failure a person can see: what it is, what to tell them, and whether waiting helps.

    TaskError            the task stopped; `explain()` is written for the person who asked
    ├── TaskFailed       it cannot go on as asked (the message says why and what to change)
    │   ├── AttemptFailed    the agent's sandbox cannot run as configured  (worker/attempt.py)
    │   ├── SetupFailed      the setup phase failed or leaked a secret     (worker/setup.py)
    │   ├── ConfigError      `.github/codex.yml` is wrong                  (worker/repoconfig.py)
    │   └── ImageRefused     `image:` not allowed or not on the engine (worker/sandbox/images.py)
    ├── TimeLimit        the task's own deadline (`TASK_TIMEOUT`) passed
    ├── GitHubRejected   GitHub answered 4xx: a permission, a protected branch, a bad request
    ├── EngineFailed     the container engine answered 5xx (its disk, its daemon)
    ├── Unexpected       anything else: a bug, told as it is (redacted, made inert)
    └── Transient        waiting helps: arq runs the task again (`Retry`) within its deadline
        ├── GitHubUnavailable   GitHub answered 5xx or 429, or could not be reached
        └── EngineUnavailable   the container engine did not answer (a dockerd restart)

    Cancelled            not a failure: a person stopped the task (`/codex stop`, a label)

`classify` turns whatever was raised into one of these; `retry_in` decides, as a pure
function, whether a transient one is tried again and when. GitHub's own short hiccups are
retried first inside githubkit (`app/github.py` `RETRY`), the model's inside the openai SDK
(`worker/model/backends.py`); what is left after those reaches this tree.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from githubkit.exception import GitHubException, RateLimitExceeded, RequestError, RequestFailed

from app import github as gh
from worker.sandbox import engine


class TaskError(Exception):
    """The task stopped; `str()` is the reason, written for the person who started it."""

    transient = False
    inert = False
    """True when the text was made inert as the error was made (`classify`); a `TaskFailed`
    raised by a phase may quote a repository's output or config, so it is made inert when
    shown (`told`)."""

    def explain(self) -> str:
        text = str(self).strip() or type(self).__name__
        return text if text.endswith((".", ")", "`")) else f"{text}."

    def told(self, inert: Callable[[str], str]) -> str:
        """`explain()` as the status comment shows it: inert, made so exactly once."""
        return self.explain() if self.inert else inert(self.explain())


class TaskFailed(TaskError):
    """The task cannot go on as asked; the message says why and what to change."""


class TimeLimit(TaskError):
    inert = True  # our words only

    def __init__(self, seconds: int) -> None:
        super().__init__(
            f"it took longer than the {seconds} s task limit. Narrow the request, or raise "
            "`TASK_TIMEOUT`."
        )


class GitHubRejected(TaskError):
    """GitHub refused the request (4xx): waiting does not change its answer."""

    inert = True  # made by `classify`, from text passed through `inert`


class EngineFailed(TaskError):
    """The container engine answered with an error of its own (5xx)."""

    inert = True


class Unexpected(TaskError):
    """Anything no other class describes (a bug, usually), already redacted and made inert."""

    inert = True


class Transient(TaskError):
    """Waiting usually helps; the task runs again, on any worker, within its deadline.
    `not_before`: seconds the other side asked to be left alone (a rate limit's reset)."""

    transient = True
    inert = True

    def __init__(self, message: str = "", *, not_before: float = 0.0) -> None:
        super().__init__(message)
        self.not_before = not_before


class GitHubUnavailable(Transient):
    pass


class EngineUnavailable(Transient):
    pass


class Cancelled(Exception):
    """A person stopped the task; not a failure."""

    def __init__(self, by: str) -> None:
        super().__init__(f"cancelled by @{by}")
        self.by = by


def first(error: BaseException) -> BaseException:
    """The error that speaks for a group: the first attempt that failed speaks for the rest."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def classify(
    error: BaseException,
    *,
    deadline_passed: bool,
    task_timeout: int,
    inert: Callable[[str], str],
) -> TaskError:
    """The `TaskError` for whatever was raised. `deadline_passed`: the task's own deadline
    fired (only then is a timeout the task limit's; a stuck read of its own is not).
    `inert` redacts and neutralizes text nobody wrote for this thread (an exception's
    message may quote a repository's files or a model's words)."""
    error = first(error)
    if deadline_passed:
        return TimeLimit(task_timeout)
    if isinstance(error, TaskError):
        return error
    if engine.unreachable(error):
        return EngineUnavailable(engine.explain(error) or "the container engine is unreachable")
    if (told := engine.explain(error)) is not None:
        return EngineFailed(inert(told))
    if isinstance(error, GitHubException):
        text = inert(gh.describe_error(error))
        if isinstance(error, RateLimitExceeded):  # longer than githubkit waits (app/github.py)
            return GitHubUnavailable(text, not_before=error.retry_after.total_seconds())
        if isinstance(error, RequestFailed):  # an answer (a subclass of RequestError)
            if error.response.status_code >= 500 or error.response.status_code == 429:
                return GitHubUnavailable(text)
            return GitHubRejected(text)
        if isinstance(error, RequestError):  # no answer: refused, reset, timed out
            return GitHubUnavailable(text)
        return GitHubRejected(text)
    if isinstance(error, TimeoutError):
        what = str(error) or "a step of the task"
        return Unexpected(inert(f"{what} timed out, well before the task's own deadline"))
    return Unexpected(inert(str(error) or type(error).__name__))


def retry_in(
    error: TaskError, *, try_number: int, max_tries: int, elapsed: float, deadline: int, delay: int
) -> int | None:
    """Seconds until a transient failure's next try, or None when this try is the last:
    no tries left, or the next one would have less than `delay` seconds (or a tenth of the
    deadline, whichever is more) left before the task's deadline (`elapsed` counts from the
    task's first start; every try works only in what is left of it). The wait doubles with
    each try, and is never shorter than the other side asked (a rate limit waits for its
    reset: trying sooner would only fail again)."""
    if not error.transient or try_number >= max_tries:
        return None
    asked = math.ceil(error.not_before) if isinstance(error, Transient) else 0
    wait = max(delay * 2 ** (try_number - 1), asked)
    return wait if elapsed + wait + max(delay, deadline // 10) < deadline else None

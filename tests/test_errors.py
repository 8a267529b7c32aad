"""The error tree (`worker/errors.py`): what each real failure is called, what the person reads,
and which ones are tried again, and when. Real exceptions: githubkit's from real httpx
responses (an engine nobody answers on is in `test_engine.py`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from githubkit.exception import PrimaryRateLimitExceeded, RequestError, RequestFailed
from githubkit.response import Response

from worker import errors
from worker.repoconfig import ConfigError
from worker.report.markdown import safe_markdown


def inert(text: str) -> str:
    return safe_markdown(text, 7, "octo/calc")


def classify(error: BaseException, deadline_passed: bool = False) -> errors.TaskError:
    return errors.classify(error, deadline_passed=deadline_passed, task_timeout=600, inert=inert)


def github(status: int, message: str) -> RequestFailed:
    request = httpx.Request("POST", "https://api.github.com/repos/octo/calc/pulls")
    raw = httpx.Response(status, json={"message": message}, request=request)
    return RequestFailed(Response(raw, Any))


def test_github_5xx_and_unreachable_are_transient_and_4xx_is_not() -> None:
    bad_gateway = classify(github(502, "Bad Gateway"))
    assert isinstance(bad_gateway, errors.GitHubUnavailable) and bad_gateway.transient
    assert bad_gateway.explain() == "GitHub answered 502: Bad Gateway."
    request = httpx.Request("GET", "https://api.github.com/")
    gone = classify(RequestError(httpx.ConnectError("Connection refused", request=request)))
    assert isinstance(gone, errors.GitHubUnavailable)
    denied = classify(github(403, "Resource not accessible by integration"))
    assert isinstance(denied, errors.GitHubRejected) and not denied.transient
    assert "Response(" not in denied.explain()


def test_only_the_tasks_own_deadline_is_blamed_on_the_task_limit() -> None:
    assert isinstance(classify(TimeoutError(), deadline_passed=True), errors.TimeLimit)
    assert "600 s task limit" in classify(TimeoutError(), deadline_passed=True).explain()
    stuck = classify(TimeoutError("reading the container's output"))
    assert isinstance(stuck, errors.Unexpected)
    assert "task limit" not in stuck.explain()
    assert "reading the container's output timed out" in stuck.explain()


def test_the_first_attempt_speaks_for_a_group_and_our_own_errors_pass_through() -> None:
    config = ConfigError("attempts", "must be at most 5", 3)
    group = ExceptionGroup("attempts", [config, ValueError("second")])
    assert classify(group) is config
    assert "A valid example" in classify(group).explain()


def test_an_unknown_error_is_made_inert() -> None:
    failure = classify(RuntimeError("ping @everyone-team, see #12 and [x](http://evil)"))
    assert isinstance(failure, errors.Unexpected)
    assert failure.explain() == inert("ping @everyone-team, see #12 and [x](http://evil)")
    assert "@everyone-team" not in failure.explain()


def test_a_transient_failure_waits_longer_each_try_and_never_past_the_deadline() -> None:
    down = errors.GitHubUnavailable("GitHub answered 503")

    def retry(try_number: int, elapsed: float = 0.0) -> int | None:
        return errors.retry_in(down, try_number=try_number, max_tries=3, elapsed=elapsed,
                               deadline=600, delay=30)  # fmt: skip

    assert [retry(1), retry(2), retry(3)] == [30, 60, None]
    assert retry(1, elapsed=500) == 30
    assert retry(1, elapsed=541) is None  # the next try would have under 30 s left
    permanent = errors.GitHubRejected("GitHub answered 403")
    assert errors.retry_in(permanent, try_number=1, max_tries=3, elapsed=0, deadline=600,
                           delay=30) is None  # fmt: skip


def test_a_rate_limit_waits_for_its_reset_when_the_deadline_allows_and_else_fails_now() -> None:
    request = httpx.Request("POST", "https://api.github.com/repos/octo/app/pulls")
    raw = httpx.Response(403, json={"message": "API rate limit exceeded"}, request=request)
    limited = classify(PrimaryRateLimitExceeded(Response(raw, Any), timedelta(seconds=299.2)))
    assert isinstance(limited, errors.GitHubUnavailable) and limited.transient
    assert "rate limited; retry after 299 s" in limited.explain()

    def retry(error: errors.TaskError, try_number: int = 1) -> int | None:
        return errors.retry_in(error, try_number=try_number, max_tries=3, elapsed=0,
                               deadline=1800, delay=30)  # fmt: skip

    assert retry(limited) == 300, "not the 30 s of a 503: that try would be limited again"
    assert retry(limited, try_number=2) == 300
    later = errors.GitHubUnavailable("GitHub answered 403", not_before=1750)
    assert retry(later) is None, "a reset after the deadline: say so now, not in 30 min"
    assert retry(errors.GitHubUnavailable("GitHub answered 503")) == 30


def test_cancelled_is_not_a_failure() -> None:
    assert not issubclass(errors.Cancelled, errors.TaskError)
    assert issubclass(asyncio.CancelledError, BaseException)


def test_a_phase_failure_quoting_a_repository_is_made_inert_once_when_shown() -> None:
    from worker.setup import SetupFailed

    # setup's output, shown in a fence, closes that fence and goes on as Markdown
    output = "```\n@acme/everyone ![x](https://evil.example/p.png)\n```"
    failure = classify(SetupFailed(f"setup exited 1:\n```\n{output}\n```"))
    assert "@acme/everyone ![x](" in failure.explain(), "what the phase wrote"
    shown = failure.told(inert)
    assert "@acme/everyone" not in shown and "![x](" not in shown
    made = classify(RuntimeError("@acme/everyone"))
    assert made.told(inert) == made.explain(), "classify's own text is not made inert twice"

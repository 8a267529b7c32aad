"""What a person reads when GitHub says no: GitHub's own message, never a `Response(...)` repr.

githubkit's real exceptions, from real httpx responses and from the simulator over the wire.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from githubkit import GitHub, TokenAuthStrategy
from githubkit.exception import (
    PrimaryRateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
)
from githubkit.response import Response

from app.github import MESSAGE_LIMIT, describe_error
from tests.fakes.github import GitHubSim

URL = "https://api.github.com/repos/octo/app/pulls"


def failed(status: int, **body: Any) -> RequestFailed:
    request = httpx.Request("POST", URL)
    raw = (
        httpx.Response(status, json=body, request=request)
        if body
        else httpx.Response(status, text="<html><body>Bad gateway</body></html>", request=request)
    )
    return RequestFailed(Response(raw, Any))


def test_a_422_names_the_reason_github_gave() -> None:
    error = failed(
        422,
        message="Validation Failed",
        errors=[{"resource": "PullRequest", "code": "custom",
                 "message": "A pull request already exists for octo:codex/issue-1."}],
        documentation_url="https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
    )  # fmt: skip
    assert describe_error(error) == (
        "GitHub answered 422: Validation Failed "
        "(A pull request already exists for octo:codex/issue-1.)"
    )
    assert str(error).startswith("Response(422"), "what a status used to show"


def test_field_errors_plain_messages_and_pages_that_are_not_json() -> None:
    head = {"resource": "PullRequest", "field": "head", "code": "invalid"}
    invalid = failed(422, message="Validation Failed", errors=[head])
    assert (
        describe_error(invalid)
        == "GitHub answered 422: Validation Failed (PullRequest head invalid)"
    )
    assert describe_error(failed(404, message="Not Found")) == "GitHub answered 404: Not Found"
    assert describe_error(failed(502)) == "GitHub answered 502: Bad Gateway"


def test_a_long_or_multiline_message_is_cut_to_one_bounded_line() -> None:
    text = describe_error(failed(403, message="Resource not accessible\n\n" + "x" * 5000))
    assert "\n" not in text and text.startswith("GitHub answered 403: Resource not accessible x")
    assert len(text) <= len("GitHub answered 403: ") + MESSAGE_LIMIT and text.endswith("…")


def test_rate_limits_timeouts_and_unreachable_github() -> None:
    request = httpx.Request("GET", URL)
    raw = httpx.Response(403, json={"message": "API rate limit exceeded"}, request=request)
    limited = PrimaryRateLimitExceeded(Response(raw, Any), timedelta(seconds=60))
    assert describe_error(limited) == (
        "GitHub answered 403: API rate limit exceeded (rate limited; retry after 60 s)"
    )
    timeout = RequestTimeout(httpx.ReadTimeout("timed out", request=request))
    assert describe_error(timeout) == "GitHub did not answer in time (GET /repos/octo/app/pulls)"
    refused = RequestError(httpx.ConnectError("[Errno 111] Connection refused", request=request))
    assert describe_error(refused) == "GitHub could not be reached: [Errno 111] Connection refused"


def test_the_second_pull_request_for_a_head_as_github_sends_it(github: GitHubSim) -> None:
    repo = "octo-org/errors-render"
    if repo not in github.repos:
        github.create_repo(repo, {"README.md": "hi\n"})
        github.commit(repo, "codex/issue-1", {"README.md": "changed\n"})
    client = GitHub(TokenAuthStrategy(github.issue_token(repo)), base_url=github.url)

    async def open_twice() -> BaseException:
        owner, name = repo.split("/")
        await client.rest.pulls.async_create(
            owner, name, title="One", head="codex/issue-1", base="main"
        )
        with pytest.raises(RequestFailed) as raised:
            await client.rest.pulls.async_create(
                owner, name, title="Two", head="codex/issue-1", base="main"
            )
        return raised.value

    error = asyncio.run(open_twice())
    assert describe_error(error) == (
        "GitHub answered 422: Validation Failed "
        "(A pull request already exists for octo-org:codex/issue-1.)"
    )

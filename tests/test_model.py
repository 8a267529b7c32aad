"""Both model backends against the scripted server, over HTTP, through the real openai SDK.

The retries are the SDK's; these tests hold it to what users are promised: a busy or failing
server is retried with backoff, `Retry-After` is honored, a refused key is not retried, and what
fails for good is a `ModelError` that says why. Retries are kept to one or two here: the SDK's
backoff starts at half a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from app.settings import Settings
from tests.fakes.openai import Call, ScriptedOpenAI, finish, shell
from tests.harness import free_port, model_settings
from worker.agent.tools import TOOLS
from worker.model.backends import build_model, openai_client
from worker.protocols import Conversation, ModelError, ToolCall, ToolResult, Turn

APIS = ["responses", "chat"]
INSTRUCTIONS = "You are a careful engineer."
T = TypeVar("T")


@pytest.fixture
def fake() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI() as server:
        yield server


def play(
    settings: Settings,
    prompt: str,
    steps: Callable[[Conversation], Awaitable[T]],
    **start: str,
) -> T:
    """Open a conversation as the worker does and take `steps` in it."""

    async def main() -> T:
        async with openai_client(settings) as client:
            return await steps(build_model(settings, client).start(INSTRUCTIONS, prompt, **start))

    return asyncio.run(main())


def first_turn(settings: Settings, prompt: str, **start: str) -> Turn:
    return play(settings, prompt, lambda conversation: conversation.next_turn([]), **start)


def failure(settings: Settings, prompt: str) -> ModelError:
    with pytest.raises(ModelError) as caught:
        first_turn(settings, prompt)
    return caught.value


async def three_turns(conversation: Conversation) -> list[Turn]:
    """Two calls (one with arguments that are not JSON), a text answer, then `finish`."""
    first = await conversation.next_turn([])
    outputs = [ToolResult(call.call_id, f"output of {call.arguments}") for call in first.calls]
    second = await conversation.next_turn(outputs)
    third = await conversation.next_turn([], "Call a tool.")
    return [first, second, third]


SCRIPT: list[list[Call] | str] = [
    [shell("ls"), Call("shell", "not json{")],
    "Done, I think.",
    [finish("ok")],
]


def test_both_apis_give_the_same_turns(fake: ScriptedOpenAI) -> None:
    fake.script("same turns", SCRIPT)
    played = {api: play(model_settings(fake, api), "same turns", three_turns) for api in APIS}

    for turns in played.values():
        assert [turn.calls for turn in turns] == [
            [
                ToolCall("call_t0_0", "shell", '{"command": "ls"}'),
                ToolCall("call_t0_1", "shell", "not json{"),
            ],
            [],
            [ToolCall("call_t2_0", "finish", '{"summary": "ok", "validation": []}')],
        ]
        assert [turn.text for turn in turns] == ["", "Done, I think.", ""]
        assert all(turn.input_tokens > 0 and turn.output_tokens > 0 for turn in turns)
    assert [fake.requests[k]["model"] for k in range(6)] == ["scripted-model"] * 6


def sent_calls(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(call id, arguments) of the model's calls a request carries, in either API's form."""
    if "input" in body:
        return [
            (i["call_id"], i["arguments"])
            for i in body["input"]
            if i.get("type") == "function_call"
        ]
    return [
        (c["id"], c["function"]["arguments"])
        for m in body["messages"]
        for c in m.get("tool_calls", [])
    ]


def sent_messages(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(who, text) of a request's messages and tool outputs, in either API's form."""
    if "input" in body:
        return [
            (f"tool {i['call_id']}", i["output"])
            if "output" in i
            else (i["role"], text(i["content"]))
            for i in body["input"]
            if "output" in i or "role" in i
        ]
    return [
        (f"tool {m['tool_call_id']}" if m["role"] == "tool" else m["role"], m["content"])
        for m in body["messages"]
        if m["content"]
    ]


def text(content: str | list[dict[str, Any]]) -> str:
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


@pytest.mark.parametrize("api", APIS)
def test_tool_outputs_go_back_under_their_call_ids(fake: ScriptedOpenAI, api: str) -> None:
    fake.script("outputs back", SCRIPT)
    play(model_settings(fake, api), "outputs back", three_turns)

    second, third = fake.requests[1], fake.requests[2]
    calls = [("call_t0_0", '{"command": "ls"}'), ("call_t0_1", "not json{")]
    assert sent_calls(second) == sent_calls(third) == calls
    assert [m for m in sent_messages(third) if m[0] != "system"] == [
        ("user", "outputs back"),
        ("tool call_t0_0", 'output of {"command": "ls"}'),
        ("tool call_t0_1", "output of not json{"),
        ("assistant", "Done, I think."),
        ("user", "Call a tool."),
    ]


def effort(body: dict[str, Any]) -> str | None:
    return (
        body.get("reasoning", {}).get("effort") if "input" in body else body.get("reasoning_effort")
    )


@pytest.mark.parametrize("api", APIS)
def test_model_and_effort_are_the_servers_unless_the_repo_says(
    fake: ScriptedOpenAI, api: str
) -> None:
    fake.script("effort", ["ok"])
    first_turn(model_settings(fake, api), "effort")
    first_turn(model_settings(fake, api, reasoning_effort="low"), "effort")
    first_turn(
        model_settings(fake, api, reasoning_effort="low"), "effort", model="o9", effort="high"
    )

    sent = [(body["model"], effort(body)) for body in fake.requests]
    assert sent == [("scripted-model", None), ("scripted-model", "low"), ("o9", "high")]
    assert "reasoning" not in fake.requests[0] and "reasoning_effort" not in fake.requests[0]


def test_chat_completions_get_every_tool_in_their_form(fake: ScriptedOpenAI) -> None:
    fake.script("tools", ["ok"])
    first_turn(model_settings(fake, "chat"), "tools")

    sent = {tool["function"]["name"]: tool for tool in fake.requests[0]["tools"]}
    assert sent.keys() == {tool["name"] for tool in TOOLS}
    for tool in TOOLS:
        assert sent[tool["name"]]["type"] == tool["type"]
        assert sent[tool["name"]]["function"]["parameters"] == tool["parameters"]


def test_a_server_error_is_retried_until_an_answer(fake: ScriptedOpenAI) -> None:
    fake.script("busy", ["ok"])
    fake.fail(503, times=2)

    turn = first_turn(model_settings(fake, model_retries=2), "busy")

    assert turn.text == "ok"
    assert len(fake.requests) == 3


def test_a_rate_limit_waits_as_long_as_retry_after_says(fake: ScriptedOpenAI) -> None:
    fake.script("limited", ["ok"])
    fake.fail(429, retry_after=1)  # the SDK's own first backoff is at most 0.5 s

    started = time.monotonic()
    turn = first_turn(model_settings(fake, "chat", model_retries=1), "limited")

    assert turn.text == "ok"
    assert time.monotonic() - started >= 1.0
    assert len(fake.requests) == 2


@pytest.mark.parametrize("api", APIS)
def test_retries_that_run_out_fail_with_the_status(fake: ScriptedOpenAI, api: str) -> None:
    fake.script("down", ["ok"])
    fake.fail(503, times=2)

    error = failure(model_settings(fake, api, model_retries=1), "down")

    assert str(error) == (
        "the model API answered 503 Service Unavailable after 2 tries; try again later. "
        "It said: scripted failure 503"
    )
    assert (error.status, error.tries) == (503, 2)
    assert len(fake.requests) == 2


def test_a_refused_key_fails_at_once(fake: ScriptedOpenAI) -> None:
    fake.script("key", ["ok"])

    error = failure(model_settings(fake, openai_api_key="sk-revoked-key", model_retries=3), "key")

    assert str(error) == (
        "the model API refused the key (401 Unauthorized); check OPENAI_API_KEY. "
        "It said: Incorrect API key provided."
    )
    assert (error.status, error.tries) == (401, 1)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "the model API rejected the request (400 Bad Request)."),
        (404, "the model API does not know this model or path (404 Not Found); check CODEX_MODEL"),
    ],
)
def test_a_rejected_request_is_not_retried(fake: ScriptedOpenAI, status: int, message: str) -> None:
    fake.script("rejected", ["ok"])
    fake.fail(status)

    error = failure(model_settings(fake, "chat", model_retries=3), "rejected")

    assert str(error).startswith(message)
    assert len(fake.requests) == 1


def test_a_server_too_slow_is_retried_then_fails(fake: ScriptedOpenAI) -> None:
    fake.script("slow", ["ok"])
    fake.delay(3, times=2)

    error = failure(model_settings(fake, model_retries=1, model_timeout=0.25), "slow")

    assert str(error).startswith("the model API did not answer within 0.25 s after 2 tries;")
    assert (error.status, error.tries) == (None, 2)
    assert len(fake.requests) == 2


def test_a_server_that_is_not_there_fails_with_its_address(fake: ScriptedOpenAI) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"

    error = failure(model_settings(fake, openai_base_url=url), "anyone")

    assert str(error).startswith(f"could not reach the model API at {url}/ after 1 try (")
    assert str(error).endswith("); check OPENAI_BASE_URL and the network")


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    ("body", "content_type", "said"),
    [
        ("<html><h1>Welcome to nginx!</h1></html>", "text/html", "<html><h1>Welcome"),
        ("Bad gateway{", "application/json", "Bad gateway{"),
        ('{"detail": "Not Found"}', "application/json", '{"detail":"Not Found"}'),
    ],
)
def test_a_reply_that_is_no_model_reply_fails_clearly(
    fake: ScriptedOpenAI, api: str, body: str, content_type: str, said: str
) -> None:
    fake.script("garbled", ["ok"])
    fake.garble(body, content_type=content_type)

    error = failure(model_settings(fake, api), "garbled")

    assert f"the model API at {fake.url}/ sent a reply that is not " in str(error)
    assert f"(it began: '{said}" in str(error)
    assert str(error).endswith("; check OPENAI_BASE_URL and MODEL_API")

"""The model, through the openai SDK: the Responses API or Chat Completions, chosen by settings.

`MODEL_API=responses` is OpenAI's Responses API, the only one serving GPT-5.x Codex models.
Conversations are stateless on the server (`store=False`): the whole input goes with every
request, reasoning included as encrypted content, so no transcript is kept at the provider.
`MODEL_API=chat` is Chat Completions, which OpenAI-compatible servers (Azure OpenAI, vLLM,
Ollama, LiteLLM) speak.

Retries are the SDK's own (`MODEL_RETRIES`, `MODEL_TIMEOUT`): it retries 408, 409, 429, 5xx,
timeouts and lost connections with exponential backoff and honors `Retry-After`; what fails
after that is a `worker.model.errors.ModelError`. Whatever the model says comes back as a
`Turn`: text without calls, or calls whose arguments are not JSON, are the agent's to answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from openai import AsyncOpenAI, omit
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from app.settings import Settings
from worker.agent.tools import TOOLS
from worker.model.errors import model_errors, unreadable
from worker.protocols import Model, ToolCall, ToolResult, Turn


def openai_client(settings: Settings) -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        timeout=settings.model_timeout,
        max_retries=settings.model_retries,
    )


_REPLY: dict[str, Any] = {
    "id": "resp_warm", "object": "response", "created_at": 0, "model": "warm-up",
    "status": "completed", "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
    "output": [
        {"type": "reasoning", "id": "rs_0", "summary": [], "encrypted_content": ""},
        {"type": "function_call", "id": "fc_0", "call_id": "call_0", "name": "shell",
         "arguments": "{}", "status": "completed"},
        {"type": "message", "id": "msg_0", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "", "annotations": []}]},
    ],
    "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0,
              "input_tokens_details": {"cached_tokens": 0},
              "output_tokens_details": {"reasoning_tokens": 0}},
}  # fmt: skip
_CHAT_REPLY: dict[str, Any] = {
    "id": "chat_warm", "object": "chat.completion", "created": 0, "model": "warm-up",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "call_0", "type": "function",
                        "function": {"name": "shell", "arguments": "{}"}}]}}],
    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
}  # fmt: skip
"""Replies of each API with each kind of output item, for `warm` to read as a turn's are."""


def warm(client: AsyncOpenAI) -> None:
    """What a first turn would do on its way (see `app.warmup`): import what
    `client.responses` and `client.chat.completions` import on first access, and build the
    SDK's readers of a reply (its models build their schemas on first use)."""
    _ = client.responses, client.chat.completions
    reply = Response.construct(**_REPLY)
    for item in reply.output:
        item.model_dump(mode="json", exclude_none=True)
    ChatCompletion.construct(**_CHAT_REPLY)


def build_model(settings: Settings, client: AsyncOpenAI) -> Model:
    """The backend `MODEL_API` names, with the server's model and reasoning effort."""
    if settings.model_api == "chat":
        return OpenAIModel(
            ChatConversation, client, settings.codex_model, settings.reasoning_effort
        )
    return OpenAIModel(
        ResponsesConversation, client, settings.codex_model, settings.reasoning_effort
    )


class OpenAIModel:
    """Starts conversations of one API (`ResponsesConversation` or `ChatConversation`) with the
    server's model and effort, unless the repository names its own."""

    def __init__(
        self,
        api: type[ResponsesConversation | ChatConversation],
        client: AsyncOpenAI,
        model: str,
        effort: str | None = None,
    ) -> None:
        self.api = api
        self.client = client
        self.model = model
        self.effort = effort

    def start(
        self, instructions: str, prompt: str, *, model: str | None = None, effort: str | None = None
    ) -> ResponsesConversation | ChatConversation:
        return self.api(
            self.client, model or self.model, effort or self.effort, instructions, prompt
        )


class ResponsesConversation:
    def __init__(
        self, client: AsyncOpenAI, model: str, effort: str | None, instructions: str, prompt: str
    ) -> None:
        self.client = client
        self.model = model
        self.effort = effort
        self.instructions = instructions
        self.items: list[Any] = [{"role": "user", "content": prompt}]

    async def next_turn(self, results: Sequence[ToolResult], note: str | None = None) -> Turn:
        for result in results:
            self.items.append(
                {"type": "function_call_output", "call_id": result.call_id, "output": result.output}
            )
        if note:
            self.items.append({"role": "user", "content": note})
        with model_errors(self.client):
            response = await self.client.responses.create(
                model=self.model,
                instructions=self.instructions,
                input=self.items,
                tools=TOOLS,  # type: ignore[arg-type]
                store=False,
                include=["reasoning.encrypted_content"],
                reasoning={"effort": cast(Any, self.effort)} if self.effort else omit,
            )
        try:
            return self.take(response)
        except (AttributeError, TypeError) as error:  # the SDK does not validate replies
            raise unreadable(self.client, response, "a Responses API reply") from error

    def take(self, response: Response) -> Turn:
        """The turn in `response`, whose output joins the conversation."""
        calls = []
        for k, item in enumerate(response.output):
            self.items.append(item.model_dump(mode="json", exclude_none=True))
            if item.type == "function_call":
                calls.append(tool_call(item.call_id, item, f"call_{len(self.items)}_{k}"))
        usage = response.usage
        return Turn(
            text=response.output_text,
            calls=calls,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
        )


def chat_tools(tools: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Responses-style tool schemas (`{"type": "function", "name": ...}`) in Chat Completions'
    form, which nests all but the type (`{"type": "function", "function": {"name": ...}}`)."""
    return [
        {"type": tool["type"], tool["type"]: {k: v for k, v in tool.items() if k != "type"}}
        for tool in tools
    ]


class ChatConversation:
    def __init__(
        self, client: AsyncOpenAI, model: str, effort: str | None, instructions: str, prompt: str
    ) -> None:
        self.client = client
        self.model = model
        self.effort = effort
        self.tools = chat_tools(TOOLS)
        self.messages: list[Any] = [
            {"role": "system", "content": instructions},
            {"role": "user", "content": prompt},
        ]

    async def next_turn(self, results: Sequence[ToolResult], note: str | None = None) -> Turn:
        for result in results:
            self.messages.append(
                {"role": "tool", "tool_call_id": result.call_id, "content": result.output}
            )
        if note:
            self.messages.append({"role": "user", "content": note})
        with model_errors(self.client):
            completion = await self.client.chat.completions.create(
                model=self.model,
                messages=self.messages,
                tools=cast(Any, self.tools),
                reasoning_effort=cast(Any, self.effort) if self.effort else omit,
            )
        try:
            return self.take(completion)
        except (AttributeError, TypeError) as error:  # the SDK does not validate replies
            raise unreadable(self.client, completion, "a Chat Completions reply") from error

    def take(self, completion: ChatCompletion) -> Turn:
        """The turn in `completion` (its first choice), which joins the conversation."""
        usage = completion.usage
        tokens = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
        if completion.choices == []:  # some servers answer so, e.g. when a filter stepped in
            return Turn("", [], *tokens)
        message = completion.choices[0].message
        text = message.content if isinstance(message.content, str) else ""
        calls = [
            tool_call(call.id, call.function, f"call_{len(self.messages)}_{k}")
            for k, call in enumerate(message.tool_calls or [])
            if call.type != "custom"  # custom tools are not ours
        ]
        self.messages.append(assistant_message(text, calls))
        return Turn(text, calls, *tokens)


def assistant_message(text: str, calls: list[ToolCall]) -> dict[str, Any]:
    """The model's turn as it goes back in the next request (tool calls with the ids we gave
    them, and no `tool_calls` key at all when there are none: servers reject an empty list)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = [
            {
                "id": c.call_id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in calls
        ]
    return message


def tool_call(call_id: object, function: object, fallback_id: str) -> ToolCall:
    """A call as the model sent it. The SDK does not validate replies, so a field may be
    missing, and some servers send the arguments as an object: the agent answers whatever the
    model sent, it only must not crash here."""
    name = getattr(function, "name", None)
    arguments = getattr(function, "arguments", None)
    if not isinstance(arguments, str):
        arguments = "" if arguments is None else json.dumps(arguments)
    return ToolCall(
        call_id if isinstance(call_id, str) and call_id else fallback_id,
        name if isinstance(name, str) else "",
        arguments,
    )

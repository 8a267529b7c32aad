"""The model, through the openai SDK's Responses API.

Conversations are stateless on the server (`store=False`): the whole input goes with every
request, reasoning included as encrypted content, so no transcript is kept at the provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openai import AsyncOpenAI

from worker.protocols import ToolCall, ToolResult, Turn
from worker.tools import TOOLS


class ResponsesConversation:
    def __init__(self, client: AsyncOpenAI, model: str, instructions: str, prompt: str) -> None:
        self.client = client
        self.model = model
        self.instructions = instructions
        self.items: list[Any] = [{"role": "user", "content": prompt}]

    async def next_turn(self, results: Sequence[ToolResult], note: str | None = None) -> Turn:
        for result in results:
            self.items.append(
                {"type": "function_call_output", "call_id": result.call_id, "output": result.output}
            )
        if note:
            self.items.append({"role": "user", "content": note})
        response = await self.client.responses.create(
            model=self.model,
            instructions=self.instructions,
            input=self.items,
            tools=TOOLS,  # type: ignore[arg-type]
            store=False,
            include=["reasoning.encrypted_content"],
        )
        calls = []
        for item in response.output:
            self.items.append(item.model_dump(mode="json", exclude_none=True))
            if item.type == "function_call":
                calls.append(ToolCall(item.call_id, item.name, item.arguments))
        usage = response.usage
        return Turn(
            text=response.output_text,
            calls=calls,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
        )


class ResponsesModel:
    def __init__(self, client: AsyncOpenAI, model: str) -> None:
        self.client = client
        self.model = model

    def start(self, instructions: str, prompt: str) -> ResponsesConversation:
        return ResponsesConversation(self.client, self.model, instructions, prompt)

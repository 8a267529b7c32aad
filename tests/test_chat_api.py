"""Chat Completions end to end: a deployment with `MODEL_API=chat` (as for Azure OpenAI, vLLM,
Ollama or LiteLLM) turns a labelled issue into a draft PR, the model speaking that API only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.github import GitHubSim
from tests.fakes.openai import ScriptedOpenAI, finish, shell
from tests.harness import System, another_system
from tests.repos import CALC, CHECK, FIX, RUN, calc_repo


@pytest.fixture(scope="module")
def chat_system(
    docker_ready: None,
    github: GitHubSim,
    openai_fake: ScriptedOpenAI,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[System]:
    with another_system(
        github, openai_fake, tmp_path_factory.mktemp("chat"), MODEL_API="chat"
    ) as system:
        yield system


def test_chat_completions_tool_calls_fix_an_issue_into_a_draft_pr(chat_system: System) -> None:
    system = chat_system
    repo = calc_repo(system, f"validate: {CHECK}\n")
    title = f"Chat fix {RUN}"
    number = system.github.create_issue(repo, title, "add() subtracts", user="alice")
    system.openai.script(
        title,
        [
            [shell(CHECK)],
            [shell(FIX), shell(CHECK)],
            [finish("Fixed `add` over Chat Completions.", [CHECK])],
        ],
    )

    assert system.label(repo, number) == 202

    pull = system.published(repo, number)
    assert pull["draft"] is True and pull["title"] == title and pull["labels"] == []
    assert system.github.git(repo, "show", f"{pull['head']}:calc.py") == CALC.replace("-", "+")
    body = pull["body"]
    assert "Fixed `add` over Chat Completions." in body and "✅ passed" in body
    assert "<summary>Work log</summary>" in body
    assert f"**1.** `{CHECK}` → exit 1" in body and f"**2.** `{FIX}` → exit 0" in body

    # Each request is in Chat Completions' wire format (what the SDK posts to
    # /chat/completions), never the Responses API's (`input`, `instructions`).
    requests = list(system.openai.conversation(title))
    assert len(requests) == 3
    assert all("messages" in r and "input" not in r and "instructions" not in r for r in requests)
    assert {tool["function"]["name"] for tool in requests[0]["tools"]} == {
        "shell",
        "apply_patch",
        "finish",
    }
    messages = requests[-1]["messages"]
    roles = ["system", "user", "assistant", "tool", "assistant", "tool", "tool"]
    assert [m["role"] for m in messages] == roles
    failing, fixed, passing = (m for m in messages if m["role"] == "tool")
    assert failing["tool_call_id"] == "call_t0_0" and failing["content"].startswith("exit code: 1")
    assert "FAILED (failures=1)" in failing["content"]
    assert fixed["tool_call_id"] == "call_t1_0" and fixed["content"].startswith("exit code: 0")
    assert passing["tool_call_id"] == "call_t1_1" and "OK" in passing["content"]

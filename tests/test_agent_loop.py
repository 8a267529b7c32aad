"""The agent loop in-process, as mini-swe-agent tests its own: the real `Agent` against the
scripted OpenAI server through the real openai SDK (worker/model/backends.py pointed at its
URL), with a local `Sandbox` that runs the commands in a temporary directory. No Docker: what is
under test is the loop (turns, tool calls, limits, failures), not the container.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai import Call, ScriptedOpenAI, Turn, finish, shell
from tests.harness import model_settings
from tests.local_sandbox import LocalSandbox
from worker.agent.loop import NUDGE, Agent, Outcome
from worker.model.backends import build_model, openai_client
from worker.repoconfig import LimitsConfig, limits_for
from worker.report.worklog import WorkLog

CALC = "def add(a, b):\n    return a - b\n"
FIX = """\
*** Begin Patch
*** Update File: calc.py
@@
-    return a - b
+    return a + b
*** End Patch"""
TASK = "Fix add() in calc.py"


@pytest.fixture
def fake() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI() as server:
        yield server


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / "calc.py").write_text(CALC)
    return tmp_path


def run(
    fake: ScriptedOpenAI,
    root: Path,
    turns: list[Turn],
    limits: LimitsConfig | None = None,
    api: str = "responses",
) -> tuple[Outcome, WorkLog]:
    """Script `turns` for the task, run the agent on `root` to its end under the server's
    default limits tightened by the repository's `limits`, and what it left."""
    fake.script(TASK, turns)
    worklog = WorkLog()

    async def main() -> Outcome:
        config = model_settings(fake, api)
        async with openai_client(config) as client:
            conversation = build_model(config, client).start("Be careful.", TASK)
            tightened = limits_for(config, limits or LimitsConfig())
            agent = Agent(LocalSandbox(root), worklog, tightened, "octo/loop#1")
            return await agent.run(conversation)

    return asyncio.run(main()), worklog


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_a_run_edits_the_checkout_and_finishes_with_the_models_summary(
    fake: ScriptedOpenAI, checkout: Path, api: str
) -> None:
    outcome, worklog = run(
        fake,
        checkout,
        [
            [shell("cat calc.py")],
            [Call("apply_patch", {"patch": FIX}), shell("echo 'add() adds.' > NOTES.md")],
            [finish("Fixed add().", ["python3 -c 'from calc import add; assert add(2, 3) == 5'"])],
        ],
        api=api,
    )

    assert outcome == Outcome(
        "Fixed add().", ["python3 -c 'from calc import add; assert add(2, 3) == 5'"], steps=3
    )
    assert (checkout / "calc.py").read_text() == CALC.replace("-", "+")
    assert (checkout / "NOTES.md").read_text() == "add() adds.\n"
    assert [(s.step, s.command.split()[0], s.exit_code) for s in worklog.steps] == [
        (1, "cat", 0), (2, "apply_patch", 0), (2, "echo", 0),
    ]  # fmt: skip
    assert worklog.steps[0].output == CALC
    assert worklog.input_tokens > 0 and worklog.output_tokens > 0
    assert len(list(fake.conversation(TASK))) == 3, "one request per turn, none after finish"


def test_the_step_limit_stops_the_run_with_its_reason(fake: ScriptedOpenAI, checkout: Path) -> None:
    outcome, worklog = run(fake, checkout, [[shell("ls")]] * 10, LimitsConfig(steps=3))

    assert outcome.stop_reason == "the step limit (3 steps) was reached at step 3"
    assert (outcome.summary, outcome.steps, outcome.model_failed) == ("", 3, False)
    assert len(list(fake.conversation(TASK))) == 3, "no model turn past the limit"
    assert [s.step for s in worklog.steps] == [1, 2, 3]


def test_a_command_past_its_timeout_is_reported_to_the_model_and_the_run_goes_on(
    fake: ScriptedOpenAI, checkout: Path
) -> None:
    outcome, worklog = run(
        fake,
        checkout,
        [[shell("sleep 30", timeout_seconds=1)], [finish("Gave up waiting.")]],
    )

    assert outcome.summary == "Gave up waiting." and outcome.stop_reason is None
    assert worklog.steps[0].timed_out
    assert fake.tool_outputs(TASK) == ["timed out after 1s: 124\n"]


def test_malformed_calls_and_plain_text_are_answered_and_the_run_goes_on(
    fake: ScriptedOpenAI, checkout: Path
) -> None:
    outcome, worklog = run(
        fake,
        checkout,
        [
            [Call("shell", "{not json"), Call("rm_rf", {}), Call("shell", {"command": 7})],
            "I think I am done.",
            [finish("Done.")],
        ],
    )

    assert outcome.summary == "Done." and outcome.steps == 3 and outcome.stop_reason is None
    _, second, third = list(fake.conversation(TASK))
    answers = [i["output"] for i in second["input"] if i.get("type") == "function_call_output"]
    assert answers[0].startswith("error: arguments are not valid JSON")
    assert answers[1].startswith("error: unknown tool 'rm_rf'; the tools are")
    assert answers[2] == "error: shell needs a non-empty string 'command'"
    assert any(NUDGE in str(item) for item in third["input"]), "text alone is nudged to tools"
    assert len(worklog.notes) == 3 and all("malformed" in note for note in worklog.notes)
    assert worklog.steps == [], "nothing ran"
    assert (checkout / "calc.py").read_text() == CALC


def test_a_model_answering_garbage_is_reported_not_crashed(
    fake: ScriptedOpenAI, checkout: Path
) -> None:
    fake.garble("<html><body>502 Bad Gateway</body></html>", times=5)

    outcome, worklog = run(fake, checkout, [[shell("ls")], [finish("Never reached.")]])

    assert outcome.model_failed and outcome.steps == 1 and outcome.summary == ""
    assert outcome.stop_reason is not None
    assert outcome.stop_reason.startswith("the model failed at step 1: the model API at ")
    assert "sent a reply that is not " in outcome.stop_reason
    assert worklog.steps == []

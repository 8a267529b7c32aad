"""What the model is sent: a secret that setup left in a file reaches it in no form.

The agent loop runs in-process against the scripted OpenAI server through the real openai
SDK; the sandbox is a small local double (commands run with `sh -c` in a temporary
directory), since the seam under test is the agent's, not the container's.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai import Call, ScriptedOpenAI, finish, shell
from tests.harness import model_settings
from tests.local_sandbox import LocalSandbox
from worker.agent.loop import Agent
from worker.model.backends import build_model, openai_client
from worker.redact import Redactor, encoded_forms
from worker.repoconfig import LimitsConfig, limits_for
from worker.report.worklog import WorkLog

TOKEN = "npm_b64Q2mK9vT4bL8sW1yZ6cN3dF5hJ0pAx7Rq"
NPMRC = f"//registry.example/:_authToken={TOKEN}\n"
STALE = f"""\
*** Begin Patch
*** Update File: .npmrc
@@
-//registry.example/:_authToken={TOKEN}-old
+//mirror.example/:_authToken={TOKEN}
*** End Patch"""
"""A patch that does not apply and quotes the value: the error repeats it to the model."""


@pytest.fixture
def fake() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI() as server:
        yield server


def run_agent(fake: ScriptedOpenAI, root: Path, redact: Redactor) -> WorkLog:
    worklog = WorkLog()

    async def main() -> None:
        config = model_settings(fake)
        limits = limits_for(model_settings(fake, max_steps=10), LimitsConfig())
        async with openai_client(config) as client:
            conversation = build_model(config, client).start("Be careful.", "Leaky task")
            agent = Agent(LocalSandbox(root), worklog, limits, "t", redact=redact)
            await agent.run(conversation)

    asyncio.run(main())
    return worklog


def test_no_form_of_a_live_secret_reaches_the_model_or_the_log(
    fake: ScriptedOpenAI, tmp_path: Path
) -> None:
    (tmp_path / ".npmrc").write_text(NPMRC)
    fake.script(
        "Leaky task",
        [
            [shell("cat .npmrc"), shell("base64 .npmrc"), shell("rev .npmrc")],
            [
                shell("xxd -p .npmrc | tr -d '\\n'"),
                shell("printf 'user:%s' \"$(cut -d= -f2 .npmrc)\" | base64"),
            ],
            [Call("apply_patch", {"patch": STALE}), Call("shell", {"command": 7})],
            [finish("Done.")],
        ],
    )

    worklog = run_agent(fake, tmp_path, Redactor([TOKEN]))

    outputs = fake.tool_outputs("Leaky task")
    assert len(outputs) == 7
    logged = [step.output for step in worklog.steps] + worklog.notes
    for text in outputs[:6] + logged:
        assert not any(form in text for form in encoded_forms(TOKEN)), text
    assert all("[REDACTED]" in out for out in outputs[:6]), outputs
    assert outputs[0] == "exit code: 0\n//registry.example/:_authToken=[REDACTED]\n"
    assert outputs[5].startswith("error: .npmrc: hunk 1 did not match")
    assert base64.b64encode(TOKEN.encode()).decode()[:20] not in " ".join(outputs)


def test_without_a_redactor_outputs_are_unchanged(fake: ScriptedOpenAI, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("plain words\n")
    fake.script("Leaky task", [[shell("cat notes.txt")], [finish("Done.")]])
    worklog = WorkLog()

    async def main() -> None:
        config = model_settings(fake)
        async with openai_client(config) as client:
            conversation = build_model(config, client).start("Be careful.", "Leaky task")
            limits = limits_for(config, LimitsConfig())
            await Agent(LocalSandbox(tmp_path), worklog, limits, "t").run(conversation)

    asyncio.run(main())
    assert worklog.steps[0].output == "plain words\n"

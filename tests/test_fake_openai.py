"""The scripted model's scripts belong to the test that registers them.

The session's server (`openai_fake`, behind the app and the worker) is shared by every test; a
script one test registers must never answer another test's conversation, even one that opens
with the same text, and is gone when its test ends. The first two tests script the same prompt
with different answers: before scripts were scoped, the second got the first one's answer
(and saw the first one's request).
"""

from __future__ import annotations

import openai
import pytest

from tests.fakes.openai import ScriptedOpenAI

PROMPT = "Two tests script this same prompt"


def ask(fake: ScriptedOpenAI, prompt: str = PROMPT) -> str:
    """The model's first answer to `prompt`, through the openai SDK as the worker asks."""
    with openai.OpenAI(api_key=fake.api_key, base_url=fake.url, max_retries=0) as client:
        return client.responses.create(model="scripted-model", input=prompt).output_text


def test_a_script_answers_the_test_that_registered_it(openai_fake: ScriptedOpenAI) -> None:
    openai_fake.script(PROMPT, ["the first test's answer"])
    assert ask(openai_fake) == "the first test's answer"
    assert len(list(openai_fake.conversation(PROMPT))) == 1


def test_a_later_test_scripting_the_same_prompt_gets_its_own_answer(
    openai_fake: ScriptedOpenAI,
) -> None:
    openai_fake.script(PROMPT, ["the second test's answer"])
    assert ask(openai_fake) == "the second test's answer"
    assert len(list(openai_fake.conversation(PROMPT))) == 1, "the first test's request is its own"


def test_a_test_that_scripts_nothing_is_answered_from_no_other_tests_script(
    openai_fake: ScriptedOpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError, match="no script matches"):
        ask(openai_fake)


def test_an_owned_script_lives_as_long_as_its_owner_and_an_unowned_one_for_good() -> None:
    with ScriptedOpenAI() as fake:
        fake.script("shared", ["for everyone"])
        with fake.owned_by("test a"):
            fake.script("mine", ["a's"])
            fake.script("shared", ["a's, not everyone's"])
            assert (ask(fake, "mine"), ask(fake, "shared")) == ("a's", "for everyone")
        with fake.owned_by("test b"):
            with pytest.raises(openai.BadRequestError, match="no script matches"):
                ask(fake, "mine")
            assert ask(fake, "shared") == "for everyone"
        assert [s.owner for s in fake.scripts] == [None]

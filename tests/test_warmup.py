"""Start-up warm-up (`app/warmup.py`): a fresh process that ran it loads nothing more when it
makes the app's and the worker's GitHub calls and parses the simulator's answers, or asks the
scripted model for a turn. Without it, the same calls load dozens of modules (what a fresh
worker's first tasks paid, all at once)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from app.warmup import GITHUB_CALLS
from tests.fakes.github import GitHubSim
from tests.fakes.openai import ScriptedOpenAI, finish

ROOT = Path(__file__).resolve().parent.parent
OPENING = "Warm-up test: what does a warmed worker load?"
CALLS = """
import asyncio, json, sys
from githubkit import GitHub, TokenAuthStrategy
from openai import AsyncOpenAI
from app.warmup import warm
from worker.model.backends import OpenAIModel, ResponsesConversation, warm as warm_model

url, token, repo, number, model_url, key, opening, warmed = sys.argv[1:]
owner, name, number = *repo.split("/"), int(number)
model = AsyncOpenAI(api_key=key, base_url=model_url, max_retries=0)
if warmed == "1":
    print(warm(lambda: warm_model(model), "the model API"), file=sys.stderr)
prefixes = ("githubkit_schemas.", "openai.", "httpx")
before = {m for m in sys.modules if m.startswith(prefixes)}

async def main():
    github = GitHub(TokenAuthStrategy(token), base_url=url)
    (await github.rest.repos.async_get(owner, name)).parsed_data
    (await github.rest.repos.async_get_collaborator_permission_level(owner, name, "alice")
     ).parsed_data
    (await github.rest.issues.async_get(owner, name, number)).parsed_data
    comment = (await github.rest.issues.async_create_comment(owner, name, number, body="hi")
               ).parsed_data
    (await github.rest.issues.async_update_comment(owner, name, comment.id, body="hi!")
     ).parsed_data
    (await github.rest.issues.async_list_comments(owner, name, number)).parsed_data
    (await github.rest.issues.async_add_labels(owner, name, number, labels=["codex"])
     ).parsed_data
    (await github.rest.reactions.async_create_for_issue(owner, name, number, content="eyes")
     ).parsed_data
    (await github.rest.pulls.async_list(owner, name, state="open")).parsed_data
    pull = (await github.rest.pulls.async_create(owner, name, title="Warm", head="warm",
                                                 base="main", draft=True)).parsed_data
    (await github.rest.pulls.async_get(owner, name, pull.number)).parsed_data
    (await github.rest.pulls.async_update(owner, name, pull.number, body="warmer")).parsed_data
    (await github.rest.pulls.async_list_review_comments(owner, name, pull.number)).parsed_data
    (await github.rest.issues.async_remove_label(owner, name, number, "codex")).parsed_data
    conversation = OpenAIModel(ResponsesConversation, model, "gpt-test").start("Be brief.", opening)
    turn = await conversation.next_turn([])
    assert turn.calls and turn.calls[0].name == "finish", turn

asyncio.run(main())
print(json.dumps(sorted({m for m in sys.modules if m.startswith(prefixes)} - before)))
"""


def _rest_calls(tree: ast.AST) -> set[tuple[str, str]]:
    """`(namespace, method)` of every `<x>.rest.<namespace>.async_<method>` in `tree`, called
    or passed on (as to `paginate`)."""
    return {
        (node.value.attr, node.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("async_")
        and isinstance(node.value, ast.Attribute)
        and isinstance(node.value.value, ast.Attribute)
        and node.value.value.attr == "rest"
    }


def test_every_github_call_the_app_and_the_worker_make_is_warmed() -> None:
    made = set().union(*(
        _rest_calls(ast.parse(path.read_text()))
        for folder in ("app", "worker")
        for path in (ROOT / folder).rglob("*.py")
    ))  # fmt: skip
    listed = {(space, method) for space, methods in GITHUB_CALLS.items() for method in methods}
    assert len(made) > 10, made
    assert made <= listed, f"add to app.warmup.GITHUB_CALLS: {sorted(made - listed)}"
    assert listed <= made, f"no longer called, drop from GITHUB_CALLS: {sorted(listed - made)}"
    rest = "github.rest.pulls.async_list(\n    owner)\npaginate(github.rest.issues.async_get)"
    assert _rest_calls(ast.parse(rest)) == {("pulls", "async_list"), ("issues", "async_get")}


def _loaded_by_calls(github: GitHubSim, openai_fake: ScriptedOpenAI, *, warmed: bool) -> list[str]:
    repo = f"warm/{'warm' if warmed else 'cold'}"
    github.create_repo(repo, {"README.md": "# warm\n"})
    github.set_permission(repo, "alice", "write")
    number = github.create_issue(repo, "Warm", "Is the worker warm?")
    github.commit(repo, "warm", {"NOTES.md": "warm\n"}, "A branch to open a pull request from")
    openai_fake.script(OPENING, [[finish("Nothing to change.")]])
    token = github.issue_token(repo)
    argv = [github.url, token, repo, str(number), openai_fake.url, openai_fake.api_key, OPENING]
    argv.append("1" if warmed else "0")
    done = subprocess.run(
        [sys.executable, "-c", CALLS, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    if warmed:
        assert "warmed up" in done.stderr and "GitHub models and the model API" in done.stderr
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_a_warmed_process_loads_nothing_more_for_its_github_calls_and_model_turns(
    github: GitHubSim, openai_fake: ScriptedOpenAI
) -> None:
    cold = _loaded_by_calls(github, openai_fake, warmed=False)
    assert any(m.startswith("githubkit_schemas.") for m in cold), cold
    assert any(m.startswith("openai.resources.responses") for m in cold), cold

    warm = _loaded_by_calls(github, openai_fake, warmed=True)
    models = [m for m in warm if m.startswith(("githubkit_schemas.", "openai."))]
    assert models == [], f"loaded after the warm-up: {models}"

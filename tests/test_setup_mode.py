"""Setup mode against the GitHub simulator, with a real app process on uvicorn.

The person's browser is played by httpx: it reads the setup page's form, posts the manifest to
the simulator's "new App" page and follows GitHub's redirect back. Afterwards the same process
must run as the receiver with what setup saved: a labeled issue gets its 👀, which takes the
App's id and key, and a delivery signed with any other secret is refused.
"""

from __future__ import annotations

import contextlib
import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml

from tests.fakes.github import GitHubSim
from tests.fakes.openai import ScriptedOpenAI
from tests.harness import (
    ROOT,
    Form,
    Service,
    service_env,
    start_app,
    start_redis,
    wait_for,
)

EXISTING_ENV = "# my settings\nTRIGGER_LABEL=codex\nOPENAI_API_KEY=sk-kept-as-it-was\n"


@dataclass
class SetupApp:
    url: str
    service: Service
    env_file: Path
    key_path: Path

    def form(self) -> Form:
        response = httpx.get(f"{self.url}/")
        assert response.status_code == 200, response.text
        form = Form()
        form.feed(response.text)
        return form

    def untouched(self) -> bool:
        return self.env_file.read_text() == EXISTING_ENV and not self.key_path.exists()


@contextlib.contextmanager
def app_in_setup_mode(
    github: GitHubSim, openai_fake: ScriptedOpenAI, tmp_path: Path, *unset: str
) -> Iterator[SetupApp]:
    redis_server, redis_url = start_redis(tmp_path)  # no worker takes what lands here
    env = service_env(redis_url, github, openai_fake, GITHUB_URL=github.url)
    for name in ("APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET", *unset):
        del env[name]
    env_file, key_path = tmp_path / "service.env", tmp_path / "var" / "key.pem"
    env_file.write_text(EXISTING_ENV)
    env |= {"ENV_FILE": str(env_file), "PRIVATE_KEY_PATH": str(key_path)}
    service, url = start_app(env, tmp_path / "app.log")
    try:
        yield SetupApp(url, service, env_file, key_path)
    finally:
        service.stop()
        redis_server.terminate()
        redis_server.wait(10)


@pytest.fixture
def setup_app(github: GitHubSim, openai_fake: ScriptedOpenAI, tmp_path: Path) -> Iterator[SetupApp]:
    with app_in_setup_mode(github, openai_fake, tmp_path) as running:
        yield running


def create_app(github: GitHubSim, form: Form) -> httpx.Response:
    """What the person's browser does on GitHub's page: post the manifest, be sent back."""
    response = httpx.post(form.action, data={"manifest": form.fields["manifest"]})
    assert response.status_code == 302, response.text
    return response


def test_the_setup_page_posts_app_yml_with_this_deployments_urls(
    setup_app: SetupApp, github: GitHubSim
) -> None:
    form = setup_app.form()
    action = urlsplit(form.action)
    assert form.method == "post"
    assert f"{action.scheme}://{action.netloc}{action.path}" == f"{github.url}/settings/apps/new"
    state = parse_qs(action.query)["state"]
    assert len(state) == 1 and len(state[0]) >= 32
    assert setup_app.form().action != form.action  # every page view has its own state
    manifest = json.loads(form.fields["manifest"])
    app_yml = yaml.safe_load((ROOT / "app.yml").read_text())
    assert manifest["hook_attributes"]["url"] == f"{setup_app.url}/webhook"
    assert manifest["redirect_url"] == f"{setup_app.url}/setup/callback"
    assert manifest["default_permissions"] == app_yml["default_permissions"]
    assert "workflows" not in manifest["default_permissions"]
    assert manifest["default_events"] == app_yml["default_events"]
    assert manifest["name"] == app_yml["name"]
    # Until then the receiver refuses deliveries rather than pretending to handle them.
    assert httpx.post(f"{setup_app.url}/webhook", content=b"{}").status_code == 503


def test_registering_the_app_saves_it_and_the_same_process_then_serves_webhooks(
    setup_app: SetupApp, github: GitHubSim
) -> None:
    redirect = create_app(github, setup_app.form())
    back = httpx.get(redirect.headers["location"])

    assert back.status_code == 303, back.text
    assert back.headers["location"] == f"{github.url}/apps/codex-app/installations/new"
    assert stat.S_IMODE(setup_app.key_path.stat().st_mode) == 0o600
    assert setup_app.key_path.read_text() == github.private_key_pem
    assert stat.S_IMODE(setup_app.env_file.stat().st_mode) == 0o600
    saved = setup_app.env_file.read_text()
    assert saved.startswith(EXISTING_ENV)  # the person's own lines are kept as they were
    values = dict(line.split("=", 1) for line in saved.splitlines() if "=" in line)
    assert values["APP_ID"] == str(github.app_id)
    assert values["PRIVATE_KEY_PATH"] == str(setup_app.key_path)
    assert values["GITHUB_CLIENT_ID"].startswith("Iv1.")
    assert len(values["GITHUB_CLIENT_SECRET"]) == 40
    secret = values["WEBHOOK_SECRET"]
    assert len(secret) == 40

    repo = "octo-setup/first-repo"
    github.create_repo(repo, {"README.md": "# hello\n"})
    github.set_permission(repo, "alice", "write")
    number = github.create_issue(repo, "Say hello", "In the README.", user="alice")
    payload = github.webhook_payload(
        "issues", "labeled", repo, sender="alice", number=number, label="codex"
    )
    webhook = f"{setup_app.url}/webhook"
    assert github.deliver(webhook, "not-the-saved-secret", "issues", payload).status_code == 401
    assert github.deliver(webhook, secret, "issues", payload).status_code == 202
    wait_for(
        lambda: any(r.content == "eyes" for r in github.reactions(repo)),
        20,
        f"the 👀 made with the saved App key\n{setup_app.service.tail()}",
    )
    # Nothing of setup mode answers any more.
    assert httpx.get(f"{setup_app.url}/").status_code == 404
    assert httpx.get(redirect.headers["location"]).status_code == 404


def test_a_state_this_app_did_not_hand_out_writes_nothing(
    setup_app: SetupApp, github: GitHubSim
) -> None:
    redirect = urlsplit(create_app(github, setup_app.form()).headers["location"])
    code = parse_qs(redirect.query)["code"][0]
    forged = f"{setup_app.url}/setup/callback?code={code}&state=made-up-by-someone-else"

    response = httpx.get(forged)

    assert response.status_code == 400
    assert "not from this setup page" in response.text and "nothing was saved" in response.text
    assert setup_app.untouched()


def test_a_failed_exchange_writes_nothing_and_its_state_cannot_be_replayed(
    setup_app: SetupApp, github: GitHubSim
) -> None:
    github.fail("POST", r"/app-manifests/[^/]+/conversions", 502)
    back = create_app(github, setup_app.form()).headers["location"]

    failed = httpx.get(back)

    assert failed.status_code == 502
    assert "GitHub answered 502" in failed.text and "Nothing was saved" in failed.text
    assert setup_app.untouched()
    replayed = httpx.get(back)  # GitHub is fine now, but this state was spent
    assert replayed.status_code == 400
    assert "already used" in replayed.text
    assert setup_app.untouched()


def test_an_unknown_code_is_explained_and_writes_nothing(
    setup_app: SetupApp, github: GitHubSim
) -> None:
    state = parse_qs(urlsplit(setup_app.form().action).query)["state"][0]

    response = httpx.get(f"{setup_app.url}/setup/callback?code=0123abcd&state={state}")

    assert response.status_code == 502
    assert "GitHub answered 404: the code is unknown, spent or older than an hour" in (
        response.text
    )
    assert setup_app.untouched()
    state = parse_qs(urlsplit(setup_app.form().action).query)["state"][0]
    path_like = httpx.get(f"{setup_app.url}/setup/callback?code=../../app&state={state}")
    assert path_like.status_code == 400 and "no valid code" in path_like.text
    assert setup_app.untouched()


def test_an_app_saved_without_the_rest_of_its_settings_says_what_is_missing(
    github: GitHubSim, openai_fake: ScriptedOpenAI, tmp_path: Path
) -> None:
    with app_in_setup_mode(github, openai_fake, tmp_path, "OPENAI_API_KEY") as setup_app:
        setup_app.env_file.write_text("# no OPENAI_API_KEY here\n")
        redirect = create_app(github, setup_app.form())

        back = httpx.get(redirect.headers["location"])

        assert back.status_code == 500
        assert "OPENAI_API_KEY is not set" in back.text
        assert f"{github.url}/apps/codex-app/installations/new" in back.text
        assert f"APP_ID={github.app_id}" in setup_app.env_file.read_text()  # kept for a restart
        assert setup_app.key_path.exists()


def test_a_configured_app_has_no_setup_pages(
    github: GitHubSim, openai_fake: ScriptedOpenAI, redis_url: str, tmp_path: Path
) -> None:
    service, url = start_app(service_env(redis_url, github, openai_fake), tmp_path / "app.log")
    try:
        assert httpx.get(f"{url}/").status_code == 404
        assert httpx.get(f"{url}/setup/callback?code=abc&state=def").status_code == 404
        assert httpx.get(f"{url}/healthz").text == "ok"
    finally:
        service.stop()

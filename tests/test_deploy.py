"""The deployment files: `.env.example`, the compose file, and the compose project brought up.

The last test builds the images (deploy/docker/build-images.sh; cached layers make a rebuild
take seconds) and starts the project as `codex-test` on free ports: Redis refuses clients
without its password, the firewall one-shot finishes, the worker waits for the App, and the
app, with no App yet, serves the setup page. Run it under the shared lock (it uses Docker).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.settings import Settings
from tests.fakes.github import GitHubSim
from tests.fakes.openai import ScriptedOpenAI, finish, shell
from tests.harness import ROOT, Form, free_port, require, wait_for

COMPOSE = ROOT / "deploy" / "compose.yaml"
PROJECT = "codex-test"


def compose(env: dict[str, str], *args: str, check: bool = True) -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        require("docker-compose")
    assert binary is not None
    done = subprocess.run(
        [binary, "-p", PROJECT, "-f", str(COMPOSE), *args],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if check:
        assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_env_example_lists_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))

    assert {name.upper() for name in Settings.model_fields} <= listed
    for line in text.splitlines():  # docker-compose 1.29 reads a trailing comment as the value
        assert line.startswith("#") or "#" not in line, line


def test_only_the_worker_and_the_firewall_one_shot_get_the_docker_socket(tmp_path: Path) -> None:
    env_file = tmp_path / "codex.env"
    env_file.write_text("REDIS_PASSWORD=p\n")

    config: dict[str, Any] = yaml.safe_load(compose({"CODEX_ENV_FILE": str(env_file)}, "config"))

    services = config["services"]
    with_socket = {
        name
        for name, service in services.items()
        if any("docker.sock" in str(volume) for volume in service.get("volumes", []))
    }
    assert with_socket == {"worker", "sandbox-network"}
    assert services["worker"]["network_mode"] == "host"
    assert services["sandbox-network"]["network_mode"] == "host"
    assert "NET_ADMIN" in services["sandbox-network"]["cap_add"]
    assert "user" not in services["app"]  # the image's own non-root user
    redis_command = " ".join(services["redis"]["command"])
    assert "--requirepass" in redis_command and "--appendonly yes" in redis_command


@pytest.fixture(scope="module")
def images(docker_ready: None) -> None:
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        require("root and debootstrap (for the local base image)")
    built = subprocess.run(
        ["bash", str(ROOT / "deploy/docker/build-images.sh")],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr


@pytest.fixture
def project(tmp_path: Path, images: None) -> Iterator[dict[str, str]]:
    port = free_port()
    env_file = tmp_path / "codex.env"
    env_file.write_text(
        f"REDIS_PASSWORD=compose-test-{port}\nPUBLIC_URL=http://127.0.0.1:{port}\n"
        "GITHUB_URL=https://ghe.example.test\nGITHUB_ORG=octo-org\nOPENAI_API_KEY=sk-unused\n"
    )
    env = {
        "CODEX_ENV_FILE": str(env_file),
        "APP_BIND": "127.0.0.1",
        "APP_PORT": str(port),
        "REDIS_HOST_PORT": str(free_port()),
    }
    try:
        yield env
    finally:
        compose(env, "down", "--volumes", "--remove-orphans", check=False)


def test_the_compose_project_comes_up_and_serves_setup_mode(project: dict[str, str]) -> None:
    compose(project, "up", "-d", "--no-build")
    url = f"http://127.0.0.1:{project['APP_PORT']}"

    def setup_page() -> str | None:
        try:
            response = httpx.get(f"{url}/", timeout=2)
        except httpx.HTTPError:
            return None
        return response.text if response.status_code == 200 else None

    page = wait_for(setup_page, 90, f"the setup page\n{compose(project, 'logs', check=False)}")
    assert (
        'action="https://ghe.example.test/organizations/octo-org/settings/apps/new?state=' in page
    )
    assert f"{url}/setup/callback" in page.replace("&#34;", '"')
    port = project["REDIS_HOST_PORT"]
    refused = subprocess.run(["redis-cli", "-p", port, "ping"], capture_output=True, text=True)
    assert "NOAUTH" in refused.stdout + refused.stderr
    wait_for(
        lambda: "waiting for the GitHub App" in compose(project, "logs", "worker", check=False),
        60,
        "the worker to wait for the App",
    )
    one_shot = compose(project, "ps", "sandbox-network")
    assert "Exit 0" in one_shot, compose(project, "logs", "sandbox-network", check=False)
    assert "appendonly" in compose(project, "exec", "-T", "redis", "ls", "/data")


@pytest.fixture
def bridged_github(tmp_path: Path) -> Iterator[tuple[GitHubSim, str]]:
    """A simulator the app's container reaches: on every address, named by docker0's gateway
    (a host address, reachable from the worker on the host network as well)."""
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "dev", "docker0"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    gateway = shown.split(" inet ", 1)[1].split("/", 1)[0]
    with GitHubSim(tmp_path / "github", host="0.0.0.0") as sim:  # noqa: S104
        yield sim, sim.url.replace("127.0.0.1", gateway)


@pytest.fixture
def full_project(
    tmp_path: Path,
    images: None,
    bridged_github: tuple[GitHubSim, str],
    openai_fake: ScriptedOpenAI,
) -> Iterator[dict[str, str]]:
    github, api_url = bridged_github
    port = free_port()
    env_file = tmp_path / "codex.env"
    env_file.write_text(
        "\n".join(
            [
                f"REDIS_PASSWORD=compose-test-{port}",
                f"PUBLIC_URL=http://127.0.0.1:{port}",
                f"GITHUB_URL={github.url}",
                f"GITHUB_API_URL={api_url}",
                f"OPENAI_API_KEY={openai_fake.api_key}",
                f"OPENAI_BASE_URL={openai_fake.url}",
                "CODEX_MODEL=scripted-model",
                "EGRESS_PORT=3132",  # no other test run on this host uses it
                "",
            ]
        )
    )
    env = {
        "CODEX_ENV_FILE": str(env_file),
        "APP_BIND": "127.0.0.1",
        "APP_PORT": str(port),
        "REDIS_HOST_PORT": str(free_port()),
    }
    try:
        yield env
    finally:
        compose(env, "down", "--volumes", "--remove-orphans", check=False)


def test_the_compose_project_registers_the_app_and_runs_a_task_to_a_draft_pr(
    full_project: dict[str, str],
    bridged_github: tuple[GitHubSim, str],
    openai_fake: ScriptedOpenAI,
) -> None:
    env, github = full_project, bridged_github[0]
    compose(env, "up", "-d", "--no-build")
    url = f"http://127.0.0.1:{env['APP_PORT']}"

    def logs() -> str:
        return compose(env, "logs", "--tail=40", check=False)

    def setup_page() -> httpx.Response | None:
        try:
            response = httpx.get(f"{url}/", timeout=2)
        except httpx.HTTPError:
            return None
        return response if response.status_code == 200 else None

    form = Form()
    form.feed(wait_for(setup_page, 90, f"the setup page\n{logs()}").text)
    back = httpx.post(form.action, data={"manifest": form.fields["manifest"]})
    installed = httpx.get(back.headers["location"])
    assert installed.status_code == 303, installed.text
    saved = compose(env, "exec", "-T", "app", "cat", "/var/lib/codex/app.env")
    secret = re.findall(r"^WEBHOOK_SECRET=(\S+)$", saved, re.MULTILINE)[0]
    wait_for(
        lambda: "Starting worker" in compose(env, "logs", "worker", check=False),
        60,
        f"the worker to start once the App exists\n{logs()}",
    )

    repo = "octo-compose/greeter"
    github.create_repo(repo, {"README.md": "# greeter\n"})
    github.set_permission(repo, "alice", "write")
    number = github.create_issue(repo, "Greet in compose", "Add hello.txt.", user="alice")
    openai_fake.script(
        "Greet in compose",
        [
            [shell("echo hello > hello.txt")],
            [finish("Added hello.txt.", [])],
        ],
    )
    payload = github.webhook_payload(
        "issues", "labeled", repo, sender="alice", number=number, label="codex"
    )
    assert github.deliver(f"{url}/webhook", secret, "issues", payload).status_code == 202

    pulls = wait_for(lambda: github.pulls(repo), 120, f"a draft PR\n{logs()}")
    assert pulls[0]["draft"] is True
    assert "hello" in github.git(repo, "show", f"{pulls[0]['head']}:hello.txt")

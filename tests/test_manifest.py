"""The manifest flow's decisions, as plain data: the manifest, GitHub's page, `.env`, states."""

from __future__ import annotations

import json
import subprocess
from html.parser import HTMLParser
from io import StringIO
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values

from app.manifest import build_manifest, env_value, merge_env, new_app_url
from app.setup_mode import States, pages

ROOT = Path(__file__).resolve().parent.parent


def test_the_manifest_is_app_yml_with_this_deployments_urls() -> None:
    app_yml = yaml.safe_load((ROOT / "app.yml").read_text())

    built = build_manifest(app_yml, "https://codex.example.com/")

    assert built["hook_attributes"] == {"url": "https://codex.example.com/webhook", "active": True}
    assert built["redirect_url"] == "https://codex.example.com/setup/callback"
    assert built["url"] == "https://codex.example.com"
    assert built["default_permissions"] == app_yml["default_permissions"]
    assert built["public"] is False


def test_a_webhook_proxy_receives_the_deliveries_for_local_development() -> None:
    built = build_manifest({"name": "x"}, "http://localhost:3000", "https://smee.io/abc")

    assert built["hook_attributes"]["url"] == "https://smee.io/abc"
    assert built["redirect_url"] == "http://localhost:3000/setup/callback"


@pytest.mark.parametrize(
    ("github_url", "org", "expected"),
    [
        ("https://github.com", None, "https://github.com/settings/apps/new?state=s1"),
        ("https://github.com", "octo-org", "https://github.com/organizations/octo-org/settings/apps/new?state=s1"),
        ("https://ghe.example.com/", "a b", "https://ghe.example.com/organizations/a%20b/settings/apps/new?state=s1"),
    ],
)  # fmt: skip
def test_the_new_app_page_is_the_persons_or_the_organizations(
    github_url: str, org: str | None, expected: str
) -> None:
    assert new_app_url(github_url, org, "s1") == expected


def test_env_merge_keeps_other_lines_and_replaces_the_apps() -> None:
    existing = "# mine\nexport APP_ID=1\nPRIVATE_KEY='old'\nREDIS_URL=redis://r:6379/0\n\n"

    merged = merge_env(existing, {"APP_ID": "77", "WEBHOOK_SECRET": "s e"}, ("PRIVATE_KEY",))

    assert merged.splitlines()[:2] == ["# mine", "REDIS_URL=redis://r:6379/0"]
    assert dotenv_values(stream=StringIO(merged)) == {
        "REDIS_URL": "redis://r:6379/0",
        "APP_ID": "77",
        "WEBHOOK_SECRET": "s e",
    }


def test_env_values_read_back_the_same_in_bash_and_dotenv(tmp_path: Path) -> None:
    value = 'a b$HOME`x`;&|\\"!*'
    env = tmp_path / ".env"
    env.write_text(merge_env("", {"V": value}))

    sourced = subprocess.run(
        ["bash", "-c", 'set -a; source "$1"; printf %s "$V"', "_", str(env)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    assert sourced == value
    assert dotenv_values(env)["V"] == value
    with pytest.raises(ValueError, match="quote or a line break"):
        env_value("it's")


def test_a_state_is_good_once_and_for_an_hour() -> None:
    now = [0.0]
    states = States(ttl=3600, clock=lambda: now[0])
    first, second = states.issue(), states.issue()

    assert states.take(first)
    assert not states.take(first)
    assert not states.take("never-issued")
    now[0] = 3601
    assert not states.take(second)


def test_hostile_text_in_the_manifest_stays_inside_its_attribute() -> None:
    hostile = {"name": '"><script>alert(1)</script>', "url": "https://x/?a=1&b='2'"}
    html = pages.get_template("setup.html").render(
        action="https://github.com/settings/apps/new?state=s", manifest=json.dumps(hostile),
        hook_url="https://x/webhook", owner='<b>org</b>', github_url="https://github.com",
        public_url_set=True,
    )  # fmt: skip

    assert "<script>" not in html and "<b>org" not in html
    fields: dict[str, str] = {}

    class Inputs(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found = dict(attrs)
            if tag == "input":
                fields[str(found["name"])] = str(found["value"])

    Inputs().feed(html)
    assert json.loads(fields["manifest"]) == hostile

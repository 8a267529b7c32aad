"""Startup refuses missing and placeholder secrets with one line naming the variable."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.feedback import repository_settings
from app.settings import Settings, SettingsError, get_settings

VALID = {
    "APP_ID": "12",
    "PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\\nabc\\n-----END RSA PRIVATE KEY-----",
    "WEBHOOK_SECRET": "a-real-secret-value",
    "OPENAI_API_KEY": "sk-real-key-value",
}


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name in [*VALID, "PRIVATE_KEY_PATH"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in (VALID | env).items():
        if value is not None:
            monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        return get_settings()
    finally:
        get_settings.cache_clear()


def test_defaults_follow_github_dot_com(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch)
    assert settings.github_api_url == "https://api.github.com"
    assert settings.trigger_label == "codex"
    assert settings.private_key_pem().splitlines()[1] == "abc"
    assert "a-real-secret-value" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WEBHOOK_SECRET": "changeme"}, "WEBHOOK_SECRET is empty or a placeholder"),
        ({"OPENAI_API_KEY": ""}, "OPENAI_API_KEY is empty or a placeholder"),
        ({"APP_ID": "zero"}, "APP_ID"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        load(monkeypatch, **env)
    text = str(raised.value)
    assert message in text
    assert "\n" not in text


def test_missing_secret_stops_the_app_with_one_line() -> None:
    env = {"PATH": "/usr/bin:/bin", **VALID}
    del env["WEBHOOK_SECRET"]
    result = subprocess.run(
        [sys.executable, "-c", "from app.settings import get_settings; get_settings()"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "configuration error: WEBHOOK_SECRET is not set"


def test_a_key_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRIVATE_KEY", raising=False)
    with pytest.raises(SettingsError, match="PRIVATE_KEY or PRIVATE_KEY_PATH must be set"):
        load(monkeypatch, PRIVATE_KEY=None)  # type: ignore[arg-type]


def test_config_defaults_for_every_repository_its_owner_and_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = {
        "*": {"attempts": 2, "validate": "make test", "network": {"agent": "off"}},
        "octo": {"attempts": 3},
        "octo/app": {"network": {"agent": "allowlist"}},
        "octo/web": {"network": {"allow": ["pypi.org"]}},
    }
    settings = load(monkeypatch, REPO_DEFAULTS=json.dumps(defaults))
    assert settings.defaults_for("octo/app") == {
        "attempts": 3, "validate": "make test", "network": {"agent": "allowlist"}
    }  # fmt: skip
    assert settings.defaults_for("octo/web")["network"] == {"agent": "off", "allow": ["pypi.org"]}
    assert settings.defaults_for("other/lib") == defaults["*"]


def test_help_shows_what_each_allowlist_preset_expands_to(monkeypatch: pytest.MonkeyPatch) -> None:
    presets = {"internal-registries": ["pypi.corp.example", "*.npm.corp.example"]}
    settings = load(monkeypatch, EGRESS_PRESETS=json.dumps(presets))
    text = repository_settings(settings, "octo/app", "network: {agent: allowlist}\n")
    assert "`@internal-registries`: `pypi.corp.example`, `*.npm.corp.example`" in text

"""`.github/codex.yml`: defaults, server defaults, and errors that say where and how to fix."""

from __future__ import annotations

import time

import pytest

from worker.repoconfig import ConfigError, RepoConfig, parse


def test_no_file_means_the_documented_defaults() -> None:
    config = parse(None)
    assert config == RepoConfig()
    assert config.network.agent == "off" and config.attempts == 1 and config.image is None


def test_a_full_file() -> None:
    config = parse(
        "image: registry.example/py:3.12\nsetup: |\n  pip install -e .\nenv: {MODE: test}\n"
        "secrets: [NPM_TOKEN]\nnetwork:\n  agent: off\nvalidate: pytest -q\nattempts: 2\n"
    )
    assert config.image == "registry.example/py:3.12"
    assert config.setup == "pip install -e .\n"
    assert config.env == {"MODE": "test"} and config.secrets == ["NPM_TOKEN"]
    assert config.network.agent == "off"  # YAML reads a bare `off` as false
    assert config.validate_command == "pytest -q" and config.attempts == 2


def test_the_file_overrides_server_defaults_key_by_key() -> None:
    defaults = {"setup": "make deps", "env": {"A": "1", "B": "2"}, "attempts": 3}
    config = parse("env: {B: three}\n", defaults)
    assert config.setup == "make deps" and config.attempts == 3
    assert config.env == {"A": "1", "B": "three"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("setup: ok\nattempts: 9\n", "line 2: `attempts`: Input should be less than or equal to 4"),
        ("imgae: x\n", "line 1: `imgae`: is not a setting"),
        ("env:\n  BAD NAME: x\n", "line 1: `env`: `BAD NAME` is not a valid environment variable"),
        ("network:\n  agent: allowlist\n", "line 1: `network`: `agent: allowlist` needs `allow`"),
        ("network:\n  agent: sometimes\n", "line 2: `network.agent`: Input should be 'off'"),
        ("network: {agent: on, methods: [FETCH]}\n", "`network.methods`: 'FETCH' is not one of"),
        ("network: {allow: ['*.*.org']}\n", "`network.allow`: '*.*.org' is not a domain"),
        ("secrets: [ok, 'no-dash']\n", "line 1: `secrets`: `no-dash` is not a valid secret name"),
        ("setup: [unclosed\n", "not valid YAML"),
        ("- a list\n", "the file must be a mapping of settings"),
    ],
)
def test_errors_name_the_line_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(text)
    assert message in str(raised.value)
    assert str(raised.value).startswith(".github/codex.yml")
    assert "A valid example:" in raised.value.explain()


BILLION_LAUGHS = "\n".join(
    [
        'env: {A: "lol"}',
        'x0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"x{n}: &a{n} [{','.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 8)),
        "setup: *a7",
    ]
)


def test_yaml_aliases_are_refused_fast_with_a_short_message() -> None:
    assert len(BILLION_LAUGHS) < 500  # 9**8 strings once expanded
    started = time.perf_counter()
    with pytest.raises(ConfigError) as raised:
        parse(BILLION_LAUGHS)
    assert time.perf_counter() - started < 1.0
    message = raised.value.explain()
    assert len(message.encode()) < 1024
    assert str(raised.value) == (
        ".github/codex.yml line 2: YAML anchors and aliases (`&a`/`*a`) are not allowed"
    )


def test_a_lone_alias_or_anchor_is_refused_too() -> None:
    for text in ("setup: &s make\nvalidate: *s\n", "env: &e {A: b}\n"):
        with pytest.raises(ConfigError, match="anchors and aliases"):
            parse(text)


def test_a_long_bad_value_is_echoed_cut() -> None:
    with pytest.raises(ConfigError) as raised:
        parse(f"attempts: '{'9x' * 20_000}'\n")
    message = str(raised.value)
    assert message.startswith(".github/codex.yml line 1: `attempts`: Input should be a valid")
    assert "9x" * 90 in message and message.endswith("…`")
    assert len(message) < 700


def test_a_number_too_long_to_read_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as raised:
        parse(f"attempts: {'9' * 50_000}\n")
    assert str(raised.value) == (
        ".github/codex.yml: a number in the file has more digits than can be read"
    )


def test_a_long_bad_name_is_echoed_cut() -> None:
    with pytest.raises(ConfigError) as raised:
        parse(f"secrets: ['{'-' * 30_000}']\n")
    message = str(raised.value)
    assert message.startswith(".github/codex.yml line 1: `secrets`: `----")
    assert "…" in message and len(message) < 1000


def test_a_file_over_64_kib_is_refused_before_parsing() -> None:
    with pytest.raises(ConfigError) as raised:
        parse("setup: |\n" + "  echo hi\n" * 10_000)
    assert str(raised.value) == (
        ".github/codex.yml: the file is 100,009 bytes; at most 65,536 are read"
    )

"""`.github/codex.yml`: a repository's environment contract, validated before anything runs.

Read from the default branch only (never from a pull request's head, which may be a fork).
Server defaults (`REPO_DEFAULTS`, keyed by owner or owner/repo) come first, the file overrides
them. A mistake is reported with its line, key, reason and a valid example.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PATH = ".github/codex.yml"
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EXAMPLE = """\
image: my-registry/python-node:3.12
setup: |
  pip install -e '.[dev]'
env: {DJANGO_SETTINGS_MODULE: app.settings.test}
secrets: [NPM_TOKEN]
network:
  agent: off
validate: pytest -q"""


class NetworkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: Literal["off", "allowlist", "on"] = "off"
    """Network in the agent phase. Only `off` is enforced by this server so far."""
    allow: list[str] = Field(default_factory=list)
    methods: list[str] = Field(default_factory=lambda: ["GET", "HEAD", "OPTIONS"])

    @field_validator("agent", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `off` / `on` as a boolean.
        return {False: "off", True: "on"}.get(value, value) if isinstance(value, bool) else value

    @field_validator("agent")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value != "off":
            raise ValueError(f"`{value}` is not available on this server yet; use `off`")
        return value


class RepoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    image: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-/:@]{0,254}$")
    """The sandbox image; the server's `SANDBOX_IMAGE` when unset."""
    setup: str = ""
    """Runs once in the checkout before the agent, with the repository's secrets."""
    maintenance: str = ""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables for setup and agent phases alike (not secret)."""
    secrets: list[str] = Field(default_factory=list)
    """Names of server-side secrets given to the setup phase only."""
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    validate_command: str | None = Field(default=None, alias="validate")
    attempts: int = Field(default=1, ge=1, le=4)

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not NAME.match(name):
                raise ValueError(f"`{name}` is not a valid environment variable name")
        return value

    @field_validator("secrets")
    @classmethod
    def _secret_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not NAME.match(name):
                raise ValueError(f"`{name}` is not a valid secret name")
        return value


class ConfigError(Exception):
    """`.github/codex.yml` cannot be used; the message is for the repository's maintainers."""

    def __init__(self, key: str, reason: str, line: int | None) -> None:
        where = f"{PATH} line {line}" if line else PATH
        subject = f"`{key}`: " if key else ""
        super().__init__(f"{where}: {subject}{reason}")
        self.key, self.reason, self.line = key, reason, line

    def explain(self) -> str:
        return f"{self}\n\nA valid example:\n\n```yaml\n{EXAMPLE}\n```"


def _line_of(text: str, path: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the key at `path` in the YAML `text`, best effort."""
    try:
        node: Any = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if kv[0].value == str(part)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = value
    return merged


def parse(text: str | None, defaults: dict[str, Any] | None = None) -> RepoConfig:
    """The effective config: server `defaults` overridden by the file's `text` (None: no file)."""
    data: Any = {}
    if text is not None:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = mark.line + 1 if mark else None
            raise ConfigError(
                "", f"not valid YAML ({getattr(error, 'problem', error)})", line
            ) from None
        if not isinstance(data, dict):
            raise ConfigError("", "the file must be a mapping of settings", 1)
    try:
        return RepoConfig.model_validate(merge(defaults or {}, data))
    except ValidationError as error:
        first = error.errors()[0]
        path = tuple(first["loc"])
        key = ".".join(str(p) for p in path)
        reason = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            reason = "is not a setting (see the example below)"
        elif "input" in first and first["type"] not in ("missing",):
            reason = f"{reason}, got `{first['input']}`"
        raise ConfigError(key, reason, _line_of(text or "", path)) from None

"""`.github/codex.yml`: a repository's environment contract, validated before anything runs.

Read from the default branch only (never from a pull request's head, which may be a fork).
Server defaults (`REPO_DEFAULTS`, keyed by owner or owner/repo) come first, the file overrides
them. A mistake is reported with its line, key, reason and a valid example.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from app.github import CONFIG_PATH
from app.settings import Settings, merge
from worker.agent.loop import Limits
from worker.egress.policy import ALL_METHODS, PRESET, normalize_host
from worker.errors import TaskFailed

MAX_BYTES = 64 * 1024
"""Longer files are refused before they are parsed."""
ECHO_LIMIT = 200
"""Characters of a value from the file that an error message repeats."""
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EXAMPLE = """\
image: my-registry/python-node:3.12
setup: |
  pip install -e '.[dev]'
env: {DJANGO_SETTINGS_MODULE: app.settings.test}
secrets: [NPM_TOKEN]
network:
  agent: allowlist
  allow: [pypi.org, "*.pythonhosted.org"]
  methods: [GET, HEAD]
validate: pytest -q
attempts: 2
model: {name: gpt-5.1-codex, reasoning_effort: high}
limits: {steps: 30, minutes: 20, tokens: 1000000, cost: 2.5}"""


class NetworkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: Literal["off", "allowlist", "on"] = "off"
    """Network in the agent phase: none, only `allow` through the egress proxy, or anywhere
    public through the proxy (still logged)."""
    allow: list[str] = Field(default_factory=list)
    methods: list[str] = Field(default_factory=lambda: ["GET", "HEAD", "OPTIONS"])

    @field_validator("agent", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `off` / `on` as a boolean.
        return {False: "off", True: "on"}.get(value, value) if isinstance(value, bool) else value

    @field_validator("allow")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        for entry in value:
            if isinstance(entry, str) and PRESET.match(entry):
                continue  # a server preset, expanded (or refused) where the policy is built
            name = entry.removeprefix("*.") if isinstance(entry, str) else ""
            if "*" in name or normalize_host(name) is None:
                raise ValueError(
                    f"{entry!r} is not a domain (e.g. `pypi.org`, `*.example.org`) "
                    "nor a preset (`@name`)"
                )
        return value

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: list[str]) -> list[str]:
        known = ALL_METHODS | {"*"}
        for method in value:
            if method.upper() not in known:
                raise ValueError(f"{method!r} is not one of {', '.join(sorted(known))}")
        return [method.upper() for method in value]

    @model_validator(mode="after")
    def _allowlist_lists_something(self) -> NetworkConfig:
        if self.agent == "allowlist" and not self.allow:
            raise ValueError("`agent: allowlist` needs `allow`, the domains the agent may reach")
        return self


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,127}$")
    """The model for this repository; the server's `CODEX_MODEL` when unset."""
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None


class LimitsConfig(BaseModel):
    """Per-attempt limits. They can only tighten the server's (`MAX_STEPS`, `AGENT_TIMEOUT`,
    `MAX_TOKENS`, `MAX_COST`): a repository cannot spend more than the server allows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int | None = Field(default=None, ge=1, le=500)
    minutes: float | None = Field(default=None, gt=0, le=24 * 60)
    tokens: int | None = Field(default=None, ge=1_000)
    cost: float | None = Field(default=None, gt=0)
    """US dollars."""


class CacheConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: list[str] | None = Field(default=None, max_length=50)
    """The files (paths or globs) whose content keys the cached environment, instead of every
    lockfile of the repository: in a monorepo, the ones the setup script installs from."""

    @field_validator("key")
    @classmethod
    def _paths(cls, value: list[str] | None) -> list[str] | None:
        for path in value or []:
            if not path or path.startswith("/") or ".." in path.split("/") or len(path) > 300:
                raise ValueError(f"{path[:100]!r} is not a path inside the repository")
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
    """Run by the worker after the agent finishes, whatever the agent claims."""
    attempts: int = Field(default=1, ge=1, le=4)
    """Independent attempts in parallel; the best one is published."""
    model: ModelConfig = Field(default_factory=ModelConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    runtime: Literal["runc", "runsc"] | None = None
    """The container runtime; `runsc` (gVisor) adds a kernel boundary and, on this server, has
    no network at all. The server's `SANDBOX_RUNTIME` when unset."""

    @model_validator(mode="after")
    def _gvisor_is_offline(self) -> RepoConfig:
        if self.runtime == "runsc" and self.network.agent != "off":
            raise ValueError(
                "`runtime: runsc` sandboxes have no network here; use `network.agent: off`"
            )
        return self

    @field_validator("model", mode="before")
    @classmethod
    def _model_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

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


class ConfigError(TaskFailed):
    """`.github/codex.yml` cannot be used; the message is for the repository's maintainers."""

    def __init__(self, key: str, reason: str, line: int | None) -> None:
        where = f"{CONFIG_PATH} line {line}" if line else CONFIG_PATH
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


def _bounded(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` cut to `limit` characters: the file's own values are echoed in error messages,
    and a value can be as long as the file."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _load(text: str) -> Any:
    """The YAML document in `text`, refused before it is built when it is too large or uses
    anchors and aliases (a few hundred bytes of nested aliases expand to gigabytes)."""
    size = len(text.encode())
    if size > MAX_BYTES:
        raise ConfigError("", f"the file is {size:,} bytes; at most {MAX_BYTES:,} are read", None)
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                reason = "YAML anchors and aliases (`&a`/`*a`) are not allowed"
                mark = event.start_mark
                raise ConfigError("", reason, mark.line + 1 if mark else None)
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = _bounded(str(getattr(error, "problem", None) or error))
        line = mark.line + 1 if mark else None
        raise ConfigError("", f"not valid YAML ({problem})", line) from None
    except ValueError:  # the one yaml lets through: an integer too long to convert
        reason = "a number in the file has more digits than can be read"
        raise ConfigError("", reason, None) from None


def parse(text: str | None, defaults: dict[str, Any] | None = None) -> RepoConfig:
    """The effective config: server `defaults` overridden by the file's `text` (None: no file)."""
    data: Any = {}
    if text is not None:
        data = _load(text)
        if not isinstance(data, dict):
            raise ConfigError("", "the file must be a mapping of settings", 1)
    try:
        return RepoConfig.model_validate(merge(defaults or {}, data))
    except ValidationError as error:
        first = error.errors()[0]
        path = tuple(first["loc"])
        key = _bounded(".".join(str(p) for p in path))
        reason = _bounded(first["msg"].removeprefix("Value error, "), 2 * ECHO_LIMIT)
        if first["type"] == "extra_forbidden":
            reason = "is not a setting (see the example below)"
        elif "input" in first and first["type"] not in ("missing",):
            reason = f"{reason}, got `{_bounded(str(first['input']))}`"
        raise ConfigError(key, reason, _line_of(text or "", path)) from None


def limits_for(settings: Settings, repo: LimitsConfig) -> Limits:
    """The server's limits, tightened (never loosened) by the repository's."""

    def tighter(server: float, wanted: float | None) -> float:
        return server if wanted is None else min(server, wanted)

    return Limits(
        max_steps=int(tighter(settings.max_steps, repo.steps)),
        command_timeout=settings.command_timeout,
        seconds=tighter(settings.agent_timeout, repo.minutes and repo.minutes * 60),
        max_tokens=int(tighter(settings.max_tokens, repo.tokens)),
        max_cost=tighter(settings.max_cost, repo.cost),
        price=settings.cost,
    )

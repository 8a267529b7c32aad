"""One settings object for the app and the worker, read once from the environment.

Names follow probot's conventions (`APP_ID`, `PRIVATE_KEY`, `WEBHOOK_SECRET`) so a GitHub App
created from `app.yml` is configured the way its owners expect. Secrets are `SecretStr` and a
missing or placeholder secret stops startup with one line that names the variable.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDERS = frozenset({"", "changeme", "changethis", "secret", "placeholder", "xxx", "todo"})


class SettingsError(SystemExit):
    """Startup cannot go on; the message names the variable to fix."""


CREDENTIALS = ("APP_ID", "WEBHOOK_SECRET")
"""With one of these unset (or neither `PRIVATE_KEY` nor `PRIVATE_KEY_PATH`), the App does not
exist yet: the receiver starts in setup mode (app/setup_mode.py) instead of failing."""


class SetupSettings(BaseSettings):
    """What setup mode needs before the App exists; `Settings` is a superset of it."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    private_key_path: Path | None = None
    """Where the App's PEM key is (`PRIVATE_KEY_PATH`); setup mode writes it there (default
    `var/private-key.pem`)."""
    github_url: str = "https://github.com"
    """GitHub's web address (`GITHUB_URL`): `https://HOST` for GitHub Enterprise Server; setup
    mode sends people to its "new App" page."""
    github_api_url: str = "https://api.github.com"
    """REST base URL; GitHub Enterprise Server uses `https://HOST/api/v3`."""
    github_org: str | None = None
    """Setup mode registers the App for this organization (`GITHUB_ORG`), else for the person."""
    github_timeout: float = 20.0
    """Seconds for one GitHub API call (githubkit has no timeout by default)."""
    public_url: str | None = None
    """Where people reach this app, e.g. `https://codex.example.com` (`PUBLIC_URL`); PR bodies
    then link to each task's full work log there, and setup mode registers the App's webhook
    (`/webhook`) and its redirect back (`/setup/callback`) under it."""
    webhook_proxy_url: str | None = None
    """Setup mode registers this as the webhook URL instead (`WEBHOOK_PROXY_URL`, e.g. a
    smee.io channel forwarding deliveries to a laptop)."""
    env_file: Path = Path(".env")
    """The file setup mode merges the App's id and secrets into (`ENV_FILE`)."""


class Settings(SetupSettings):
    app_id: int = Field(gt=0)
    """The GitHub App's numeric id (`APP_ID`)."""
    private_key: SecretStr | None = None
    """The App's PEM private key (`PRIVATE_KEY`), or give `PRIVATE_KEY_PATH`."""
    webhook_secret: SecretStr
    """Shared secret GitHub signs deliveries with (`WEBHOOK_SECRET`)."""
    redis_url: str = "redis://localhost:6379/0"
    redis_timeout: float = Field(default=2.0, gt=0, le=60)
    """Seconds one Redis command (or connecting) may take before it counts as failed: a Redis
    that accepts connections but does not answer would otherwise hold the caller forever."""
    redis_retries: int = Field(default=8, ge=0, le=100)
    """Tries after the first when Redis drops a connection or times out, 0.1 s apart doubling
    up to 2 s (8: about 10 s), so the worker rides out a Redis restart."""
    redis_health_check: int = Field(default=30, ge=0)
    """Seconds a pooled Redis connection may sit idle before it is pinged ahead of its next
    command, so a connection Redis dropped meanwhile is replaced instead of failing that
    command (`REDIS_HEALTH_CHECK`; 0: never)."""
    redis_deadline: float = Field(default=3.0, gt=0, le=9)
    """Seconds the receiver may spend on Redis for one delivery. Past it the delivery is
    answered 503 with `Retry-After`, nothing was queued, and it can be redelivered as is;
    GitHub counts a delivery as failed after 10 s."""
    openai_api_key: SecretStr
    openai_base_url: str | None = None
    codex_model: str = "gpt-5.1-codex"
    model_api: Literal["responses", "chat"] = "responses"
    """`responses` (OpenAI's Responses API, required by GPT-5.x Codex models) or `chat` (Chat
    Completions: Azure OpenAI, vLLM, Ollama, LiteLLM and other compatible servers)."""
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    """Sent to the model when set; a repository's `model.reasoning_effort` overrides it."""
    model_retries: int = Field(default=4, ge=0, le=10)
    """Tries after the first on a 429, a 5xx or a timeout from the model API, with backoff."""
    model_timeout: float = Field(default=300.0, gt=0)
    """Seconds one model request may take."""
    trigger_label: str = "codex"
    sandbox_image: str = "codex-sandbox:local"
    """The image tasks run in unless a repository's `image:` names another allowed one."""
    sandbox_images: dict[str, list[str]] = Field(default_factory=dict)
    """Images repositories may name in `image:` (`SANDBOX_IMAGES`): JSON, a list of patterns
    for every repository (`["python:3.*", "node:22"]`) or patterns keyed by `*`, `owner` or
    `owner/repo`. Digests, image ids and cached environments are refused whatever the
    patterns say, and no image is ever pulled."""
    bot_name: str = "codex-app"
    """The App's slug: its own events (`<slug>[bot]`) never start work."""

    max_steps: int = Field(default=40, ge=1, le=500)
    """Model turns one task may take before it stops."""
    command_timeout: int = Field(default=300, ge=1)
    """Seconds one shell command in the sandbox may run."""
    output_limit: int = Field(default=16_000, ge=1_000)
    """Characters of command output the model sees (head and tail are kept)."""
    task_timeout: int = Field(default=3600, ge=60)
    """Seconds one task may take from dequeue to PR, all phases included."""
    shutdown_grace: int = Field(default=60, ge=0)
    """Seconds a worker told to stop (SIGTERM) lets its running tasks finish before handing
    them back to the queue; the engine's stop timeout (compose `stop_grace_period`) must be
    longer, or the worker is killed first."""
    retry_delay: int = Field(default=30, ge=1)
    """Seconds before a task that failed on a passing fault (GitHub 5xx or rate limit, an
    unreachable container engine) runs again; doubled for each later try, and only while the
    task's deadline (`task_timeout` from its first start) allows."""
    progress_every: float = Field(default=5.0, gt=0)
    """Seconds between edits of the status comment that only say how far the agent got."""
    max_concurrent_tasks: int = Field(default=2, ge=1)
    """Tasks one worker process runs at a time."""
    max_tasks_per_installation: int = Field(default=0, ge=0)
    """Tasks of one installation (one account or organization) running at a time across all
    workers (`MAX_TASKS_PER_INSTALLATION`); more wait in the queue and say so. 0: no limit."""
    max_tasks_per_repo: int = Field(default=0, ge=0)
    """Tasks of one repository running at a time across all workers (`MAX_TASKS_PER_REPO`);
    0: no limit."""
    cap_recheck: float = Field(default=3.0, gt=0)
    """Seconds a task held back by one of those caps waits in the queue before it asks again
    (`CAP_RECHECK`)."""
    sandbox_memory: str = "2g"
    sandbox_cpus: float = Field(default=2.0, gt=0)
    sandbox_pids: int = Field(default=512, ge=16)
    sandbox_disk: str = Field(
        default="10g", pattern=r"^\s*(0|\d+(\.\d+)?\s*[kKmMgGtT]?i?[bB]?)\s*$"
    )
    """What one sandbox may write to disk (`SANDBOX_DISK`, e.g. `10g`; `0`: no limit): the
    storage driver's quota where it has one, otherwise a watcher stops the sandbox past it."""
    sandbox_runtime: Literal["runc", "runsc"] | None = None
    """Docker runtime for sandboxes (`SANDBOX_RUNTIME`); `runsc` is gVisor, registered by
    deploy/docker/ensure-dockerd.sh without network. A repository's `runtime` overrides it."""
    max_diff_bytes: int = Field(default=5_000_000, ge=1_000)
    """Bytes of the agent's change: the diff as read, and all the files it adds, applied."""
    max_file_bytes: int = Field(default=2_000_000, ge=1_000)
    """Bytes of one file the change adds or rewrites, applied (not compressed)."""
    sandbox_network: str = "codex-setup"
    """Docker network for the setup phase, firewalled by deploy/docker/sandbox-network.sh;
    empty: setup runs without network too. The agent phase never has this network."""
    env_cache_ttl: int = Field(default=12 * 3600, ge=0)
    """Seconds a cached environment (snapshot after setup) may be reused; 0 turns it off."""
    setup_timeout: int = Field(default=900, ge=10)
    """Seconds the repository's setup script may run."""
    repo_defaults: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """`.github/codex.yml` defaults as JSON, keyed by `*` (every repository), `owner` or
    `owner/repo` (`REPO_DEFAULTS`)."""
    repo_secrets: dict[str, dict[str, SecretStr]] = Field(default_factory=dict)
    """Secret values as JSON, keyed by `owner` or `owner/repo` (`REPO_SECRETS`); a repository
    receives in its setup phase only the names its config lists."""
    price_input_per_mtok: float = Field(default=1.25, ge=0)
    """US dollars per million input tokens, for the cost shown on each task."""
    price_output_per_mtok: float = Field(default=10.0, ge=0)
    max_tokens: int = Field(default=2_000_000, ge=1_000)
    """Input plus output tokens one attempt may use before it stops (`MAX_TOKENS`)."""
    max_cost: float = Field(default=5.0, gt=0)
    """US dollars one attempt may spend, at the prices above, before it stops (`MAX_COST`)."""
    agent_timeout: int = Field(default=1800, ge=10)
    """Seconds the agent phase of one attempt may take before it stops (`AGENT_TIMEOUT`)."""
    task_log_limit: int = Field(default=8_000_000, ge=10_000)
    """Characters kept of one task's full work log (served at `/logs/<id>`); a longer log
    loses its middle (`TASK_LOG_LIMIT`)."""

    egress_port: int = Field(default=3128, ge=1, le=65535)
    """Port of the egress proxy the worker runs for `network.agent: allowlist | on`; it listens
    only on the gateway address of `EGRESS_NETWORK`. The firewall opens 3128-3135: give each
    worker process on one host its own."""
    egress_network: str = "codex-egress"
    """Internal Docker network (no route out) whose only reachable address is the proxy."""
    egress_ca_dir: Path = Path("var/egress-ca")
    """Where the per-deployment CA for TLS interception lives (made on first use)."""
    egress_hosts: dict[str, str] = Field(default_factory=dict)
    """Test hook: names the proxy maps to `host:port` itself, private addresses allowed, e.g.
    `{"allowed.example": "127.0.0.1:8443"}`. Leave empty in production."""
    egress_upstream_ca: Path | None = None
    """Extra CA bundle the proxy trusts for upstream TLS (test servers, corporate CAs)."""
    allow_vulnerable_engine: bool = False
    """Let `network.agent: allowlist | on` run on a Docker engine with CVE-2024-29018 (before
    23.0.11, 24.x, 25.0.0-25.0.3; Debian 12's Docker package is 20.10), which the worker otherwise
    refuses. The CVE forwards DNS out of the internal egress network only when the host's
    resolver is on loopback: set this when it is not, or until the engine is upgraded."""
    network_check_interval: float = Field(default=300.0, ge=0)
    """Seconds between runs of the firewall self-test after the one at start-up
    (`NETWORK_CHECK_INTERVAL`; 0: at start-up only): a firewall flushed while the worker runs
    turns network modes off within this long, and a fixed one back on."""

    egress_presets: dict[str, list[str]] = Field(default_factory=dict)
    """Allowlist presets as JSON, name → host patterns, e.g. `{"internal-registries":
    ["pypi.corp.example", "*.npm.corp.example"]}`; a repository lists `@internal-registries`
    in `network.allow` (`EGRESS_PRESETS`)."""
    egress_sandbox_connections: int = Field(default=64, ge=1, le=10_000)
    """Open connections one sandbox may hold on the egress proxy; more are answered 429."""

    @field_validator("sandbox_images", mode="before")
    @classmethod
    def _images_for_everyone(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value)
        return {"*": value} if isinstance(value, list) else value

    def cache_secret(self) -> bytes:
        """Names environment snapshots: derived from the webhook secret, so no new setting."""
        secret = self.webhook_secret.get_secret_value().encode()
        return hmac.new(secret, b"codex environment cache", hashlib.sha256).digest()

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.price_input_per_mtok + output_tokens * self.price_output_per_mtok
        ) / 1e6

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        for name in ("webhook_secret", "openai_api_key"):
            value: SecretStr = getattr(self, name)
            if value.get_secret_value().strip().lower() in PLACEHOLDERS:
                raise ValueError(f"{name.upper()} is empty or a placeholder; set a real value")
        if self.private_key is None and self.private_key_path is None:
            raise ValueError("PRIVATE_KEY or PRIVATE_KEY_PATH must be set")
        return self

    def defaults_for(self, repo: str) -> dict[str, Any]:
        """`.github/codex.yml` defaults for `repo`: the installation's (`*`), then its owner's,
        then its own, merged key by key as the repository's own file is merged over them
        (`network.allow` from the owner keeps `network.agent` from `*`)."""
        owner = repo.split("/", 1)[0]
        return merge(*(self.repo_defaults.get(scope, {}) for scope in ("*", owner, repo)))

    def secrets_for(self, repo: str, names: list[str]) -> dict[str, str]:
        """The values of `names` for `repo` (repository entries win over the owner's)."""
        owner = repo.split("/", 1)[0]
        known = {**self.repo_secrets.get(owner, {}), **self.repo_secrets.get(repo, {})}
        return {name: known[name].get_secret_value() for name in names if name in known}

    def private_key_pem(self) -> str:
        if self.private_key is not None:
            return self.private_key.get_secret_value().replace("\\n", "\n")
        assert self.private_key_path is not None
        return self.private_key_path.read_text()


def default(name: str) -> Any:
    """The default of the setting `name`, for a plain dataclass that has a field of the same
    meaning (a sandbox's memory, the agent's step limit): the number is written once, above."""
    return Settings.model_fields[name].default


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Configuration layers, later ones winning; mappings are merged key by key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = value
    return merged


def describe(error: ValidationError) -> str:
    """One line naming the variable(s) at fault."""
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]).upper()
        reason = "is not set" if item["type"] == "missing" else item["msg"]
        parts.append(f"{field} {reason}" if field else reason.removeprefix("Value error, "))
    return "configuration error: " + "; ".join(parts)


def configured(environ: Mapping[str, str]) -> bool:
    """Whether the App's credentials are given; without them the receiver runs setup mode."""
    has_key = bool(environ.get("PRIVATE_KEY") or environ.get("PRIVATE_KEY_PATH"))
    return has_key and all(environ.get(name) for name in CREDENTIALS)


def get_setup_settings() -> SetupSettings:
    try:
        return SetupSettings()
    except ValidationError as error:
        raise SettingsError(describe(error)) from None


@functools.cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(describe(error)) from None

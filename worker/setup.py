"""The setup phase: the repository's setup script in a container of its own, the only place
its secrets exist, committed as the environment the agent and the validation start from.

Secret values go into the setup command's own environment (never the container's
configuration, never a file of ours). Setup runs once per task, however many attempts follow.
When it is done, every file it wrote is scanned for the secrets and their encoded forms: a hit
fails the task naming the file, and nothing is committed or cached. Otherwise the container's
filesystem is committed (no process survives a commit) and the container removed. Credentials
setup needs belong in `$CODEX_SECRETS_DIR`, a memory-backed mount that no snapshot keeps.

Setup also records what it created in the checkout (as directories: whatever is installed into
them later stays the environment's), and the tree the checkout has after it: the agent's change
is measured against that tree, not against the base commit, so setup's own edits are never
taken for the agent's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from app.github import CONFIG_PATH
from app.settings import Settings
from app.tasks import TaskStatus
from worker import repoconfig
from worker.egress import phases
from worker.egress.selftest import NetworkCheck
from worker.errors import TaskFailed
from worker.protocols import Sandbox
from worker.redact import Redactor
from worker.report.markdown import inline_code, plain
from worker.report.worklog import Step
from worker.sandbox import secretscan
from worker.sandbox.cache import EnvironmentCache
from worker.sandbox.containers import network_exists, open_sandbox
from worker.sandbox.disk import parse_size
from worker.sandbox.spec import SandboxSpec

SECRETS_DIR = "/run/codex-secrets"
"""tmpfs in the setup container (`CODEX_SECRETS_DIR`): files there are in no snapshot."""
SETUP_FILES = "~/.codex-setup-files"
BASELINE_COMMAND = (
    "git ls-files -z --others --directory --exclude-standard | tr '\\0' '\\n' "
    "| sed -e 's/[][*?!#\\\\ ]/\\\\&/g' -e 's|^|/|' >> " + SETUP_FILES + " && "
    "git config --global core.excludesFile " + SETUP_FILES + " && "
    "export GIT_INDEX_FILE=$HOME/.codex-baseline-index && git add -A >/dev/null && "
    "git write-tree && rm -f $GIT_INDEX_FILE"
)
"""Setup's creations in the checkout become excluded paths (directories as directories);
prints the checkout's tree after setup, the base the agent's change is measured against."""
RESYNC_COMMAND = "git reset --quiet --hard HEAD && git clean --quiet -fd"
"""A cached environment's checkout to the commit just copied in; setup's own files stay."""

Cache = Literal["hit", "stored", "miss"] | None
Show = Callable[[TaskStatus, str], Awaitable[None]]


class SetupFailed(TaskFailed):
    """The environment could not be prepared; the message says why, for maintainers."""


@dataclass(frozen=True)
class Environment:
    """What the agent's and the validation's containers start from."""

    image: str
    """The committed setup (cached or temporary), a snapshot, or the plain image."""
    cache: Cache = None
    """Reused, stored, neither; None: no setup script."""
    baseline: str | None = None
    """The checkout's tree after setup (None: the base commit, or still to be taken)."""
    temporary: bool = False
    """The task removes `image` when it ends."""
    network: str | None = None
    """The setup network, for maintenance in a cached environment."""
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def built(self) -> bool:
        """The image holds the checkout as setup left it: nothing is copied in."""
        return self.cache in ("stored", "miss")

    @property
    def warm(self) -> bool:
        return self.cache == "hit"


def secrets(
    settings: Settings, repo: str, config: repoconfig.RepoConfig, redact: Redactor
) -> dict[str, str]:
    """The values of the secrets `config` names; every one is redacted from then on."""
    values = settings.secrets_for(repo, config.secrets)
    if missing := [name for name in config.secrets if name not in values]:
        raise SetupFailed(
            f"{CONFIG_PATH} lists secrets this server does not hold: "
            f"{', '.join(missing)}. Add them to `REPO_SECRETS` on the server, or remove them."
        )
    for value in values.values():
        redact.add(value)
    return values


@dataclass(frozen=True)
class SetupJob:
    """What the setup phase of one task needs."""

    settings: Settings
    cache: EnvironmentCache
    network: NetworkCheck
    """The worker's firewall self-test: setup gets no network it did not pass."""
    repo: str
    label: str
    config: repoconfig.RepoConfig
    image: str
    image_id: str
    runtime: str | None
    secrets: dict[str, str]
    redact: Redactor


async def setup_network(job: SetupJob, notes: list[str]) -> str | None:
    configured, exists = job.settings.sandbox_network or None, False
    if configured is not None and job.runtime != phases.RUNSC:
        exists = await network_exists(job.cache.client, configured)
    problem = await job.network.problem_for("setup") if exists else None
    phase = phases.setup_phase(configured, job.runtime, exists, problem)
    if phase.refused:
        raise SetupFailed(phase.refused)
    notes += [phase.note] if phase.note else []
    return phase.network


async def prepare(job: SetupJob, checkout: Path, show: Show) -> Environment:
    """The task's environment: none to build without a setup script, the cached one when it is
    fresh, otherwise setup in its own container, checked and committed."""
    config = job.config
    if not config.setup.strip():
        return Environment(image=job.image)
    notes: list[str] = []
    network = await setup_network(job, notes)
    cache_key = await job.cache.key_for(job.repo, job.image_id, config, checkout)
    if warm := await job.cache.lookup(cache_key, job.repo):
        return Environment(image=warm, cache="hit", network=network, notes=notes)
    await show(TaskStatus.SETTING_UP, "⚙️ Setting up: running setup.")
    tmpfs = {SECRETS_DIR: "size=64m,mode=0700,uid=1000,gid=1000"}
    label = f"{job.label}/setup"
    spec = sandbox_spec(job.settings, job.image, network, config, label, job.runtime, tmpfs)
    async with open_sandbox(job.cache.client, spec) as sandbox:
        await sandbox.put_tree(checkout)
        step = await run_script(sandbox, config.setup, job.secrets, job.settings.setup_timeout,
                                job.redact)  # fmt: skip
        baseline = await take_baseline(sandbox)
        if job.secrets:
            leaked = await secretscan.leaked_files(sandbox.container, job.redact.contains_secret)
            if leaked:
                raise SetupFailed(leak_message(leaked))
        tag, cached = await job.cache.commit(sandbox.container, job.repo, job.label, cache_key)
    return Environment(
        image=tag,
        cache="stored" if cached else "miss",
        baseline=baseline,
        temporary=not cached,
        steps=[step],
        notes=notes,
    )


def leak_message(paths: list[str]) -> str:
    shown = ", ".join(inline_code(path) for path in paths[:10])
    more = f" and {len(paths) - 10} more" if len(paths) > 10 else ""
    return (
        f"the setup script left a secret in {shown}{more}, which would reach the agent and the "
        "cached environment, so nothing was kept. Write credentials setup needs under "
        f"`$CODEX_SECRETS_DIR` ({SECRETS_DIR}, in memory, in no snapshot), e.g. "
        "`NPM_CONFIG_USERCONFIG=$CODEX_SECRETS_DIR/npmrc`, or pass them in the environment only."
    )


def sandbox_spec(
    settings: Settings,
    image: str,
    network: str | None,
    config: repoconfig.RepoConfig,
    label: str,
    runtime: str | None,
    tmpfs: dict[str, str] | None = None,
) -> SandboxSpec:
    return SandboxSpec(
        image=image,
        network=network,
        env=config.env,
        memory=settings.sandbox_memory,
        cpus=settings.sandbox_cpus,
        pids=settings.sandbox_pids,
        output_limit=settings.output_limit,
        label=label,
        runtime=None if runtime == "runc" else runtime,
        tmpfs=tmpfs or {},
        disk=parse_size(settings.sandbox_disk) or None,
    )


async def run_script(
    sandbox: Sandbox,
    script: str,
    secret_values: dict[str, str],
    timeout: int,
    redact: Redactor,
    kind: Literal["setup", "maintenance"] = "setup",
) -> Step:
    """`script` with the secrets in its own environment; SetupFailed when it fails. `kind` says
    which of the repository's scripts it is, for the work log."""
    env = {**secret_values, "CODEX_SECRETS_DIR": SECRETS_DIR} if secret_values else None
    result = await sandbox.run(script, timeout=timeout, env=env)
    output = plain(result.output)
    step = Step(
        None, script, result.exit_code, result.duration, output, result.timed_out, kind=kind
    )
    if result.exit_code != 0:
        tail = redact(output.strip()[-1500:])
        raise SetupFailed(
            f"the {kind} script from {CONFIG_PATH} failed with exit code "
            f"{result.exit_code}:\n\n```text\n{tail}\n```"
        )
    return step


async def take_baseline(sandbox: Sandbox) -> str:
    """Record setup's creations as excluded paths and return the checkout's tree."""
    out = await sandbox.read(BASELINE_COMMAND, limit=4096, timeout=600)
    tree = (out or b"").decode(errors="replace").strip()
    if len(tree) not in (40, 64) or not all(c in "0123456789abcdef" for c in tree):
        raise SetupFailed("the checkout could not be recorded after setup (git failed in it)")
    return tree


async def maintain(
    sandbox: Sandbox, config: repoconfig.RepoConfig, timeout: int, redact: Redactor
) -> tuple[Step | None, str]:
    """A cached environment, brought to the commit just copied in: its checkout reset (setup's
    files stay), `maintenance` run (without secrets), the new baseline taken."""
    synced = await sandbox.run(RESYNC_COMMAND, timeout=300)
    if synced.exit_code != 0:
        raise SetupFailed(f"the cached environment could not be updated: {plain(synced.output)}")
    step = None
    if config.maintenance.strip():
        step = await run_script(sandbox, config.maintenance, {}, timeout, redact, "maintenance")
    return step, await take_baseline(sandbox)

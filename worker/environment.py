"""The setup phase: the repository's setup script, and the only place its secrets exist.

Secret values go into the setup command's own environment (never the container's, never a
file). Afterwards every process that still carries one is killed, so nothing the script left
running hands them to the agent phase; the script's output is redacted like everything else.
"""

from __future__ import annotations

from app.github import CONFIG_PATH
from app.settings import Settings
from worker import repoconfig
from worker.redact import Redactor
from worker.sandbox.containers import DockerSandbox
from worker.worklog import Step, WorkLog

SWEEP_COMMAND = (
    "for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ 2>/dev/null "
    "| grep -qE '^({names})=' && kill -9 ${{p#/proc/}}; done; true"
)
"""Kills every process whose environment holds one of the secrets (names only, no values)."""


REMEMBER_BUILT = (
    "git ls-files --others --exclude-standard >> ~/.codex-setup-files && "
    "git config --global core.excludesFile ~/.codex-setup-files"
)
"""What setup created in the checkout is the environment, not part of the agent's change."""
RESYNC_COMMAND = "git reset --quiet --hard HEAD && git clean --quiet -fd"
"""Tracked files to the new commit; untracked leftovers go, setup's own files stay."""


class SetupFailed(Exception):
    """The environment could not be prepared; the message says why, for maintainers."""


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


async def prepare(
    sandbox: DockerSandbox,
    config: repoconfig.RepoConfig,
    secret_values: dict[str, str],
    *,
    warm: bool,
    timeout: int,
    worklog: WorkLog,
    redact: Redactor,
) -> None:
    """Cold: run `setup`. Warm (from a cached snapshot): bring the snapshot's checkout to the
    commit just copied in, keeping what setup built, then run `maintenance`."""
    if warm:
        synced = await sandbox.run(RESYNC_COMMAND, timeout=300)
        if synced.exit_code != 0:
            raise SetupFailed(f"the cached environment could not be updated: {synced.output}")
    script = config.maintenance if warm else config.setup
    if script.strip():
        await _run_script(sandbox, script, secret_values, timeout, worklog, redact)
    if not warm:
        await sandbox.run(REMEMBER_BUILT, timeout=120)


async def _run_script(
    sandbox: DockerSandbox,
    script: str,
    secret_values: dict[str, str],
    timeout: int,
    worklog: WorkLog,
    redact: Redactor,
) -> None:
    result = await sandbox.run(script, timeout=timeout, env=secret_values)
    worklog.steps.append(
        Step(0, script, result.exit_code, result.duration, result.output, result.timed_out)
    )
    if secret_values:
        await sandbox.run(SWEEP_COMMAND.format(names="|".join(secret_values)), timeout=30)
    if result.exit_code != 0:
        tail = redact(result.output.strip()[-1500:])
        raise SetupFailed(
            f"the setup script from {CONFIG_PATH} failed with exit code "
            f"{result.exit_code}:\n\n```text\n{tail}\n```"
        )

"""One attempt at a task: a fresh container, the environment, the agent, the repository's own
validate command, and the diff, which leaves through the Docker API to be checked on the host.

Best-of-N runs several of these side by side, each in its own container, from the same host
checkout; only the first one stores a new environment snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.tasks import TaskStatus
from worker import environment, gitops, prompt, ranking
from worker.agent import Agent, Limits, Outcome, Progress
from worker.deps import Deps
from worker.redact import Redactor
from worker.repoconfig import RepoConfig
from worker.sandbox.containers import DockerSandbox, SandboxSpec, network_exists, open_sandbox
from worker.worklog import Step, WorkLog

log = logging.getLogger(__name__)

CACHE_DIRS = ("__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache")
DIFF_COMMAND = (
    "git add -A -- . "
    + " ".join(f"':(exclude,glob)**/{d}/**'" for d in CACHE_DIRS)
    + " >/dev/null && "
    "git -c core.quotePath=false diff --cached --binary --no-ext-diff --no-textconv {base}"
)
"""Everything the agent changed, new files included, minus tool caches nobody commits."""

Show = Callable[[TaskStatus, str], Awaitable[None]]
Cache = Literal["hit", "stored", "miss"] | None


class AttemptFailed(Exception):
    """The attempt cannot go on; the message is written for the person who started it."""


@dataclass(frozen=True)
class Attempt:
    number: int
    outcome: Outcome
    worklog: WorkLog
    diff: bytes
    check: gitops.DiffCheck
    cache: Cache = None
    """The environment cache: reused, stored after setup, or neither; None: no setup script."""

    def cache_note(self) -> str:
        """One line for the status comment on how the environment was made."""
        return {
            "hit": "♻️ Environment: the cached environment was reused (setup skipped, "
            "maintenance ran).",
            "stored": "Environment: setup ran and was cached for the next task.",
            "miss": "Environment: setup ran (not cached).",
            None: "",
        }[self.cache]

    @property
    def publishable(self) -> bool:
        return bool(self.diff) and not self.check.problems

    def candidate(self) -> ranking.Candidate:
        validation = self.worklog.validation
        note = self.outcome.stop_reason or ""
        if self.diff and self.check.problems:
            note = "not publishable: " + "; ".join(self.check.problems)
        elif not self.diff:
            note = "no change"
        return ranking.Candidate(
            number=self.number,
            publishable=self.publishable,
            passed=None if validation is None else validation.exit_code == 0,
            failures=ranking.failures(
                self.worklog, self.outcome.validation, self.outcome.stop_reason is not None
            ),
            diff_lines=ranking.diff_lines(self.diff),
            steps=self.outcome.steps,
            tokens=self.worklog.input_tokens + self.worklog.output_tokens,
            note=note,
        )


@dataclass(frozen=True)
class Workspace:
    """The host checkout once it is there: its commit and the task's prompt."""

    base: str
    prompt: str


@dataclass(frozen=True)
class Job:
    """What every attempt of one task shares."""

    deps: Deps
    repo: str
    label: str
    config: RepoConfig
    checkout: Path
    workspace: asyncio.Future[Workspace]
    """Still being cloned when the attempts start: a container starts meanwhile."""
    instructions: str
    secrets: dict[str, str]
    limits: Limits
    redact: Redactor
    attempts: int = 1


async def run(job: Job, number: int, show: Show, progress: Progress) -> Attempt:
    deps, config = job.deps, job.config
    settings = deps.settings
    worklog = WorkLog()
    image = config.image or settings.sandbox_image
    cache_key = warm = None
    cached = False
    if config.setup.strip():
        await asyncio.shield(job.workspace)  # the cache key reads the checkout's lockfiles
        cache_key = await deps.cache.key_for(job.repo, image, config, job.checkout)
        warm = await deps.cache.lookup(cache_key)
    mode = config.network.agent
    runtime = config.runtime or settings.sandbox_runtime
    if runtime == "runsc" and mode != "off":
        raise AttemptFailed(
            "this server runs sandboxes under gVisor (`SANDBOX_RUNTIME=runsc`), which has no "
            "network: use `network.agent: off`, or `runtime: runc`"
        )
    deps.egress.require(mode)
    network = settings.sandbox_network if cache_key and runtime != "runsc" else None
    if cache_key and runtime == "runsc":
        worklog.notes.append("setup ran without network: gVisor (runsc) sandboxes have none")
    if network and not await network_exists(deps.docker, network):
        worklog.notes.append(f"setup ran without network: no Docker network {network!r}")
        network = None
    if network is None and mode != "off":
        network = deps.egress.network  # no setup phase: straight onto the proxy's network
    spec = SandboxSpec(
        image=warm or image,
        network=network,
        env=config.env,
        memory=settings.sandbox_memory,
        cpus=settings.sandbox_cpus,
        pids=settings.sandbox_pids,
        output_limit=settings.output_limit,
        label=f"{job.label}/{number}",
        runtime=None if runtime == "runc" else runtime,
    )
    async with open_sandbox(deps.docker, spec, remove_later=True) as sandbox:
        started_from = str(sandbox.container.attrs.get("Image", ""))[:19]  # sha256: + 12 hex
        workspace = await asyncio.shield(job.workspace)
        await sandbox.put_tree(job.checkout)
        if cache_key:
            what = "cached environment, running maintenance" if warm else "running setup"
            await show(TaskStatus.SETTING_UP, f"⚙️ Setting up: {what}.")
            await environment.prepare(
                sandbox,
                config,
                job.secrets,
                warm=warm is not None,
                timeout=settings.setup_timeout,
                worklog=worklog,
                redact=job.redact,
            )
            if not warm and number == 1:
                cached = await deps.cache.store(sandbox, cache_key)
        agent_phase: AbstractAsyncContextManager[None] = nullcontext()
        if mode == "off":
            await sandbox.isolate()
        else:
            agent_phase = deps.egress.serve(sandbox, config.network, worklog, spec.label)
        async with agent_phase:
            outcome = await _agent_phase(
                job, workspace.prompt, number, sandbox, worklog, show, progress
            )
        diff = await collect_diff(sandbox, workspace.base, settings.max_diff_bytes)
    if warm:
        worklog.environment = f"`{image}`, cached environment reused (`{warm}`)"
    elif cached:
        worklog.environment = f"`{image}`, setup ran and was cached (`{cache_key}`)"
    elif cache_key:
        why = "the environment cache is off" if deps.cache.ttl <= 0 else "attempt 1 caches it"
        worklog.environment = f"`{image}`, setup ran ({why})"
    else:
        worklog.environment = f"`{image}`, no setup script"
    worklog.environment += f"; started from image `{started_from}`" if started_from else ""
    worklog.environment += f", runtime `{runtime}`" if runtime else ""
    check = gitops.check_diff(diff, settings.max_diff_bytes)
    cache: Cache = None
    if cache_key:
        cache = "hit" if warm else "stored" if cached else "miss"
    return Attempt(number, outcome, worklog, diff, check, cache)


async def _agent_phase(
    job: Job,
    text: str,
    number: int,
    sandbox: DockerSandbox,
    worklog: WorkLog,
    show: Show,
    progress: Progress,
) -> Outcome:
    """The agent on the task's prompt `text`, then the repository's own check, in the agent
    phase's network."""
    config = job.config
    await show(TaskStatus.WORKING, "🛠️ Working: the agent has started.")
    agent = Agent(sandbox, worklog, job.limits, f"{job.label}/{number}", progress)
    if job.attempts > 1:
        text += (
            f"\n\nThis is attempt {number} of {job.attempts}: the attempts run independently "
            "and the best validated one is published, so take the approach you judge best."
        )
    conversation = job.deps.model.start(
        job.instructions,
        text,
        model=config.model.name,
        effort=config.model.reasoning_effort,
    )
    outcome = await agent.run(conversation)
    if config.validate_command:
        await show(TaskStatus.VALIDATING, f"🧪 Validating: `{config.validate_command}`.")
        worklog.validation = await validate(sandbox, config.validate_command, job.limits)
    return outcome


async def validate(sandbox: DockerSandbox, command: str, limits: Limits) -> Step:
    """The repository's check, run by us: its exit code is evidence, the model's word is not."""
    result = await sandbox.run(command, timeout=limits.command_timeout)
    return Step(-1, command, result.exit_code, result.duration, result.output, result.timed_out)


async def collect_diff(sandbox: DockerSandbox, base: str, limit: int) -> bytes:
    diff = await sandbox.read(DIFF_COMMAND.format(base=base), limit=limit)
    if diff is None:
        raise AttemptFailed(
            f"the change could not be collected (over {limit} bytes, or git failed in the sandbox)"
        )
    return diff


def task_prompt(plan_prompt: str, agents_files: dict[str, str], config: RepoConfig,
                limits: Limits) -> str:  # fmt: skip
    """The task as the model sees it: the issue or PR, AGENTS.md, and the environment."""
    facts = prompt.Environment(
        network=config.network.agent,
        allow=tuple(config.network.allow),
        methods=tuple(config.network.methods),
        validate=config.validate_command,
        max_steps=limits.max_steps,
        minutes=limits.seconds / 60,
        command_timeout=limits.command_timeout,
    )
    parts = [plan_prompt, prompt.agents_md(agents_files), prompt.environment(facts)]
    return "\n\n".join(part for part in parts if part)

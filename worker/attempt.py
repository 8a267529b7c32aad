"""One attempt at a task: a fresh container from the task's environment, the agent, the diff
(which leaves through the Docker API and is checked by the host's git), and the repository's
own validate command in a container of its own.

Best-of-N runs several of these side by side, each in its own containers, from the same host
checkout and the same environment (setup runs once per task: `worker/setup.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from app.tasks import TaskStatus
from worker import change, ranking, setup
from worker.agent.loop import Agent, Limits, Outcome, Progress
from worker.deps import Deps
from worker.egress import phases
from worker.errors import TaskFailed
from worker.protocols import Sandbox
from worker.redact import Redactor
from worker.repoconfig import RepoConfig
from worker.report.worklog import WorkLog
from worker.sandbox.containers import DockerSandbox, open_sandbox
from worker.setup import Cache, Environment
from worker.validation import ValidationSandbox

log = logging.getLogger(__name__)

CACHE_DIRS = ("__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache")
DIFF_COMMAND = (
    "git add -A -- . "
    + " ".join(f"':(exclude,glob)**/{d}/**'" for d in CACHE_DIRS)
    + " >/dev/null && GIT_CONFIG_NOSYSTEM=1 git -c core.quotePath=true "
    "-c diff.noprefix=false -c diff.mnemonicPrefix=false -c diff.relative=false "
    "diff --cached --binary --no-renames --no-ext-diff --no-textconv "
    "--src-prefix=a/ --dst-prefix=b/ {baseline}"
)
"""Everything the agent changed since setup, new files included, minus tool caches nobody
commits. The host never parses this text: it applies it with its own git (`change.py`)."""

Show = Callable[[TaskStatus, str], Awaitable[None]]


class AttemptFailed(TaskFailed):
    """The attempt cannot go on; the message is written for the person who started it."""


@dataclass(frozen=True)
class Attempt:
    number: int
    outcome: Outcome
    worklog: WorkLog
    diff: bytes
    change: change.Change
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
        return bool(self.change.files) and not self.change.problems

    def candidate(self) -> ranking.Candidate:
        validation = self.worklog.check
        note = self.outcome.stop_reason or ""
        if self.change.problems:
            note = "not publishable: " + "; ".join(self.change.problems)
        elif not self.change.files:
            note = "no change"
        return ranking.Candidate(
            number=self.number,
            publishable=self.publishable,
            passed=None if validation is None else validation.exit_code == 0,
            failures=ranking.failures(
                self.worklog, self.outcome.claimed, self.outcome.stop_reason is not None
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
    environment: asyncio.Future[Environment]
    """The setup phase, once for every attempt; at once when there is no setup script."""
    image: str
    """The image the repository asked for (allowed), as people know it."""
    runtime: str | None
    instructions: str
    limits: Limits
    redact: Redactor
    attempts: int = 1


async def run(job: Job, number: int, show: Show, progress: Progress) -> Attempt:
    deps, config = job.deps, job.config
    settings = deps.settings
    mode = config.network.agent
    deps.egress.require(mode)
    problem = await deps.network.problem_for(mode)
    env = await asyncio.shield(job.environment)
    phase = phases.agent_phase(mode, job.runtime, problem, deps.egress.network,
                               warm=env.warm, setup_network=env.network)  # fmt: skip
    if phase.refused:
        raise AttemptFailed(phase.refused)
    network = phase.network
    worklog = WorkLog(steps=list(env.steps), notes=list(env.notes))
    label = f"{job.label}/{number}"
    spec = setup.sandbox_spec(settings, env.image, network, config, label, job.runtime)
    checker = None
    try:
        async with open_sandbox(deps.docker, spec, remove_later=True) as sandbox:
            started_from = str(sandbox.container.attrs.get("Image", ""))
            workspace = await asyncio.shield(job.workspace)
            baseline = await _ready(job, env, sandbox, workspace.base, worklog, show, number)
            if config.validate_command:
                # Started only now, so it does not slow the agent's own start (on a busy
                # engine two starts at once each take about twice as long); ready while the
                # agent works.
                checker = ValidationSandbox(
                    deps.docker, setup.sandbox_spec(settings, env.image, network, config,
                                                          f"{label}/validate", job.runtime),
                    env, _checkout(job), config, settings.setup_timeout, job.redact,
                )  # fmt: skip
            agent_phase: AbstractAsyncContextManager[None] = nullcontext()
            if mode == "off":
                await sandbox.isolate()
            else:
                agent_phase = deps.egress.serve(sandbox, config.network, worklog, label)
            async with agent_phase:
                outcome = await _agent_phase(
                    job, workspace.prompt, number, sandbox, worklog, show, progress
                )
            diff = await collect_diff(sandbox, baseline, settings.max_diff_bytes)
        caps = change.Caps(settings.max_file_bytes, settings.max_diff_bytes)
        staged = await change.stage(job.checkout, workspace.base, diff, caps,
                                    job.redact.contains_secret)  # fmt: skip
        if checker is not None and config.validate_command and staged.files and not staged.problems:
            await show(TaskStatus.VALIDATING, f"🧪 Validating: `{config.validate_command}`.")
            worklog.check = await checker.check(
                diff, config.validate_command, job.limits.command_timeout,
                lambda box: _network(job, box, worklog, f"{label}/validate"),
            )  # fmt: skip
    finally:
        if checker is not None:
            await checker.close()
    worklog.environment = _describe(job, env, started_from)
    return Attempt(number, outcome, worklog, diff, staged, env.cache)


async def _checkout(job: Job) -> Path:
    await asyncio.shield(job.workspace)
    return job.checkout


async def _ready(
    job: Job,
    env: Environment,
    sandbox: Sandbox,
    base: str,
    worklog: WorkLog,
    show: Show,
    number: int,
) -> str:
    """The checkout in the agent's container; returns the tree its change is measured from."""
    if env.built:
        assert env.baseline is not None
        return env.baseline
    await sandbox.put_tree(job.checkout)
    if not env.warm:
        return base
    if number == 1:
        await show(TaskStatus.SETTING_UP, "⚙️ Setting up: cached environment, running maintenance.")
    step, baseline = await setup.maintain(
        sandbox, job.config, job.deps.settings.setup_timeout, job.redact
    )
    if step is not None:
        worklog.steps.append(step)
    return baseline


@asynccontextmanager
async def _network(
    job: Job, sandbox: DockerSandbox, worklog: WorkLog, label: str
) -> AsyncIterator[None]:
    """The agent phase's network, for the validation's container."""
    if job.config.network.agent == "off":
        await sandbox.isolate()
        yield
        return
    async with job.deps.egress.serve(sandbox, job.config.network, worklog, label):
        yield


def _describe(job: Job, env: Environment, started_from: str) -> str:
    """The environment line of the PR body: names people know, fingerprints for the rest."""
    shown = job.deps.cache.fingerprint
    text = {
        "hit": f"`{job.image}`, cached environment reused (`{shown(env.image)}`)",
        "stored": f"`{job.image}`, setup ran and was cached (`{shown(env.image)}`)",
        "miss": f"`{job.image}`, setup ran (the environment cache is off)",
        None: f"`{job.image}`, no setup script",
    }[env.cache]
    text += f"; started from image `{shown(started_from)}`" if started_from else ""
    return text + (f", runtime `{job.runtime}`" if job.runtime else "")


async def _agent_phase(
    job: Job,
    text: str,
    number: int,
    sandbox: Sandbox,
    worklog: WorkLog,
    show: Show,
    progress: Progress,
) -> Outcome:
    """The agent on the task's prompt `text`, in the agent phase's network."""
    config = job.config
    await show(TaskStatus.WORKING, "🛠️ Working: the agent has started.")
    label = f"{job.label}/{number}"
    agent = Agent(sandbox, worklog, job.limits, label, progress, redact=job.redact)
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
    return await agent.run(conversation)


async def collect_diff(sandbox: Sandbox, baseline: str, limit: int) -> bytes:
    diff = await sandbox.read(DIFF_COMMAND.format(baseline=baseline), limit=limit)
    if diff is None:
        raise AttemptFailed(
            f"the change could not be collected (over {limit} bytes, or git failed in the sandbox)"
        )
    return diff

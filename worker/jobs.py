"""`run_task`: one task from dequeue to draft PR. Orchestration only; each phase lives elsewhere.

authorize → plan (read GitHub) → clone on the host → sandbox + agent → collect the diff →
publish. Whatever happens, the container is removed, the token is revoked, and the person who
asked sees the outcome in the task's status comment. A cancel (`/codex stop`, label removed)
arrives as an arq abort: the container goes with the task and nothing is pushed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from arq.connections import ArqRedis
from githubkit import AppAuthStrategy, GitHub

from app import access, queue, status
from app import github as gh
from app.settings import Settings
from app.tasks import Task, TaskStatus
from worker import context, environment, gitops, prompt, publish, repoconfig
from worker.agent import Agent, Limits, Outcome
from worker.protocols import Model
from worker.redact import Redactor
from worker.sandbox.cache import EnvironmentCache
from worker.sandbox.containers import DockerSandbox, SandboxSpec, network_exists, open_sandbox
from worker.worklog import Report, WorkLog, render_pr_body

log = logging.getLogger(__name__)

CACHE_DIRS = ("__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache")
DIFF_COMMAND = (
    "git add -A -- . "
    + " ".join(f"':(exclude,glob)**/{d}/**'" for d in CACHE_DIRS)
    + " >/dev/null && "
    "git -c core.quotePath=false diff --cached --binary --no-ext-diff --no-textconv {base}"
)
"""Everything the agent changed, new files included, minus tool caches nobody commits."""
PROGRESS_EVERY = 5.0
"""Seconds between edits of the status comment while the agent works."""


@dataclass(frozen=True)
class Deps:
    """What a job needs, owned by the worker's startup/shutdown."""

    settings: Settings
    app_github: GitHub[AppAuthStrategy]
    docker: docker.DockerClient
    model: Model
    cache: EnvironmentCache


class TaskFailed(Exception):
    """The task cannot go on; the message is written for the person who started it."""


class Cancelled(Exception):
    def __init__(self, by: str) -> None:
        super().__init__(f"cancelled by @{by}")
        self.by = by


@dataclass(frozen=True)
class Work:
    """What the agent phase produced."""

    outcome: Outcome
    worklog: WorkLog
    diff: bytes
    base: str
    checkout: Path


class TaskRun:
    def __init__(self, deps: Deps, redis: ArqRedis, task: Task) -> None:
        self.deps = deps
        self.settings = deps.settings
        self.redis = redis
        self.task = task
        self.redact = Redactor([deps.settings.openai_api_key.get_secret_value()])
        self.started = time.monotonic()
        self.started_at = time.time()
        self.shown = 0.0

    async def run(self) -> str:
        task = self.task
        token = await gh.mint_token(self.deps.app_github, task.installation_id, task.repo)
        self.redact.add(token.token)
        github = gh.token_client(self.settings, token)
        try:
            async with asyncio.timeout(self.settings.task_timeout):
                return await self._run(github, token)
        except (asyncio.CancelledError, Cancelled) as stop:
            by = await queue.cancelled_by(self.redis, task.job_id)
            if by is None:
                raise  # the worker is shutting down: arq runs the task again
            await self._finish(github, TaskStatus.CANCELLED, f"🛑 Cancelled by @{by}.")
            if isinstance(stop, asyncio.CancelledError):
                raise
            return "cancelled"
        except Exception as error:
            log.exception("task %s failed", task.job_id)
            message = self._explain(error)
            text = (
                f"❌ The task failed: {message}\n\n"
                "Nothing was published. Fix the cause, then comment `/codex fix` to try again."
            )
            await self._finish(github, TaskStatus.FAILED, text)
            return f"failed: {message}"
        finally:
            try:
                await gh.revoke_token(github)
            except Exception:
                log.warning("task %s: could not revoke the installation token", task.job_id)

    def _explain(self, error: Exception) -> str:
        if isinstance(error, repoconfig.ConfigError):
            return error.explain()
        if isinstance(error, TimeoutError):
            return (
                f"it took longer than the {self.settings.task_timeout} s task limit. "
                "Narrow the request, or raise `TASK_TIMEOUT`."
            )
        return self.redact(str(error)) or type(error).__name__

    async def _run(self, github: publish.Client, token: gh.InstallationToken) -> str:
        task = self.task
        if by := await queue.cancelled_by(self.redis, task.job_id):
            raise Cancelled(by)
        if not await access.may_start(self.redis, github, task.repo, task.sender):
            # The refusal is its own reply (once per person and issue), not a status comment.
            await status.record(
                self.redis, task.job_id, TaskStatus.REFUSED, access.refusal(task.sender)
            )
            await queue.release(self.redis, task)
            await access.refuse_once(self.redis, github, task.repo, task.number, task.sender)
            return f"refused: {task.sender} lacks write access"
        await self._show(
            github, TaskStatus.PREPARING, "⏳ Preparing: reading the issue and cloning."
        )
        plan = await context.plan(self.redis, github, task, self.settings.defaults_for(task.repo))
        with tempfile.TemporaryDirectory(prefix="codex-") as workdir:
            work = await self._work(github, token, plan, Path(workdir) / "repo")
            if not work.diff:
                reason = work.outcome.stop_reason or "the agent finished without changing any file"
                await self._finish(github, TaskStatus.DONE, f"🤷 No changes were made: {reason}.")
                return "no changes"
            check = gitops.check_diff(work.diff, self.settings.max_diff_bytes)
            if check.problems:
                raise TaskFailed("the change was not published: " + "; ".join(check.problems))
            if by := await queue.cancelled_by(self.redis, task.job_id):
                raise Cancelled(by)
            await self._show(github, TaskStatus.PUBLISHING, "📤 Publishing the change.")
            return await self._publish(github, token, plan, work, check.files)

    async def _work(
        self,
        github: publish.Client,
        token: gh.InstallationToken,
        plan: context.Plan,
        checkout: Path,
    ) -> Work:
        base = await gitops.clone(plan.clone_url, token.token, checkout, plan.fetch_ref)
        worklog = WorkLog()
        config = plan.config
        secrets = environment.secrets(self.settings, self.task.repo, config, self.redact)
        image = config.image or self.settings.sandbox_image
        cache_key = warm = None
        if config.setup.strip():
            cache_key = await self.deps.cache.key_for(self.task.repo, image, config, checkout)
            warm = await self.deps.cache.lookup(cache_key)
        network = self.settings.sandbox_network if cache_key else None
        if network and not await network_exists(self.deps.docker, network):
            worklog.notes.append(f"setup ran without network: no Docker network {network!r}")
            network = None
        spec = SandboxSpec(
            image=warm or image,
            network=network,
            env=config.env,
            memory=self.settings.sandbox_memory,
            cpus=self.settings.sandbox_cpus,
            pids=self.settings.sandbox_pids,
            output_limit=self.settings.output_limit,
            label=self.task.job_id,
        )
        limits = Limits(self.settings.max_steps, self.settings.command_timeout)

        async def progress(step: int) -> None:
            if time.monotonic() - self.shown >= PROGRESS_EVERY:
                elapsed = time.monotonic() - self.started
                text = f"🛠️ Working: step {step} of at most {limits.max_steps}, {elapsed:.0f} s in."
                await self._show(github, TaskStatus.WORKING, text)

        async with open_sandbox(self.deps.docker, spec) as sandbox:
            await sandbox.put_tree(checkout)
            if cache_key:
                what = "cached environment, running maintenance" if warm else "running setup"
                await self._show(github, TaskStatus.SETTING_UP, f"⚙️ Setting up: {what}.")
                await environment.prepare(
                    sandbox,
                    config,
                    secrets,
                    warm=warm is not None,
                    timeout=self.settings.setup_timeout,
                    worklog=worklog,
                    redact=self.redact,
                )
                if not warm:
                    await self.deps.cache.store(sandbox, cache_key)
                await sandbox.isolate()
            await self._show(github, TaskStatus.WORKING, "🛠️ Working: the agent has started.")
            agent = Agent(sandbox, worklog, limits, self.task.job_id, progress)
            conversation = self.deps.model.start(prompt.INSTRUCTIONS, plan.prompt)
            outcome = await agent.run(conversation)
            diff = await self._collect_diff(sandbox, base)
        if warm:
            worklog.environment = f"`{image}`, cached environment reused (`{warm}`)"
        elif cache_key:
            worklog.environment = f"`{image}`, setup ran and was cached (`{cache_key}`)"
        else:
            worklog.environment = f"`{image}`, no setup script"
        return Work(outcome, worklog, diff, base, checkout)

    async def _publish(
        self,
        github: publish.Client,
        token: gh.InstallationToken,
        plan: context.Plan,
        work: Work,
        files: list[str],
    ) -> str:
        task, outcome = self.task, work.outcome
        bot = self.settings.bot_name
        await gitops.commit(
            work.checkout,
            work.diff,
            f"{plan.title}\n\nFor #{task.number}, started by @{task.sender}.",
            author=f"{bot}[bot]",
            email=f"{self.settings.app_id}+{bot}[bot]@users.noreply.github.com",
        )
        url, secret = plan.clone_url, token.token
        report = Report(
            number=task.number,
            summary=outcome.summary or "The agent stopped before writing a summary.",
            validation=outcome.validation,
            log=work.worklog,
            changed_files=files,
            duration=time.monotonic() - self.started,
            stop_reason=outcome.stop_reason,
        )
        took = self._took(work.worklog)
        if plan.mode == "same_branch":
            try:
                await gitops.push(work.checkout, url, secret, plan.push_branch, force=False)
            except gitops.GitError as error:
                raise TaskFailed(
                    f"`{plan.push_branch}` moved while the agent worked, so nothing was pushed. "
                    "Comment `/codex fix` again to work on the new head."
                ) from error
            body = render_pr_body(report, self.redact, closing=f"<sub>{took}</sub>")
            await self._finish(
                github, TaskStatus.DONE, f"✅ Pushed to `{plan.push_branch}`.\n\n{body}"
            )
            return f"pushed to {plan.push_branch}"
        closing = None
        if plan.base_copy:
            await gitops.push(work.checkout, url, secret, plan.base_copy, rev=work.base)
            closing = (
                f"The head of #{task.number} is in a fork, which this app cannot push to. "
                f"This draft PR is based on `{plan.base_copy}`, a copy of that branch, so its "
                f"diff shows only the proposed changes; the author of #{task.number} can merge "
                f"`{plan.push_branch}` into their branch."
            )
        await gitops.push(work.checkout, url, secret, plan.push_branch)
        title = plan.title if not outcome.stop_reason else f"[incomplete] {plan.title}"
        pull = await publish.open_draft(
            github,
            task.repo,
            head=plan.push_branch,
            base=plan.pr_base,
            title=title,
            body=render_pr_body(report, self.redact, closing),
        )
        summary = outcome.summary.strip().splitlines()[0] if outcome.summary.strip() else ""
        text = f"✅ Draft PR ready for review: {pull.url}\n\n{summary}\n\n<sub>{took}</sub>"
        await self._finish(github, TaskStatus.DONE, text)
        return f"pr #{pull.number}"

    def _took(self, worklog: WorkLog) -> str:
        used_in, used_out = worklog.input_tokens, worklog.output_tokens
        cost = self.settings.cost(used_in, used_out)
        return (
            f"{time.monotonic() - self.started:.0f} s · {used_in + used_out} tokens "
            f"({used_in} in, {used_out} out) · ≈ ${cost:.4f}"
        )

    async def _collect_diff(self, sandbox: DockerSandbox, base: str) -> bytes:
        diff = await sandbox.read(
            DIFF_COMMAND.format(base=base), limit=self.settings.max_diff_bytes
        )
        if diff is None:
            raise TaskFailed(
                f"the change could not be collected (over {self.settings.max_diff_bytes} bytes, "
                "or git failed in the sandbox)"
            )
        return diff

    async def _show(self, github: publish.Client, phase: TaskStatus, text: str) -> None:
        """Show the phase in the status comment; a GitHub hiccup here never fails the task."""
        self.shown = time.monotonic()
        try:
            await status.show(self.redis, github, self.task, phase, self.redact(text))
        except Exception:
            log.warning("task %s: status comment failed", self.task.job_id, exc_info=True)

    async def _finish(self, github: publish.Client, phase: TaskStatus, text: str) -> None:
        await self._show(github, phase, text)
        await queue.release(self.redis, self.task)
        lastrun = context.lastrun_key(self.task)
        await self.redis.set(lastrun, json.dumps(self.started_at), ex=status.TTL)


async def run_task(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    task = Task.model_validate(payload)
    log.info("task %s: started (delivery %s)", task.job_id, task.delivery_id)
    result = await TaskRun(ctx["deps"], ctx["redis"], task).run()
    log.info("task %s: %s", task.job_id, result)
    return result

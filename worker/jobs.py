"""`run_task`: one task from dequeue to draft PR. Orchestration only; each phase lives elsewhere.

authorize → prepare (host clone) → sandbox + agent → collect the diff → publish. Whatever
happens, the container is removed, the token is revoked, and the person who asked is told
the outcome in the task's status comment.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from arq.connections import ArqRedis
from githubkit import AppAuthStrategy, GitHub

from app import github as gh
from app import queue
from app.settings import Settings
from app.tasks import Task, TaskStatus
from worker import gitops, prompt, publish
from worker.agent import Agent, Limits
from worker.protocols import Model
from worker.redact import Redactor
from worker.sandbox.containers import DockerSandbox, SandboxSpec, open_sandbox
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


@dataclass(frozen=True)
class Deps:
    """What a job needs, owned by the worker's startup/shutdown."""

    settings: Settings
    app_github: GitHub[AppAuthStrategy]
    docker: docker.DockerClient
    model: Model


class TaskFailed(Exception):
    """The task cannot go on; the message is written for the person who started it."""


class TaskRun:
    def __init__(self, deps: Deps, redis: ArqRedis, task: Task) -> None:
        self.deps = deps
        self.settings = deps.settings
        self.redis = redis
        self.task = task
        self.redact = Redactor([deps.settings.openai_api_key.get_secret_value()])
        self.started = time.monotonic()
        self.comment_id: int | None = None

    @property
    def comment_key(self) -> str:
        return f"codex:comment:{self.task.job_id}"

    async def run(self) -> str:
        task = self.task
        token = await gh.mint_token(self.deps.app_github, task.installation_id, task.repo)
        self.redact.add(token.token)
        github = gh.token_client(self.settings, token)
        try:
            return await self._run(github, token)
        except Exception as error:
            log.exception("task %s failed", task.job_id)
            message = self.redact(str(error)) or type(error).__name__
            await self._set(github, TaskStatus.FAILED, f"❌ The task failed: {message}")
            return f"failed: {message}"
        finally:
            try:
                await gh.revoke_token(github)
            except Exception:
                log.warning("task %s: could not revoke the installation token", task.job_id)

    async def _run(self, github: publish.Client, token: gh.InstallationToken) -> str:
        task = self.task
        role = await gh.role_of(github, task.repo, task.sender)
        if role not in gh.WRITE_ROLES:
            await self._set(
                github,
                TaskStatus.FAILED,
                f"@{task.sender} needs write access to this repository to start the agent.",
            )
            return f"refused: {task.sender} is {role}"
        await self._set(github, TaskStatus.PREPARING, "⏳ Preparing the environment...")
        owner, name = task.repo.split("/", 1)
        repo = (await github.rest.repos.async_get(owner, name)).parsed_data
        issue = (await github.rest.issues.async_get(owner, name, task.number)).parsed_data
        text = prompt.IssueText(
            repo=task.repo,
            number=task.number,
            title=issue.title,
            body=issue.body or "",
            author=issue.user.login if issue.user else "ghost",
        )
        with tempfile.TemporaryDirectory(prefix="codex-") as workdir:
            checkout = Path(workdir) / "repo"
            base = await gitops.clone(repo.clone_url, token.token, checkout, repo.default_branch)
            worklog = WorkLog()
            spec = SandboxSpec(
                image=self.settings.sandbox_image,
                memory=self.settings.sandbox_memory,
                cpus=self.settings.sandbox_cpus,
                pids=self.settings.sandbox_pids,
                output_limit=self.settings.output_limit,
                label=task.job_id,
            )
            async with open_sandbox(self.deps.docker, spec) as sandbox:
                await sandbox.put_tree(checkout)
                await self._set(github, TaskStatus.WORKING, "🛠️ Working on it...")
                agent = Agent(
                    sandbox,
                    worklog,
                    Limits(self.settings.max_steps, self.settings.command_timeout),
                    task.job_id,
                )
                conversation = self.deps.model.start(
                    prompt.INSTRUCTIONS, prompt.task_prompt(text, task.instructions)
                )
                outcome = await agent.run(conversation)
                diff = await self._collect_diff(sandbox, base)
            if not diff:
                reason = outcome.stop_reason or "the agent finished without changing any file"
                await self._set(github, TaskStatus.DONE, f"🤷 No changes were made: {reason}.")
                return "no changes"
            check = gitops.check_diff(diff, self.settings.max_diff_bytes)
            if check.problems:
                raise TaskFailed("the change was not published: " + "; ".join(check.problems))
            await self._set(github, TaskStatus.PUBLISHING, "📤 Publishing the draft PR...")
            branch = publish.branch_name(task.number, issue.title)
            bot = self.settings.bot_name
            await gitops.commit(
                checkout,
                diff,
                f"{issue.title}\n\nResolves #{task.number}. Started by @{task.sender}.",
                author=f"{bot}[bot]",
                email=f"{self.settings.app_id}+{bot}[bot]@users.noreply.github.com",
            )
            await gitops.push(checkout, repo.clone_url, token.token, branch)
            report = Report(
                number=task.number,
                summary=outcome.summary or "The agent stopped before writing a summary.",
                validation=outcome.validation,
                log=worklog,
                changed_files=check.files,
                duration=time.monotonic() - self.started,
                stop_reason=outcome.stop_reason,
            )
            title = issue.title if not outcome.stop_reason else f"[incomplete] {issue.title}"
            pull = await publish.open_draft(
                github,
                task.repo,
                head=branch,
                base=repo.default_branch,
                title=title,
                body=render_pr_body(report, self.redact),
            )
        elapsed = time.monotonic() - self.started
        await self._set(
            github,
            TaskStatus.DONE,
            f"✅ Draft PR ready for review: {pull.url} ({elapsed:.0f} s, "
            f"{worklog.input_tokens + worklog.output_tokens} tokens)",
        )
        return f"pr #{pull.number}"

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

    async def _set(self, github: publish.Client, status: TaskStatus, message: str) -> None:
        """Record the phase in Redis and show it in the task's one status comment."""
        await queue.set_status(self.redis, self.task.job_id, status, message)
        if self.comment_id is None:
            stored = await self.redis.get(self.comment_key)
            self.comment_id = int(stored) if stored else None
        body = self.redact(f"{message}\n\n<sub>codex task `{self.task.job_id}`</sub>")
        try:
            self.comment_id = await publish.post_or_edit_comment(
                github, self.task.repo, self.task.number, body, self.comment_id
            )
        except Exception:
            log.warning("task %s: status comment failed", self.task.job_id, exc_info=True)
            return
        await self.redis.set(self.comment_key, str(self.comment_id), ex=queue.SEEN_TTL)


async def run_task(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    task = Task.model_validate(payload)
    log.info("task %s: started (delivery %s)", task.job_id, task.delivery_id)
    result = await TaskRun(ctx["deps"], ctx["redis"], task).run()
    log.info("task %s: %s", task.job_id, result)
    return result

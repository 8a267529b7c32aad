"""`run_task`: one task from dequeue to draft PR. Orchestration only; each phase lives elsewhere.

authorize → plan (read GitHub) → clone on the host → N attempts, each in its own sandbox
(`worker/attempt.py`) → rank them → publish the best, with every attempt's branch. Whatever
happens, the containers are removed, the token is revoked, and the person who asked sees the
outcome in the task's status comment. A cancel (`/codex stop`, label removed) arrives as an arq
abort: the containers go with the task and nothing is pushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from arq import Retry
from arq.connections import ArqRedis
from githubkit.exception import GitHubException

from app import access, queue, status, tasklog
from app import github as gh
from app.tasks import Task, TaskStatus
from worker import (
    attempt,
    change,
    gitops,
    publish,
    ranking,
    repoconfig,
    setup,
)  # fmt: skip
from worker import plan as planning
from worker.agent import prompt
from worker.agent.loop import Limits, Progress, limits_for
from worker.attempt import Attempt
from worker.deps import Deps
from worker.heartbeat import Heartbeat
from worker.redact import Redactor
from worker.report.markdown import safe_line, safe_markdown
from worker.report.prbody import Report, render_pr_body
from worker.report.worklog import WorkLog, render_full
from worker.sandbox import engine, images
from worker.sandbox.containers import removals_settled
from worker.tokens import TokenSource

log = logging.getLogger(__name__)

PROGRESS_EVERY = 5.0
"""Seconds between edits of the status comment while the agent works."""
RUN_TTL = 30 * 24 * 3600
"""How long a PR's attempts stay pickable and its last run continuable."""
ENGINE_RETRY = 30
"""Seconds before a task whose container engine could not be reached is tried again."""
INCOMPLETE = "incomplete"
FAILING = "failing validation"
"""Labels on a draft PR that stopped on a limit, or whose validate command failed."""


class TaskFailed(Exception):
    """The task cannot go on; the message is written for the person who started it."""


class Cancelled(Exception):
    def __init__(self, by: str) -> None:
        super().__init__(f"cancelled by @{by}")
        self.by = by


class TaskRun:
    def __init__(
        self, deps: Deps, redis: ArqRedis, task: Task, try_number: int = 1, max_tries: int = 1
    ) -> None:
        self.deps = deps
        self.try_number = try_number
        """arq's `job_try`: above 1 after a worker died or stopped mid-task (a failure is
        final at once, so tries count interruptions only)."""
        self.max_tries = max_tries
        self.tokens: TokenSource | None = None
        self.settings = deps.settings
        self.redis = redis
        self.task = task
        self.redact = Redactor([deps.settings.openai_api_key.get_secret_value()])
        self.started = time.monotonic()
        self.started_at = time.time()
        self.shown = 0.0
        self.steps: dict[int, int] = {}
        self.log_url: str | None = None
        self.showing: asyncio.Task[None] | None = None
        """The last passing phase handed to `_show_soon`."""
        self.temporary: list[str] = []
        """Environments committed for this task only, removed when it ends."""

    async def run(self) -> str:
        task = self.task
        token = TokenSource(self.deps.app_github, task.installation_id, task.repo, self.redact.add)
        await token.current()
        self.tokens = token
        github = token.client()  # a fresh token per request: the final status is writable
        try:
            async with asyncio.timeout(self.settings.task_timeout):
                return await self._run(github, token)
        except (asyncio.CancelledError, Cancelled) as stop:
            by = await queue.cancelled_by(self.redis, task.job_id)
            if by is None and self.try_number < self.max_tries:
                await self._handed_back(github)
                raise  # the worker is shutting down: arq runs the task again
            if by is None:  # arq would drop it silently: say so, and free the issue
                await self._finish(github, TaskStatus.FAILED, interrupted(self.try_number))
                raise
            await self._finish(github, TaskStatus.CANCELLED, f"🛑 Cancelled by @{by}.")
            if isinstance(stop, asyncio.CancelledError):
                raise
            return "cancelled"
        except Exception as error:
            if engine.unreachable(_first(error)) and self.try_number < self.max_tries:
                await self._requeue(github)
            log.exception("task %s failed", task.job_id)
            message = self._explain(error)
            text = (
                f"❌ The task failed: {message}\n\n"
                "Nothing was published. Fix the cause, then comment `/codex fix` to try again."
            )
            await self._finish(github, TaskStatus.FAILED, text)
            return f"failed: {message}"
        finally:
            await self._discard_environments()
            await token.revoke_all()

    async def _discard_environments(self) -> None:
        if self.temporary:
            await removals_settled()  # no container of this task still uses them
            for image in self.temporary:
                await self.deps.cache.discard(image)

    async def _requeue(self, github: publish.Client) -> None:
        """The engine is gone (a dockerd restart, usually): back to the queue for a later
        try, which any worker may take; raises arq's `Retry`."""
        log.warning("task %s: container engine unreachable; retrying in %d s", self.task.job_id,
                    ENGINE_RETRY)  # fmt: skip
        text = (
            f"⏳ Re-queued: the container engine ({engine.engine_name()}) could not be reached. "
            f"The task runs again in {ENGINE_RETRY} s, on any worker "
            f"(try {self.try_number + 1} of {self.max_tries})."
        )
        await self._settle_showing()
        try:
            await status.show(self.redis, github, self.task, TaskStatus.QUEUED, text,
                              self.try_number + 1)  # fmt: skip
        except Exception:
            log.warning("task %s: status comment failed", self.task.job_id, exc_info=True)
        raise Retry(defer=ENGINE_RETRY)

    async def _handed_back(self, github: publish.Client) -> None:
        """Say the task went back to the queue (the worker stopped before it finished)."""
        text = (
            "⏸️ Re-queued: the worker stopped before the task finished. It resumes on the next "
            f"worker (try {self.try_number + 1} of {self.max_tries})."
        )
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await status.show(self.redis, github, self.task, TaskStatus.QUEUED, text,
                                  self.try_number + 1)  # fmt: skip

    async def _settle_showing(self) -> None:
        if self.showing is not None:
            await asyncio.wait([self.showing])  # `_show` never raises

    def _explain(self, error: BaseException) -> str:
        error = _first(error)
        if (told := engine.explain(error)) is not None:
            return self.redact(f"{told}.")
        if isinstance(error, repoconfig.ConfigError):
            return error.explain()
        if isinstance(error, images.ImageRefused):
            return f"{error}."
        if isinstance(error, GitHubException):
            return self.redact(f"{gh.describe_error(error)}.")
        if isinstance(error, TimeoutError):
            return (
                f"it took longer than the {self.settings.task_timeout} s task limit. "
                "Narrow the request, or raise `TASK_TIMEOUT`."
            )
        text = self.redact(str(error)) or type(error).__name__
        return safe_markdown(text, self.task.number, self.task.repo)

    async def _run(self, github: publish.Client, token: TokenSource) -> str:
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
        if task.action == "pick":
            return await self._pick(github, token)
        self._show_soon(
            github, TaskStatus.PREPARING, "⏳ Preparing: reading the issue and cloning."
        )
        plan = await planning.plan(github, task, self.settings.defaults_for(task.repo))
        if task.action == "continue" and not plan.owned:
            raise TaskFailed(
                "`/codex continue` resumes a pull request this app opened (a `codex/` branch); "
                "use `/codex fix` on other pull requests."
            )
        image = plan.config.image or self.settings.sandbox_image
        if refused := images.refusal(image, self.settings.sandbox_image,
                                     self.settings.sandbox_images, task.repo):  # fmt: skip
            raise images.ImageRefused(f"{gh.CONFIG_PATH} `image`: {refused}")
        with tempfile.TemporaryDirectory(prefix="codex-") as workdir:
            checkout = Path(workdir) / "repo"
            limits = limits_for(self.settings, plan.config.limits)
            # The clone runs while the attempts start their containers.
            workspace = asyncio.create_task(self._workspace(github, token, plan, checkout, limits))
            setup = asyncio.create_task(self._environment(github, plan, image, checkout, workspace))
            try:
                attempts = await self._attempts(
                    github, plan, checkout, workspace, setup, image, limits
                )
            finally:
                await settled(workspace)
                await settled(setup)
                if not setup.cancelled() and setup.exception() is None and setup.result().temporary:
                    self.temporary.append(setup.result().image)
            base = workspace.result().base
            full = self.redact(render_full([one.worklog for one in attempts]))
            self.log_url = await tasklog.store(self.redis, self.settings, task.job_id, full)
            best = attempts[ranking.order([a.candidate() for a in attempts])[0].number - 1]
            if not best.publishable:
                return await self._nothing_to_publish(github, best)
            if by := await queue.cancelled_by(self.redis, task.job_id):
                raise Cancelled(by)
            self._show_soon(github, TaskStatus.PUBLISHING, "📤 Publishing the change.")
            return await self._publish(github, token, plan, attempts, checkout, base)

    async def _workspace(
        self,
        github: publish.Client,
        token: TokenSource,
        plan: planning.Plan,
        checkout: Path,
        limits: Limits,
    ) -> attempt.Workspace:
        """The host checkout, and the prompt: the issue or PR with its comments (read while
        the clone runs) and the AGENTS.md files of the base branch."""
        reading = asyncio.create_task(planning.prompt_for(self.redis, github, self.task, plan))
        try:
            base = await gitops.clone(
                plan.clone_url, await token.secret(), checkout, plan.fetch_ref
            )
            agents_ref = base
            if plan.base_ref != plan.fetch_ref:
                agents_ref = await gitops.fetch(
                    checkout, plan.clone_url, await token.secret(), plan.base_ref, "refs/codex/base"
                )
            agents_files = await gitops.files_named(checkout, agents_ref, "AGENTS.md")
            text = attempt.task_prompt(await reading, agents_files, plan.config, limits)
        finally:
            await settled(reading)
        return attempt.Workspace(base=base, prompt=text)

    async def _attempts(
        self,
        github: publish.Client,
        plan: planning.Plan,
        checkout: Path,
        workspace: asyncio.Task[attempt.Workspace],
        setup: asyncio.Task[setup.Environment],
        image: str,
        limits: Limits,
    ) -> list[Attempt]:
        config, task = plan.config, self.task
        count = task.attempts or config.attempts
        job = attempt.Job(
            deps=self.deps,
            repo=task.repo,
            label=task.job_id,
            config=config,
            checkout=checkout,
            workspace=workspace,
            environment=setup,
            image=image,
            runtime=self._runtime(plan),
            instructions=prompt.INSTRUCTIONS,
            limits=limits,
            redact=self.redact,
            attempts=count,
        )

        async def show(phase: TaskStatus, text: str) -> None:
            self._show_soon(github, phase, text)

        async def quiet(phase: TaskStatus, text: str) -> None:
            pass

        def progress(number: int) -> Progress:
            async def report(step: int) -> None:
                self.steps[number] = step
                if time.monotonic() - self.shown >= PROGRESS_EVERY:
                    elapsed = time.monotonic() - self.started
                    where = " · ".join(f"#{n} step {s}" for n, s in sorted(self.steps.items()))
                    if count == 1:
                        where = f"step {step} of at most {limits.max_steps}"
                    text = f"🛠️ Working: {where}, {elapsed:.0f} s in."
                    self._show_soon(github, TaskStatus.WORKING, text)

            return report

        if count == 1:
            return [await attempt.run(job, 1, show, progress(1))]
        async with asyncio.TaskGroup() as group:
            running = [
                group.create_task(attempt.run(job, n, show if n == 1 else quiet, progress(n)))
                for n in range(1, count + 1)
            ]
        return [done.result() for done in running]

    def _runtime(self, plan: planning.Plan) -> str | None:
        return plan.config.runtime or self.settings.sandbox_runtime

    async def _environment(
        self,
        github: publish.Client,
        plan: planning.Plan,
        image: str,
        checkout: Path,
        workspace: asyncio.Task[attempt.Workspace],
    ) -> setup.Environment:
        """The setup phase, once for all attempts (`worker/setup.py`)."""
        config, task = plan.config, self.task
        secrets = setup.secrets(self.settings, task.repo, config, self.redact)
        image_id = await images.require_local(self.deps.docker, image)
        if config.setup.strip():
            await asyncio.shield(workspace)  # the cache key reads the checkout's lockfiles
        job = setup.SetupJob(
            settings=self.settings,
            cache=self.deps.cache,
            network=self.deps.network,
            repo=task.repo,
            label=task.job_id,
            config=config,
            image=image,
            image_id=image_id,
            runtime=self._runtime(plan),
            secrets=secrets,
            redact=self.redact,
        )

        async def show(phase: TaskStatus, text: str) -> None:
            self._show_soon(github, phase, text)

        return await setup.prepare(job, checkout, show)

    async def _nothing_to_publish(self, github: publish.Client, best: Attempt) -> str:
        if best.change.problems:
            raise TaskFailed("the change was not published: " + "; ".join(best.change.problems))
        reason = best.outcome.stop_reason
        if reason and best.outcome.model_failed:
            text = (
                f"⏹️ Stopped without a change to publish: {reason}. Comment `/codex fix` to try "
                "again."
            )
        elif reason:
            text = (
                f"⏹️ Stopped without a change to publish: {reason}. Narrow the request, or raise "
                "the limit in `.github/codex.yml` `limits` (within the server's), then comment "
                "`/codex fix`."
            )
        else:
            text = "🤷 No changes were made: the agent finished without changing any file."
        if self.log_url:
            text += f"\n\nThe work log: {self.log_url}"
        await self._finish(github, TaskStatus.DONE, text)
        return "no changes"

    async def _publish(
        self,
        github: publish.Client,
        token: TokenSource,
        plan: planning.Plan,
        attempts: list[Attempt],
        checkout: Path,
        base: str,
    ) -> str:
        """Commit every publishable attempt, push them, and put the best one on the PR."""
        task, bot = self.task, self.settings.bot_name
        candidates = [one.candidate() for one in attempts]
        winner = ranking.order(candidates)[0].number
        commits: dict[int, str] = {}
        for one in attempts:
            if not one.publishable or one.change.tree is None:
                continue
            of = f" (attempt {one.number} of {len(attempts)})" if len(attempts) > 1 else ""
            commits[one.number] = await change.commit(
                checkout,
                base,
                one.change.tree,
                f"{publish.bare_title(plan.title)}{of}\n\n"
                f"For #{task.number}, started by @{task.sender}.",
                author=f"{bot}[bot]",
                email=f"{self.settings.app_id}+{bot}[bot]@users.noreply.github.com",
            )
        url = plan.clone_url
        branches: dict[int, str] = {}
        if len(attempts) > 1:
            for number, sha in commits.items():
                branches[number] = f"{plan.attempts_prefix}-attempt-{number}"
                await gitops.push(checkout, url, await token.secret(), branches[number], rev=sha)
        closing = await self._closing(plan)
        versions = {
            n: self._version(plan, attempts[n - 1], candidates, branches, closing) for n in commits
        }
        chosen = versions[winner]
        if plan.mode == "same_branch":
            try:
                await gitops.push(checkout, url, await token.secret(), plan.push_branch,
                                  rev=commits[winner], force=False)  # fmt: skip
            except gitops.GitError as error:
                raise TaskFailed(
                    f"`{plan.push_branch}` moved while the agent worked, so nothing was pushed. "
                    "Comment `/codex fix` again to work on the new head."
                ) from error
            assert plan.pull_number is not None
            number, link = plan.pull_number, f"`{plan.push_branch}`"
            if plan.owned:
                await publish.update_pull(
                    github, task.repo, number, title=chosen["title"], body=chosen["body"]
                )
        else:
            looking = asyncio.create_task(  # a rerun's PR is looked up while the push runs
                publish.find_open(github, task.repo, head=plan.push_branch, base=plan.pr_base)
            )
            try:
                if plan.base_copy:
                    await gitops.push(checkout, url, await token.secret(), plan.base_copy, rev=base)
                await gitops.push(
                    checkout, url, await token.secret(), plan.push_branch, rev=commits[winner]
                )
                pull = await publish.open_draft(
                    github,
                    task.repo,
                    await looking,
                    head=plan.push_branch,
                    base=plan.pr_base,
                    title=chosen["title"],
                    body=chosen["body"],
                )
            finally:
                await settled(looking)
            number, link = pull.number, pull.url
        if plan.mode != "same_branch" or plan.owned:
            # First: `/codex pick` and `/codex continue` may come as soon as the PR shows.
            await self._remember(number, plan, attempts[winner - 1], versions, closing)
            await publish.set_labels(github, task.repo, number, chosen["labels"])
        return await self._done(github, attempts[winner - 1], link, plan, chosen["body"])

    async def _done(
        self, github: publish.Client, best: Attempt, link: str, plan: planning.Plan, body: str
    ) -> str:
        first = best.outcome.summary.strip().splitlines()[0] if best.outcome.summary else ""
        summary = safe_line(first, self.task.number, self.task.repo)
        mark = "⚠️" if best.outcome.stop_reason else "✅"
        if plan.mode == "same_branch" and not plan.owned:
            parts = [f"{mark} Pushed to {link}.", body]
        elif plan.mode == "same_branch":
            parts = [f"{mark} Pushed to {link} and updated this PR.", summary]
        else:
            parts = [f"{mark} Draft PR ready for review: {link}", summary]
        parts += [best.cache_note(), f"<sub>{self._took(best.worklog)}</sub>"]
        if best.outcome.stop_reason:
            parts.append(f"Incomplete: {best.outcome.stop_reason}.")
        text = "\n\n".join(part for part in parts if part)
        await self._finish(github, TaskStatus.DONE, text)
        return f"published to {link}"

    async def _closing(self, plan: planning.Plan) -> str | None:
        """The PR body's last line: `Fixes #N`, kept across `/codex continue` runs."""
        if plan.base_copy:
            task = self.task
            return (
                f"The head of #{task.number} is in a fork, which this app cannot push to. "
                f"This draft PR is based on `{plan.base_copy}`, a copy of that branch, so its "
                f"diff shows only the proposed changes; the author of #{task.number} can merge "
                f"`{plan.push_branch}` into their branch."
            )
        if plan.mode == "same_branch" and plan.pull_number is not None:
            raw = await self.redis.get(planning.run_key(self.task.repo, plan.pull_number))
            return str(json.loads(raw).get("closing") or "") if raw else ""
        return None

    def _version(
        self,
        plan: planning.Plan,
        one: Attempt,
        candidates: list[ranking.Candidate],
        branches: dict[int, str],
        closing: str | None,
    ) -> dict[str, Any]:
        """The PR's title, body and labels when it carries attempt `one`."""
        report = Report(
            number=self.task.number,
            repo=self.task.repo,
            summary=one.outcome.summary or "The agent stopped before writing a summary.",
            validation=one.outcome.validation,
            log=one.worklog,
            changed_files=one.change.files,
            duration=time.monotonic() - self.started,
            stop_reason=one.outcome.stop_reason,
            attempts=ranking.table(candidates, one.number, branches) if branches else "",
            cost=self.settings.cost(one.worklog.input_tokens, one.worklog.output_tokens),
        )
        labels = {INCOMPLETE: bool(one.outcome.stop_reason), FAILING: report.validation_failed}
        return {
            "title": publish.titled(plan.title, [name for name, on in labels.items() if on]),
            "body": render_pr_body(report, self.redact, closing, self.log_url),
            "labels": labels,
            "branch": branches.get(one.number, plan.push_branch),
        }

    async def _remember(
        self,
        number: int,
        plan: planning.Plan,
        best: Attempt,
        versions: dict[int, dict[str, Any]],
        closing: str | None,
    ) -> None:
        """What `/codex continue` and `/codex pick` need later, kept for 30 days."""
        run = {
            "branch": plan.push_branch,
            "stop_reason": best.outcome.stop_reason,
            "summary": best.outcome.summary,
            "commands": [step.command for step in best.worklog.steps if step.step][-25:],
            "closing": closing if closing is not None else f"Fixes #{self.task.number}",
            "attempts": versions if len(versions) > 1 or plan.mode != "same_branch" else {},
        }
        await self.redis.set(planning.run_key(self.task.repo, number), json.dumps(run), ex=RUN_TTL)

    async def _pick(self, github: publish.Client, token: TokenSource) -> str:
        """`/codex pick N`: the PR's branch moves to attempt N's commit, its body follows."""
        task = self.task
        raw = await self.redis.get(planning.run_key(task.repo, task.number))
        run = json.loads(raw) if raw else {}
        versions: dict[str, dict[str, Any]] = run.get("attempts") or {}
        if len(versions) < 2 or str(task.pick) not in versions:
            have = ", ".join(sorted(versions)) if len(versions) > 1 else "none"
            raise TaskFailed(
                f"this pull request has no attempt {task.pick} to move to (attempts with a "
                f"change: {have}). `/codex pick` works on draft PRs opened with `--attempts`."
            )
        chosen = versions[str(task.pick)]
        self._show_soon(github, TaskStatus.PUBLISHING, f"📤 Moving to attempt {task.pick}.")
        owner, name = task.repo.split("/", 1)
        clone_url = (await github.rest.repos.async_get(owner, name)).parsed_data.clone_url
        with tempfile.TemporaryDirectory(prefix="codex-") as workdir:
            checkout = Path(workdir) / "repo"
            sha = await gitops.clone(clone_url, await token.secret(), checkout, chosen["branch"])
            await gitops.push(checkout, clone_url, await token.secret(), run["branch"], rev=sha)
        await publish.update_pull(
            github, task.repo, task.number, title=chosen["title"], body=chosen["body"]
        )
        await publish.set_labels(github, task.repo, task.number, chosen["labels"])
        text = f"✅ This PR now carries attempt {task.pick} (`{chosen['branch']}`, {sha[:7]})."
        await self._finish(github, TaskStatus.DONE, text)
        return f"picked attempt {task.pick}"

    def _took(self, worklog: WorkLog) -> str:
        used_in, used_out = worklog.input_tokens, worklog.output_tokens
        cost = self.settings.cost(used_in, used_out)
        return (
            f"{time.monotonic() - self.started:.0f} s · {used_in + used_out} tokens "
            f"({used_in} in, {used_out} out) · ≈ ${cost:.4f}"
        )

    def _show_soon(self, github: publish.Client, phase: TaskStatus, text: str) -> None:
        """Show a passing phase in the background, in order after the ones before it: the task
        does not wait for GitHub to edit a comment. `_finish` waits for them all."""
        self.shown = time.monotonic()
        previous = self.showing

        async def show() -> None:
            if previous is not None:
                await previous
            await self._show(github, phase, text)

        self.showing = asyncio.create_task(show())

    async def _show(self, github: publish.Client, phase: TaskStatus, text: str) -> None:
        """Show the phase in the status comment; a GitHub hiccup here never fails the task."""
        self.shown = time.monotonic()
        if self.try_number > 1 and not phase.final:
            text = (
                f"🔁 Resuming after a worker restart, try {self.try_number} of "
                f"{self.max_tries}.\n\n{text}"
            )
        for last in (False, True):
            try:
                await status.show(
                    self.redis, github, self.task, phase, self.redact(text), self.try_number
                )
                return
            except Exception:
                log.warning("task %s: status comment failed", self.task.job_id, exc_info=True)
                if last or not phase.final or self.tokens is None:
                    return
                # The final word must land: a token GitHub refused (revoked, expired early)
                # is replaced once.
                with contextlib.suppress(Exception):
                    await self.tokens.renew()

    async def _finish(self, github: publish.Client, phase: TaskStatus, text: str) -> None:
        """Free the issue or PR for its next task, then say so: whoever reads "done" may
        trigger again at once."""
        lastrun = planning.lastrun_key(self.task)
        await self.redis.set(lastrun, json.dumps(self.started_at), ex=status.TTL)
        await removals_settled()  # whoever reads "done" finds no container left behind
        if self.showing is not None:
            await self.showing
        await queue.release(self.redis, self.task)
        await self._show(github, phase, text)


def _first(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]  # the first attempt that failed speaks for the rest
    return error


async def settled(work: asyncio.Task[Any]) -> None:
    """`work` is over: cancelled if it was still running, and its error (if any) seen, since
    the error that stopped the task first is the one reported."""
    if not work.done():
        work.cancel()
    await asyncio.wait([work])
    if not work.cancelled():
        work.exception()


def interrupted(tries: int) -> str:
    return (
        f"❌ The task was interrupted {tries} times (its worker stopped or died each time), "
        "so it was given up. Comment `/codex fix` to try again; if the workers keep "
        "stopping, their logs say why."
    )


async def give_up(deps: Deps, redis: ArqRedis, task: Task, tries: int) -> None:
    """The janitor's final word on a task whose worker died on its last try."""
    token = await gh.mint_token(deps.app_github, task.installation_id, task.repo)
    github = gh.token_client(deps.app_github, token)
    try:
        await queue.release(redis, task)
        await status.show(redis, github, task, TaskStatus.FAILED, interrupted(tries), tries)
    finally:
        with contextlib.suppress(Exception):
            await gh.revoke_token(github)


async def run_task(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    task = Task.model_validate(payload)
    log.info("task %s: started (delivery %s, try %d)", task.job_id, task.delivery_id,
             ctx["job_try"])  # fmt: skip
    if ctx["job_try"] > 1:
        state = await status.current(ctx["redis"], task.job_id)
        if state and TaskStatus(state["status"]).final:
            # An earlier try ended the task; its worker stopped before arq heard of it.
            log.info("task %s: already %s on an earlier try", task.job_id, state["status"])
            return f"already {state['status']} on an earlier try"
    beats: Heartbeat = ctx["heartbeat"]
    async with beats.running_task(task):
        run = TaskRun(ctx["deps"], ctx["redis"], task, ctx["job_try"], beats.max_tries)
        result = await run.run()
    log.info("task %s: %s", task.job_id, result)
    return result

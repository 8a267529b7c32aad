"""Every Redis key the app and the worker write, and how long each lives: one place to see what
Redis holds, why, and when it goes away.

| key | what it holds | lives |
| --- | --- | --- |
| `codex:seen:<trigger>` | a delivery or comment already handled | `SEEN_TTL` |
| `codex:active:<thread>` | the task running on an issue or PR | `while_running`; `LOCK_AHEAD` |
| `codex:cancel:<job>` | who asked a task to stop | `SEEN_TTL` |
| `codex:busy:<job>:<about>` | "already running" was said to `about` | `while_running` |
| `codex:role:<repo>:<login>` | a person's role, as GitHub answered | `ROLE_TTL` |
| `codex:refused:<repo>#<n>:<login>` | the one polite refusal was posted | `REFUSAL_TTL` |
| `codex:status:<job>` | the task's status, for the status comment | `STATUS_TTL` |
| `codex:comment:<job>` | the status comment's id and URL | `STATUS_TTL` |
| `codex:log:<id>` | the full log the task page serves | `LOG_TTL` |
| `codex:run:<repo>#<n>` | what the last run on a PR left (continue) | `RUN_TTL` |
| `codex:lastrun:<thread>` | when the last run there started | `STATUS_TTL` |
| `codex:alive:<job>` | the task's worker is alive | `ALIVE_TTL` |
| `codex:worker:<id>` | a worker is alive, and takes tasks or not (why) | `WORKER_TTL` |
| `codex:given-up:<job>` | one janitor writes a task's last word | `GIVEN_UP_TTL` |
| `codex:started:<job>` | when the task's first try started (its deadline) | `STATUS_TTL` |
| `codex:running:installation:<id>` | an installation's tasks holding a slot | members: `alive` |
| `codex:running:repo:<owner/name>` | a repository's tasks holding a slot | members: `alive` |

arq's own keys (`arq:queue`, `arq:job:<id>`, ...) are arq's.
"""

from __future__ import annotations

from datetime import timedelta

from app.settings import Settings

SEEN_TTL = timedelta(days=4)
"""Longer than the 3 days GitHub lets a delivery be redelivered."""
ROLE_TTL = 60
"""Seconds a collaborator role is trusted: a revoked writer stops within a minute."""
REFUSAL_TTL = 4 * 24 * 3600
STATUS_TTL = 4 * 24 * 3600
LOG_TTL = 30 * 24 * 3600
RUN_TTL = 30 * 24 * 3600
"""A PR can be continued or picked from for a month after its last run."""
ALIVE_TTL = 30
"""Seconds a running task's alive key outlives its worker's last beat: how long a dead worker
goes unnoticed."""
WORKER_TTL = 60
"""Seconds a worker's own key outlives its last beat; the reaper removes a worker's containers
only after that, so a Redis hiccup of a few seconds never costs a running task its sandbox."""
LOCK_AHEAD = 300
"""A live task's issue lock (`codex:active:`) is kept at least this many seconds ahead: long
enough for a dead worker's task to be started again before its lock could lapse."""
GIVEN_UP_TTL = 3600
"""Seconds one janitor holds the claim to write a dead task's final status."""


def while_running(settings: Settings) -> int:
    """Seconds a key must outlive any task: its timeout and the worker's margin to end it."""
    return settings.task_timeout + 120


def seen_key(trigger_id: str) -> str:
    return f"codex:seen:{trigger_id}"


def active_key(thread: str) -> str:
    return f"codex:active:{thread}"


def cancel_key(job_id: str) -> str:
    return f"codex:cancel:{job_id}"


def busy_key(job_id: str, about: str) -> str:
    """Marks that `about` (a person, a trigger's subject) was told `job_id` already runs."""
    return f"codex:busy:{job_id}:{about}"


def role_key(repo: str, login: str) -> str:
    return f"codex:role:{repo}:{login}"


def refused_key(repo: str, number: int, login: str) -> str:
    return f"codex:refused:{repo}#{number}:{login}"


def status_key(job_id: str) -> str:
    return f"codex:status:{job_id}"


def comment_key(job_id: str) -> str:
    return f"codex:comment:{job_id}"


def log_key(identifier: str) -> str:
    return f"codex:log:{identifier}"


def run_key(repo: str, number: int) -> str:
    """What the last run on a PR left for `/codex continue` and `/codex pick`."""
    return f"codex:run:{repo}#{number}"


def lastrun_key(thread: str) -> str:
    return f"codex:lastrun:{thread}"


def alive_key(job_id: str) -> str:
    return f"codex:alive:{job_id}"


def worker_key(worker_id: str) -> str:
    return f"codex:worker:{worker_id}"


def given_up_key(job_id: str) -> str:
    return f"codex:given-up:{job_id}"


def started_key(job_id: str) -> str:
    """When the task's first try started: a transient failure is tried again only while the
    task's deadline, counted from there, is not spent."""
    return f"codex:started:{job_id}"


def running_installation_key(installation_id: int) -> str:
    """The jobs of one installation that hold a slot under `MAX_TASKS_PER_INSTALLATION`."""
    return f"codex:running:installation:{installation_id}"


def running_repo_key(repo: str) -> str:
    """The jobs of one repository that hold a slot under `MAX_TASKS_PER_REPO`."""
    return f"codex:running:repo:{repo}"

"""Containers removed in the background: a task publishes while its sandboxes go away, and
the worker waits for them all before it stops (`removals_settled`)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

_removing: set[asyncio.Task[None]] = set()


def remove_in_background(removal: Coroutine[Any, Any, None]) -> None:
    """Run `removal` without waiting for it; `removals_settled()` waits for them all."""
    task = asyncio.create_task(removal)
    _removing.add(task)
    task.add_done_callback(_removing.discard)


async def removals_settled() -> None:
    """Wait until every container handed to background removal is gone."""
    while _removing:
        await asyncio.gather(*list(_removing), return_exceptions=True)

"""What one sandbox may hold of the shared egress proxy: connections, and lines in the log.

A sandbox that opens a thousand slow connections must not take the descriptors every other
sandbox needs, nor write a hundred megabytes of log saying so. `Caps` counts connections per
sandbox and in total; `LogBudget` lets each sandbox (and each kind of line) write a few lines per
window and then one line saying how many were suppressed.
"""

from __future__ import annotations

import logging
import resource
import time
from collections import Counter
from dataclasses import dataclass, field

DESCRIPTORS_PER_CONNECTION = 2
"""A client connection and, at most, its upstream connection."""
RESERVED_DESCRIPTORS = 64
"""For the listening socket, the control pipe, pooled upstream connections, logs."""


def descriptor_budget() -> int:
    """Client connections the process can hold, after raising its soft descriptor limit to the
    hard one (the proxy runs in its own process: these descriptors are its own)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return max(16, (soft - RESERVED_DESCRIPTORS) // DESCRIPTORS_PER_CONNECTION)


@dataclass
class Caps:
    per_sandbox: int = 64
    """Open client connections one sandbox may hold; more are answered 429."""
    total: int = 1024
    """Open client connections all sandboxes together may hold; more are closed unread."""
    open: Counter[str] = field(default_factory=Counter)

    def admit(self, ip: str) -> str | None:
        """Count a new connection from `ip`; None when within the caps, else why not (the
        connection counts either way until `leave`)."""
        self.open[ip] += 1
        if self.open.total() > self.total:
            return f"the proxy holds its limit of {self.total} connections for all sandboxes"
        if self.open[ip] > self.per_sandbox:
            return f"this sandbox holds its limit of {self.per_sandbox} open connections"
        return None

    def leave(self, ip: str) -> None:
        self.open[ip] -= 1
        if self.open[ip] <= 0:
            del self.open[ip]


@dataclass
class LogBudget:
    """At most `lines` log lines per key per `window` seconds; then one line with the count."""

    logger: logging.Logger
    lines: int = 30
    window: float = 10.0
    _used: dict[str, tuple[float, int, int]] = field(default_factory=dict)

    def log(self, key: str, level: int, message: str, *args: object) -> None:
        now = time.monotonic()
        start, used, suppressed = self._used.get(key, (now, 0, 0))
        if now - start >= self.window:
            if suppressed:
                self.logger.warning("egress %s: %d log lines suppressed", key, suppressed)
            start, used, suppressed = now, 0, 0
        if used < self.lines:
            self.logger.log(level, message, *args)
            used += 1
        else:
            suppressed += 1
        self._used[key] = (start, used, suppressed)
        if len(self._used) > 4096:  # keys are sandboxes: forget the quiet ones
            self._used = {k: v for k, v in self._used.items() if now - v[0] < self.window}

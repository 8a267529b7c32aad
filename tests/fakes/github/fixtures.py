"""Where GitHub's own published examples live on disk.

Every REST response and webhook payload the simulator produces starts from an example
GitHub publishes (npm packages `@octokit/openapi` and `@octokit/webhooks-examples`,
installed by `npm install` in tests/fakes). This module finds them relative to this file
and fails with an actionable message when they are missing.
"""

from __future__ import annotations

from pathlib import Path

FAKES_DIR = Path(__file__).resolve().parent.parent
NODE_MODULES = FAKES_DIR / "node_modules"
OPENAPI_JSON = NODE_MODULES / "@octokit" / "openapi" / "generated" / "api.github.com.json"
WEBHOOK_EXAMPLES_JSON = (
    NODE_MODULES / "@octokit" / "webhooks-examples" / "api.github.com" / "index.json"
)


class MissingFixturesError(RuntimeError):
    """GitHub's example data is not installed."""


def require(path: Path) -> Path:
    """Return `path`, or explain how to install it when it is missing."""
    if not path.is_file():
        raise MissingFixturesError(
            f"{path} is missing: the GitHub simulator needs GitHub's published examples. "
            f"Run `npm install` in {FAKES_DIR} (see package.json there)."
        )
    return path

"""Where setup mode puts the App it registered: the key file and `.env`, each written whole.

Both files hold secrets, so both are created with mode 0600, and each is written to a
temporary file beside it and renamed over the old one: a crash leaves the old file or the new
one, never half of either. Everything that can fail on bad input (the `.env` text) is computed
before the first write.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from app import manifest
from app.settings import SetupSettings

DEFAULT_KEY_PATH = Path("var/private-key.pem")


@dataclass(frozen=True)
class Registered:
    """What GitHub's manifest conversion handed over."""

    app_id: int
    html_url: str
    webhook_secret: str = field(repr=False)
    client_id: str
    client_secret: str = field(repr=False)
    pem: str = field(repr=False)

    @property
    def install_url(self) -> str:
        return self.html_url.rstrip("/") + "/installations/new"


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as sink:
            sink.write(text)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def save(settings: SetupSettings, registered: Registered) -> dict[str, str]:
    """Write the key and merge the App's settings into `.env`; returns what was set there."""
    key_path = settings.private_key_path or DEFAULT_KEY_PATH
    values = {
        "APP_ID": str(registered.app_id),
        "PRIVATE_KEY_PATH": str(key_path),
        "WEBHOOK_SECRET": registered.webhook_secret,
        "GITHUB_CLIENT_ID": registered.client_id,
        "GITHUB_CLIENT_SECRET": registered.client_secret,
    }
    env_file = settings.env_file
    existing = env_file.read_text() if env_file.exists() else ""
    text = manifest.merge_env(existing, values, drop=("PRIVATE_KEY",))
    write_private(key_path, registered.pem)
    write_private(env_file, text)
    return values

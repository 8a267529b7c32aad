"""Loading at start-up what the first webhook or task would otherwise load on its way.

githubkit keeps its REST models in modules imported on first use (each model's validator is
built as its module is imported); the openai SDK imports its API resources on first access and
builds its models' validators on first read. A fresh worker's first tasks paid that while they
ran, beside every other task starting with them; `warm` pays it before the first one (the
worker adds its model client's, `worker.model.backends.warm`).

`GITHUB_CALLS` lists every githubkit REST call the app and the worker make
(`tests/test_warmup.py` holds it to the source).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from types import ModuleType

from githubkit import GitHub

GITHUB_CALLS: dict[str, tuple[str, ...]] = {
    "apps": (
        "async_create_from_manifest",
        "async_create_installation_access_token",
        "async_revoke_installation_access_token",
    ),
    "issues": (
        "async_add_labels",
        "async_create_comment",
        "async_get",
        "async_list_comments",
        "async_remove_label",
        "async_update_comment",
    ),
    "pulls": (
        "async_create",
        "async_get",
        "async_list",
        "async_list_review_comments",
        "async_update",
    ),
    "reactions": (
        "async_create_for_issue",
        "async_create_for_issue_comment",
        "async_create_for_pull_request_review_comment",
    ),
    "repos": ("async_get", "async_get_collaborator_permission_level", "async_get_content"),
}
"""`github.rest.<namespace>.<method>`, by namespace."""


def warm_github() -> tuple[int, int]:
    """Import what every call in `GITHUB_CALLS` imports when it runs (its body's
    `from ..models import ...`; githubkit's models are complete once imported). Sends no
    request. Returns the models loaded and the calls whose imports failed (each on its own:
    one failure leaves the rest warm)."""
    github = GitHub("warm-up")  # held: its `rest` refers to it weakly
    loaded: set[str] = set()
    failed = 0
    for namespace, methods in GITHUB_CALLS.items():
        for method in methods:
            try:
                client_class = type(getattr(github.rest, namespace))
                models = _sibling(client_class.__module__, "models")
                function = getattr(client_class, method)
                for name in _imported_names(function.__code__.co_consts) - loaded:
                    if getattr(models, name, None) is not None:  # not a header's name
                        loaded.add(name)
            except Exception:  # a library that changed its layout: this call loads lazily
                failed += 1
    return len(loaded), failed


def _imported_names(constants: tuple[object, ...]) -> set[str]:
    """The class names among a function's constants: `from m import A, B` keeps ("A", "B")."""
    return {
        name
        for constant in constants
        if isinstance(constant, tuple)
        for name in constant
        if isinstance(name, str) and name[:1].isupper() and name.isidentifier()
    }


def warm(also: Callable[[], object] | None = None, what: str = "") -> str:
    """`warm_github`, then `also` (the worker's model client: `what` names it); a line for
    the log. A failure (a library that changed its layout) costs only the time it saves."""
    started = time.monotonic()
    try:
        count, failed = warm_github()
        if also is not None:
            also()
    except Exception as error:  # any failure here is only a missed speed-up
        return f"warm-up incomplete ({error!r}); the first tasks load the rest themselves"
    done = f"{count} GitHub models" + (f" and {what}" if also is not None else "")
    if failed:
        done += f" ({failed} GitHub calls could not be warmed: they load on first use)"
    return f"warmed up {done} in {time.monotonic() - started:.1f} s"


def _sibling(module: str, name: str) -> ModuleType:
    """`pkg.v2026_03_10.models` for `pkg.v2026_03_10.rest.issues`."""
    return importlib.import_module(module.rpartition(".rest.")[0] + "." + name)

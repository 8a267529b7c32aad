"""GitHub's error responses: `{"message", "documentation_url", "status"}` (+ `errors`).

Handlers raise `ApiError`; the server turns it into the JSON body GitHub sends, which
githubkit parses into its `BasicError` / `ValidationError` models.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

DOCS = "https://docs.github.com/rest"


class ApiError(Exception):
    def __init__(
        self, status: int, message: str | None = None, errors: list[dict[str, Any]] | None = None
    ) -> None:
        self.status = status
        self.message = message or HTTPStatus(status).phrase
        self.errors = errors
        super().__init__(f"{status} {self.message}")

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "documentation_url": DOCS}
        if self.errors is not None:
            body["errors"] = self.errors
        body["status"] = str(self.status)
        return body


def invalid(resource: str, field: str, code: str = "invalid", **extra: Any) -> ApiError:
    """422 Validation Failed for one field, the way GitHub reports it."""
    error = {"resource": resource, "field": field, "code": code, **extra}
    return ApiError(422, "Validation Failed", [error])


def custom(resource: str, message: str) -> ApiError:
    """422 Validation Failed with a free-text error (e.g. "A pull request already exists")."""
    return ApiError(
        422, "Validation Failed", [{"resource": resource, "code": "custom", "message": message}]
    )

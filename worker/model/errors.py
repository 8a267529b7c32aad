"""What goes wrong with the model API, told so that a user can act on it.

The SDK has already retried what is worth retrying (408, 409, 429, 5xx, timeouts, lost
connections) by the time an error gets here; a `ModelError` says what happened, how many
requests were sent, what the server said, and which setting to look at.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from http import HTTPStatus

import openai
from openai import AsyncOpenAI
from pydantic import BaseModel

from worker.protocols import ModelError


@contextlib.contextmanager
def model_errors(client: AsyncOpenAI) -> Iterator[None]:
    """Turn what the SDK raises once its retries are spent into a `ModelError`."""
    try:
        yield
    except openai.APIError as error:
        raise describe(error, client) from error
    except json.JSONDecodeError as error:
        raise unreadable(client, error.doc, "JSON") from error


def unreadable(client: AsyncOpenAI, reply: object, expected: str) -> ModelError:
    if isinstance(reply, BaseModel):
        reply = reply.model_dump_json(exclude_none=True, warnings=False)
    shown = one_line(reply if isinstance(reply, str) else repr(reply), 80)
    return ModelError(
        f"the model API at {client.base_url} sent a reply that is not {expected} "
        f"(it began: {shown!r}); check OPENAI_BASE_URL and MODEL_API"
    )


def describe(error: openai.APIError, client: AsyncOpenAI) -> ModelError:
    tries = _tries(error)
    after = f"after {tries} tr{'ies' if tries != 1 else 'y'}"
    if isinstance(error, openai.APITimeoutError):
        seconds = client.timeout if isinstance(client.timeout, float | int) else None
        within = f" within {seconds:g} s" if seconds else ""
        return ModelError(
            f"the model API did not answer{within} {after}; "
            "try again later, or raise MODEL_TIMEOUT if its answers are slow",
            tries=tries,
        )
    if isinstance(error, openai.APIConnectionError):
        return ModelError(
            f"could not reach the model API at {client.base_url} {after} ({_cause(error)}); "
            "check OPENAI_BASE_URL and the network",
            tries=tries,
        )
    if isinstance(error, openai.APIStatusError):
        return _status_error(error, tries, after)
    return ModelError(f"the model API sent an answer that could not be read: {error.message}")


def _status_error(error: openai.APIStatusError, tries: int, after: str) -> ModelError:
    status = error.status_code
    code = f"{status} {_phrase(status)}".strip()
    if status == 401:
        message = f"the model API refused the key ({code}); check OPENAI_API_KEY"
    elif status == 403:
        message = f"the model API denied access ({code}); check the key's permissions"
    elif status == 404:
        message = (
            f"the model API does not know this model or path ({code}); check CODEX_MODEL "
            "(or the repository's `model.name`), OPENAI_BASE_URL and MODEL_API"
        )
    elif status in (408, 409, 429) or status >= 500:
        message = f"the model API answered {code} {after}; try again later"
    else:
        message = f"the model API rejected the request ({code})"
    return ModelError(f"{message}. It said: {_said(error)}", status=status, tries=tries)


def _tries(error: openai.APIError) -> int:
    """How many requests were sent: the SDK numbers its retries in a request header."""
    try:
        return int(error.request.headers.get("x-stainless-retry-count", "0")) + 1
    except ValueError:
        return 1


def _said(error: openai.APIStatusError) -> str:
    """What the server said, on one short line."""
    body = error.body
    text = body.get("message") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text:
        text = error.response.text or "(no message)"
    return one_line(text, 300)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _cause(error: openai.APIError) -> str:
    cause = error.__cause__
    text = one_line(str(cause or ""), 200)
    return text or (type(cause).__name__ if cause else "connection failed")


def one_line(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"

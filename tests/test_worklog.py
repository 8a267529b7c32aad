"""The PR body: evidence from the record, under GitHub's size limit, with secrets masked."""

from __future__ import annotations

from worker.redact import Redactor
from worker.worklog import (
    PR_BODY_LIMIT,
    Report,
    Step,
    WorkLog,
    fence,
    inline_code,
    render_pr_body,
)


def report(steps: list[Step], validation: list[str], **kw: object) -> Report:
    return Report(
        number=7,
        summary="Fixed it.",
        validation=validation,
        log=WorkLog(steps=steps, input_tokens=100, output_tokens=20),
        changed_files=["calc.py"],
        duration=12.0,
        **kw,  # type: ignore[arg-type]
    )


def test_validation_shows_real_exit_codes_not_claims() -> None:
    steps = [
        Step(1, "pytest -q", 1, 0.5, "1 failed"),
        Step(2, "pytest -q", 0, 0.4, "1 passed"),
        Step(3, "ruff check", 1, 0.1, "E501"),
    ]
    body = render_pr_body(report(steps, ["pytest -q", "ruff check", "mypy ."]), Redactor())
    assert "`pytest -q`: ✅ exit 0 (step 2)" in body
    assert "`ruff check`: ❌ exit 1 (step 3)" in body
    assert "`mypy .`: ⚠️ named by the agent but never run" in body
    assert body.rstrip().endswith("Fixes #7")
    assert "<details>" in body and "1 failed" in body


def test_a_long_log_is_cut_in_the_middle_and_stays_under_the_limit() -> None:
    steps = [Step(i, f"cmd {i}", 0, 0.1, "x" * 3000) for i in range(1, 200)]
    body = render_pr_body(report(steps, []), Redactor())
    assert len(body) < PR_BODY_LIMIT
    assert "cmd 1`" in body and "cmd 199`" in body
    assert "steps omitted here" in body
    assert body.rstrip().endswith("Fixes #7")


def test_tokens_and_live_secrets_never_reach_the_body() -> None:
    token = "ghs_" + "A1b2" * 20
    new_token = "ghs_12345_" + "eyJhbGciOiJSUzI1NiJ9." * 10
    steps = [
        Step(1, f"echo {token}", 0, 0.1, f"{token}\n{new_token}\nsk-proj-{'z' * 40}\nhunter22")
    ]
    body = render_pr_body(report(steps, []), Redactor(["hunter22"]))
    for secret in (token, new_token, "sk-proj-", "hunter22"):
        assert secret not in body
    assert body.count("[REDACTED]") >= 4


def test_incomplete_runs_say_so_first() -> None:
    body = render_pr_body(report([], [], stop_reason="the step limit (3) was reached"), Redactor())
    assert body.startswith("> [!WARNING]\n> Incomplete: the step limit (3) was reached")


def test_code_survives_backticks_in_it() -> None:
    assert fence("a ``` b") == "````\na ``` b\n````"
    assert inline_code("echo `date`") == "`` echo `date` ``"

"""The PR body: evidence from the record, under GitHub's size limit, with secrets masked."""

from __future__ import annotations

import pytest

from worker.redact import Redactor
from worker.report.markdown import fence, inline_code
from worker.report.prbody import PR_BODY_LIMIT, Report, render_pr_body
from worker.report.worklog import Step, WorkLog
from worker.sandbox.output import OutputBuffer


def report(steps: list[Step], validation: list[str], **kw: object) -> Report:
    return Report(
        number=7,
        summary="Fixed it.",
        claimed=validation,
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


GITHUB_PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJK"
LONG_GHS = "ghs_" + "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9._x" * 13  # 511 characters, JWT-like
OPENAI_KEY = "sk-proj-" + "Ab3_Cd5-" * 12
RSA_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA7bq3Vn0bm5ZyvQ+LJkKQx1c2R9oVq4pZk7yV3e9mVQyXx0aB\n"
    "Proc-Type: 4,ENCRYPTED\n"
    "q1w2e3r4t5y6u7i8o9p0AsDfGhJkL==\n"
    "-----END RSA PRIVATE KEY-----"
)
PKCS8_KEY = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC0pkcs8body+/Z\n"
    "-----END PRIVATE KEY-----"
)
KEY_LINES = ("MIIEowIBAAKCAQEA7bq3Vn0bm5ZyvQ", "q1w2e3r4t5y6u7i8o9p0", "MIIEvQIBADANBgkqhk")
LIVE = "correct-horse-battery-staple"


@pytest.mark.parametrize(
    ("secret", "leaks"),
    [
        (GITHUB_PAT, ["github_pat_11ABCDEFG", "abcdefghijklmnopqrstuvwxyz0123456789"]),
        (LONG_GHS, ["eyJ0eXAiOiJKV1Qi"]),
        ("ghr_" + "R" * 76, ["R" * 20]),
        (OPENAI_KEY, ["Ab3_Cd5-"]),
        ("sk-ant-api03-" + "k" * 90, ["k" * 20]),
        (RSA_KEY, KEY_LINES[:2]),
        (PKCS8_KEY, KEY_LINES[2:]),
        (LIVE, [LIVE]),
    ],
    ids=["github_pat", "long ghs", "ghr", "sk-proj", "sk-ant", "rsa key", "pkcs8 key", "live"],
)
def test_no_credential_reaches_the_body_from_any_part_of_it(secret: str, leaks: list[str]) -> None:
    step = Step(1, f"curl -H 'Authorization: {secret}' x", 1, 0.1, f"Using:\n{secret}\ndone")
    log = WorkLog(steps=[step], notes=[f"token {secret}"], check=Step(None, "make", 1, 1, secret))
    body = render_pr_body(
        Report(7, f"Summary {secret}", [f"echo {secret}"], log, ["a.py"], 1.0), Redactor([LIVE])
    )
    for fragment in leaks:
        assert fragment not in body
    assert body.count("[REDACTED]") >= 5  # summary, check, claim, step command and output, note
    assert "Using:\n[REDACTED]\ndone" in body
    assert body.rstrip().endswith("Fixes #7")


def test_a_key_whose_end_was_cut_from_the_output_is_still_redacted() -> None:
    # The sandbox keeps the head and tail of long output: a key can lose its END line.
    buffer = OutputBuffer(1_000)
    buffer.add(("x" * 400 + "\n" + RSA_KEY + "\n").encode() + b"y\n" * 2_000)
    output = buffer.text()
    assert KEY_LINES[0] in output and "END RSA PRIVATE KEY" not in output
    body = render_pr_body(report([Step(1, "cat id_rsa", 0, 0.1, output)], []), Redactor())
    assert "bytes of output cut" in body
    for line in KEY_LINES[:2]:
        assert line not in body
    assert "[REDACTED]" in body


def test_a_secret_across_the_point_where_the_log_cuts_output_is_still_redacted() -> None:
    output = "a" * 990 + LIVE + "b" * 2_000
    body = render_pr_body(report([Step(1, "env", 0, 0.1, output)], []), Redactor([LIVE]))
    assert "characters cut" in body
    assert LIVE[:10] not in body and LIVE[-10:] not in body


def test_ordinary_words_and_short_values_are_not_taken_for_secrets() -> None:
    text = "risk-assessment-for-the-new-parser done; task-runner_configuration_ok"
    redact = Redactor(["", "ab"])
    redact.add("x")
    assert redact(text) == text


def test_a_huge_summary_and_a_long_log_keep_the_body_whole_and_under_the_limit() -> None:
    summary = "Fixed add().\n\n```python\n" + "print('a very long summary')\n" * 8_000 + "```\n"
    assert len(summary) > 200_000
    steps = [Step(i, f"cmd {i}", 0, 0.1, "x" * 3_000) for i in range(1, 100)]
    log = WorkLog(steps=steps, input_tokens=12_345, output_tokens=678)
    log.check = Step(None, "pytest -q", 0, 2.5, "3 passed")
    files = [f"src/module_{n}.py" for n in range(3)]
    body = render_pr_body(
        Report(7, summary, ["cmd 3"], log, files, 93.0, cost=0.0421),
        Redactor(),
        log_url="https://codex.example/logs/abc",
    )
    assert len(body) < PR_BODY_LIMIT
    assert body.startswith("## Summary\n\nFixed add().")
    assert "summary cut here" in body
    summary_part = body.split("## Validation", 1)[0]
    assert summary_part.count("```") == 2, "the cut summary closes its code fence"
    validation = body.split("## Validation", 1)[1].split("## Changed files", 1)[0]
    assert "`pytest -q`, run by the worker after the agent finished: ✅ passed" in validation
    assert "- `cmd 3`: ✅ exit 0 (step 3)" in validation
    changed = body.split("## Changed files", 1)[1].split("##", 1)[0]
    assert all(f"- `{name}`" in changed for name in files)
    assert "99 commands in 93 s; 12345 input and 678 output tokens (≈ $0.0421)." in body
    assert body.count("<details>\n<summary>Work log</summary>") == 1
    work_log = body.split("<details>\n<summary>Work log</summary>", 1)[1]
    assert "https://codex.example/logs/abc" in work_log
    assert "cmd 1`" in work_log and "cmd 99`" in work_log and "steps omitted here" in work_log
    assert work_log.rstrip().endswith("</details>\n\nFixes #7")


def test_a_cut_through_a_summary_s_details_block_leaves_nothing_open() -> None:
    summary = "<details><summary>Notes</summary>\n\n" + "note line\n" * 5_000 + "</details>"
    steps = [Step(1, "make", 0, 0.1, "ok")]
    body = render_pr_body(Report(7, summary, [], WorkLog(steps=steps), [], 1.0), Redactor())
    top = body.split("## Validation", 1)[0]
    assert "summary cut here" in top
    assert "<details>" not in top and "&lt;details>&lt;summary>Notes&lt;/summary>" in top
    assert body.count("<details>") == body.count("</details>") == 1  # the work log's own


def test_thousands_of_changed_files_are_counted_not_listed() -> None:
    files = [f"vendor/pkg/file_{n}.go" for n in range(5_000)]
    body = render_pr_body(Report(7, "Vendored.", [], WorkLog(), files, 1.0), Redactor())
    assert len(body) < PR_BODY_LIMIT
    assert "- `vendor/pkg/file_0.go`" in body and "more" in body.split("## Run")[0]
    assert body.rstrip().endswith("</details>\n\nFixes #7")


def test_command_output_keeps_head_and_tail_within_the_limit() -> None:
    buffer = OutputBuffer(1_000)
    for n in range(10_000):
        buffer.add(f"line {n}\n".encode())
    text = buffer.text()
    assert len(text) <= 1_000
    assert text.startswith("line 0\nline 1\n") and text.endswith("line 9998\nline 9999\n")
    head, rest = text.split("\n[... ", 1)
    cut, tail = rest.split(" bytes of output cut ...]\n", 1)
    assert int(cut) == buffer.total - len(head.encode()) - len(tail.encode())


def test_short_output_is_whole_even_when_a_character_spans_the_halves() -> None:
    buffer = OutputBuffer(1_000)
    data = "a" * 499 + "é" + "b" * 400
    for n in range(0, len(data.encode()), 7):
        buffer.add(data.encode()[n : n + 7])
    assert buffer.text() == data


def test_output_cut_mid_character_keeps_whole_characters_only() -> None:
    buffer = OutputBuffer(1_000)
    data = ("é€😀" * 2_000).encode()
    for n in range(0, len(data), 5):
        buffer.add(data[n : n + 5])  # chunks split characters too
    text = buffer.text()
    assert len(text) <= 1_000 and "bytes of output cut" in text
    assert "\ufffd" not in text
    head, tail = text.split("\n[... ", 1)[0], text.rsplit("...]\n", 1)[1]
    assert head and set(head) <= set("é€😀") and tail and set(tail) <= set("é€😀")


def test_the_end_line_is_taken_off_cut_and_uncut_output_alike() -> None:
    end = b"\nEND:0\n"
    short = OutputBuffer(1_000)
    short.add(b"hello")
    short.add(end)
    assert short.take_end(end) and short.text() == "hello"
    long = OutputBuffer(1_000)
    long.add(b"x" * 5_000 + b"tail")
    long.add(end)
    assert long.take_end(end)
    assert long.text().endswith("xtail") and "bytes of output cut" in long.text()
    lost = OutputBuffer(1_000)
    lost.add(b"partial")
    assert not lost.take_end(end), "no end line: the output was cut short on the way"

"""The work log as people read it: commands as written, each step named for what ran it, and
no terminal escape codes."""

from __future__ import annotations

import time

from worker.redact import Redactor
from worker.report.markdown import plain
from worker.report.prbody import Report, render_pr_body
from worker.report.worklog import Step, WorkLog, render_full, render_step

HEREDOC = "set -e\nexport PATH=$HOME/bin:$PATH\ncat > notes.md <<'EOF'\n# Notes\nline two\nEOF"


def body_of(*steps: Step) -> str:
    log = WorkLog(steps=list(steps), input_tokens=1, output_tokens=1)
    report = Report(number=7, summary="Done.", claimed=[], log=log, changed_files=[],
                    duration=1.0)  # fmt: skip
    return render_pr_body(report, Redactor())


def test_a_multi_line_command_is_shown_line_by_line_in_a_code_block() -> None:
    body = body_of(Step(1, HEREDOC, 0, 0.2, "ok"))
    assert f"**1.** → exit 0 (0.2 s)\n\n```sh\n{HEREDOC}\n```" in body
    assert "set -e export" not in body


def test_a_one_line_command_stays_inline() -> None:
    assert render_step(Step(2, "pytest -q\n", 0, 0.4, "")) == "**2.** `pytest -q` → exit 0 (0.4 s)"


def test_a_command_cannot_close_its_block_or_act_on_the_pull_request() -> None:
    hostile = "echo hi\n```\n<details><summary>x</summary>\n\n@octocat Fixes #1\n```\necho bye"
    rendered = render_step(Step(3, hostile, 0, 0.1, ""))
    opening, _, rest = rendered.partition("\n\n")
    assert opening == "**3.** → exit 0 (0.1 s)"
    assert rest.startswith("````sh\n") and rest.endswith("\n````"), "longer than any fence inside"
    assert rest[len("````sh\n") : -len("\n````")].count("````") == 0
    assert "Fixes #1" not in rendered, "a closing keyword in code is broken"


def test_a_maintenance_run_is_labelled_maintenance_not_setup() -> None:
    steps = (
        Step(None, "npm ci", 0, 3.0, "added 10 packages", kind="maintenance"),
        Step(1, "npm test", 0, 1.0, "pass"),
    )
    body = body_of(*steps)
    assert "**maintenance** `npm ci` → exit 0" in body and "**setup**" not in body
    full = render_full([WorkLog(steps=list(steps))])
    assert "--- maintenance: exit 0 (3.0 s)\n$ npm ci" in full and "setup" not in full
    assert "--- step 1: exit 0" in full


def test_the_setup_script_and_the_check_keep_their_names() -> None:
    log = WorkLog(steps=[Step(None, HEREDOC, 0, 2.0, "", kind="setup")])
    log.check = Step(None, "make test", 1, 1.0, "FAIL", kind="check")
    assert render_step(log.steps[0]).startswith("**setup** → exit 0 (2.0 s)\n\n```sh\nset -e\n")
    full = render_full([log])
    assert f"--- setup: exit 0 (2.0 s)\n$ {HEREDOC}" in full
    assert "--- repository check: exit 1 (1.0 s)\n$ make test\n\nFAIL" in full


NODE = (  # Jest under npm with colours forced on, as `npm test` prints on a terminal
    "\x1b[1m\x1b[31m FAIL \x1b[39m\x1b[22m \x1b[2msrc/\x1b[22m\x1b[1msum.test.js\x1b[22m\n"
    "  \x1b[32m✓\x1b[39m \x1b[2madds 1 + 2 (3 ms)\x1b[22m\n"
    "  \x1b[31m✕\x1b[39m \x1b[2msubtracts (1 ms)\x1b[22m\n"
    "\x1b[1mTests:\x1b[22m       \x1b[1m\x1b[31m1 failed\x1b[39m\x1b[22m, "
    "\x1b[1m\x1b[32m1 passed\x1b[39m\x1b[22m, 2 total\n"
    "npm \x1b[31mERR!\x1b[39m see \x1b]8;;https://docs.npmjs.com/cli\x1b\\the docs\x1b]8;;\x1b\\\n"
    "\x1b]0;npm test\x07\x1b[?25l\x1b[2K\x1b[1G⠋ installing\x1b(B\x1b[m\x1b[?25h"
)
NODE_AS_SEEN = (
    " FAIL  src/sum.test.js\n"
    "  ✓ adds 1 + 2 (3 ms)\n"
    "  ✕ subtracts (1 ms)\n"
    "Tests:       1 failed, 1 passed, 2 total\n"
    "npm ERR! see the docs\n"
    "⠋ installing"
)


def test_colour_codes_are_stripped_and_the_text_kept() -> None:
    assert plain(NODE) == NODE_AS_SEEN
    assert plain("no colours here") == "no colours here"


def test_a_stray_or_unterminated_escape_hides_nothing_after_its_line() -> None:
    assert plain("\x1b]0;a title never ended\nFAILED: 3 tests\n\x1b") == "\nFAILED: 3 tests\n"
    assert plain("\x9b31mred\x9b0m") == "red"


def test_a_flood_of_escapes_is_stripped_in_linear_time() -> None:
    started = time.monotonic()
    assert plain("\x1b[" * 200_000 + "x") == ""
    assert plain("\x1b]" * 200_000) == ""
    assert "\x1b" not in plain("\x1b[1;" * 100_000 + "ok")
    assert time.monotonic() - started < 1


def test_the_pr_body_and_the_full_log_show_no_escape_characters() -> None:
    step = Step(1, "npm test", 1, 2.0, NODE)
    body = body_of(step)
    assert "\x1b" not in body and "Tests:       1 failed, 1 passed, 2 total" in body
    full = render_full([WorkLog(steps=[step])])
    assert "\x1b" not in full and NODE_AS_SEEN in full


def test_a_secret_split_by_a_colour_code_is_still_redacted() -> None:
    secret = "hunter2-very-secret-value"
    step = Step(1, "npm run deploy", 0, 1.0, f"token: {secret[:7]}\x1b[0m{secret[7:]}")
    log = WorkLog(steps=[step], input_tokens=1, output_tokens=1)
    report = Report(number=7, summary="Done.", claimed=[], log=log, changed_files=[],
                    duration=1.0)  # fmt: skip
    body = render_pr_body(report, Redactor([secret]))
    assert secret not in body and "hunter2" not in body and "token: " in body

"""The work log as people read it: commands as written, each step named for what ran it."""

from __future__ import annotations

from worker.prbody import Report, render_pr_body
from worker.redact import Redactor
from worker.worklog import Step, WorkLog, render_full, render_step

HEREDOC = "set -e\nexport PATH=$HOME/bin:$PATH\ncat > notes.md <<'EOF'\n# Notes\nline two\nEOF"


def body_of(*steps: Step) -> str:
    log = WorkLog(steps=list(steps), input_tokens=1, output_tokens=1)
    report = Report(number=7, summary="Done.", validation=[], log=log, changed_files=[],
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
        Step(0, "npm ci", 0, 3.0, "added 10 packages", kind="maintenance"),
        Step(1, "npm test", 0, 1.0, "pass"),
    )
    body = body_of(*steps)
    assert "**maintenance** `npm ci` → exit 0" in body and "**setup**" not in body
    full = render_full([WorkLog(steps=list(steps))])
    assert "--- maintenance: exit 0 (3.0 s)\n$ npm ci" in full and "setup" not in full
    assert "--- step 1: exit 0" in full


def test_the_setup_script_and_the_check_keep_their_names() -> None:
    log = WorkLog(steps=[Step(0, HEREDOC, 0, 2.0, "", kind="setup")])
    log.validation = Step(-1, "make test", 1, 1.0, "FAIL", kind="check")
    assert render_step(log.steps[0]).startswith("**setup** → exit 0 (2.0 s)\n\n```sh\nset -e\n")
    full = render_full([log])
    assert f"--- setup: exit 0 (2.0 s)\n$ {HEREDOC}" in full
    assert "--- repository check: exit 1 (1.0 s)\n$ make test\n\nFAIL" in full

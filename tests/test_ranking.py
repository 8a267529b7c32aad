"""Best-of-N ranking and the attempts table, with plain data."""

from __future__ import annotations

from dataclasses import replace

import pytest

from worker.ranking import Candidate, diff_lines, order, table

BASE = Candidate(
    number=1, publishable=True, passed=True, failures=0, diff_lines=10, steps=5, tokens=900
)


def winner(*candidates: Candidate) -> int:
    return order(list(candidates))[0].number


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        ({"publishable": True, "passed": False}, {"publishable": False, "passed": True}),
        ({"passed": True}, {"passed": False}),
        ({"passed": True}, {"passed": None}),
        ({"passed": None}, {"passed": False}),
        ({"failures": 0}, {"failures": 1}),
        ({"diff_lines": 3}, {"diff_lines": 4}),
        ({"steps": 7}, {"steps": 8}),
    ],
    ids=[
        "publishable first",
        "passed over failed",
        "passed over not run",
        "not run over failed",
        "fewer failures",
        "smaller diff",
        "fewer steps",
    ],
)
def test_each_rule_decides_when_all_else_is_equal(
    better: dict[str, object], worse: dict[str, object]
) -> None:
    # The worse one has the lower number, which would win a tie: only the rule can beat it.
    good = replace(BASE, number=2, **better)  # type: ignore[arg-type]
    bad = replace(BASE, number=1, **worse)  # type: ignore[arg-type]
    assert winner(bad, good) == 2
    assert winner(good, bad) == 2


def test_the_rules_apply_in_order_each_outranking_the_ones_after_it() -> None:
    # Each candidate wins on one rule and loses on every rule after it.
    ranked = [
        replace(BASE, number=1, publishable=True, passed=False, failures=9, diff_lines=99),
        replace(BASE, number=2, publishable=False, passed=True, failures=0, diff_lines=1),
    ]
    assert winner(*ranked) == 1
    ranked = [
        replace(BASE, number=3, passed=True, failures=5, diff_lines=90, steps=40),
        replace(BASE, number=4, passed=False, failures=0, diff_lines=1, steps=1),
    ]
    assert winner(*ranked) == 3
    ranked = [
        replace(BASE, number=5, failures=1, diff_lines=90, steps=40),
        replace(BASE, number=6, failures=2, diff_lines=1, steps=1),
    ]
    assert winner(*ranked) == 5
    ranked = [
        replace(BASE, number=7, diff_lines=5, steps=40),
        replace(BASE, number=8, diff_lines=6, steps=1),
    ]
    assert winner(*ranked) == 7


def test_a_full_tie_goes_to_the_first_attempt_and_the_order_is_complete() -> None:
    four = [
        replace(BASE, number=4, passed=False),
        replace(BASE, number=3),
        replace(BASE, number=2, steps=6),
        replace(BASE, number=1, publishable=False),
    ]
    assert [c.number for c in order(four)] == [3, 2, 4, 1]
    assert winner(replace(BASE, number=2), replace(BASE, number=1)) == 1


def test_diff_size_counts_changed_lines_even_ones_that_look_like_headers() -> None:
    diff = (
        b"diff --git a/schema.sql b/schema.sql\n"
        b"--- a/schema.sql\n"
        b"+++ b/schema.sql\n"
        b"@@ -1,3 +1,3 @@\n"
        b" create table t (\n"
        b"--- an old comment\n"
        b"+++ a new comment\n"
        b"+-- and one more\n"
        b" );\n"
        b"diff --git a/b.txt b/b.txt\n"
        b"--- a/b.txt\n"
        b"+++ b/b.txt\n"
        b"@@ -1 +1 @@\n"
        b"-x\n"
        b"+y\n"
    )
    assert diff_lines(diff) == 5


def rows(markdown: str) -> dict[str, dict[str, str]]:
    """The table's rows by their first cell, each cell by its column's name."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split(" | ")]
    body = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]
    assert all(len(row) == len(header) for row in body), markdown
    return {row[0]: dict(zip(header, row, strict=True)) for row in body}


def test_the_table_shows_every_attempt_and_marks_the_one_this_pr_carries() -> None:
    candidates = [
        replace(BASE, number=2, passed=False, failures=1, diff_lines=12, steps=9, tokens=4_321),
        replace(BASE, number=1, passed=True, diff_lines=3, steps=4, tokens=1_234),
        replace(
            BASE, number=3, publishable=False, passed=None, diff_lines=0, steps=2, tokens=55,
            note="not publishable: touches .github/workflows | ci.yml",
        ),
    ]  # fmt: skip
    branches = {1: "codex/issue-12-attempt-1", 2: "codex/issue-12-attempt-2"}
    markdown = table(candidates, 1, branches)
    shown = rows(markdown)
    assert list(shown) == ["1 ⭐ (this PR)", "2", "3"]
    first, second, third = shown.values()
    assert first["validation"] == "✅ passed" and second["validation"] == "❌ failed"
    assert third["validation"] == "—"
    assert [row["diff (lines)"] for row in shown.values()] == ["3", "12", "0"]
    assert [row["steps"] for row in shown.values()] == ["4", "9", "2"]
    assert [row["tokens"] for row in shown.values()] == ["1234", "4321", "55"]
    assert second["branch"] == "`codex/issue-12-attempt-2`"
    assert third["branch"] == "not publishable: touches .github/workflows \\| ci.yml"
    assert "`/codex pick N`" in markdown

"""apply_patch: patches that fit apply exactly; ones that don't say which hunk and why."""

from __future__ import annotations

import pytest

from worker.agent.patch import Patch, PatchError, parse

CALC = """def add(a, b):
    return a + b


def sub(a, b):
    return a + b
"""
FIXED = CALC[: -len("+ b\n")] + "- b\n"


def patch(*body: str) -> str:
    return "\n".join(["*** Begin Patch", *body, "*** End Patch"])


def apply(text: str, files: dict[str, str]) -> dict[str, str | None]:
    parsed = parse(text)
    return parsed.apply({path: files.get(path) for path in parsed.paths})


def test_update_replaces_lines_and_keeps_the_rest() -> None:
    text = patch(
        "*** Update File: calc.py",
        "@@",
        " def sub(a, b):",
        "-    return a + b",
        "+    return a - b",
    )
    assert apply(text, {"calc.py": CALC}) == {"calc.py": FIXED}
    assert parse(text).summary() == "M calc.py (+1 -1)"


def test_add_and_delete_files() -> None:
    text = patch(
        "*** Add File: docs/new.md",
        "+# Title",
        "+",
        "+text",
        "*** Delete File: old.txt",
    )
    parsed = parse(text)
    assert parsed.paths == ["docs/new.md", "old.txt"]
    expected = {"docs/new.md": "# Title\n\ntext\n", "old.txt": None}
    assert apply(text, {"old.txt": "bye\n"}) == expected
    assert parsed.summary() == "A docs/new.md (+3), D old.txt"


def test_move_with_and_without_changes() -> None:
    text = patch(
        "*** Update File: calc.py",
        "*** Move to: lib/calc.py",
        "@@ def sub(a, b):",
        "-    return a + b",
        "+    return a - b",
    )
    assert parse(text).paths == ["calc.py", "lib/calc.py"]
    result = apply(text, {"calc.py": CALC})
    assert result == {"calc.py": None, "lib/calc.py": FIXED}
    assert parse(text).summary() == "R calc.py -> lib/calc.py (+1 -1)"

    rename = patch("*** Update File: a.txt", "*** Move to: b.txt")
    assert apply(rename, {"a.txt": "x\n"}) == {"a.txt": None, "b.txt": "x\n"}
    assert parse(rename).summary() == "R a.txt -> b.txt"


def test_several_hunks_apply_in_order_and_lines_are_those_of_the_original() -> None:
    text = patch(
        "*** Update File: calc.py",
        "@@",
        " def add(a, b):",
        "-    return a + b",
        "+    return a + b  # sum",
        "@@",
        " def sub(a, b):",
        "-    return a + b",
        "+    return a - b",
    )
    assert apply(text, {"calc.py": CALC})["calc.py"] == (
        "def add(a, b):\n    return a + b  # sum\n\n\ndef sub(a, b):\n    return a - b\n"
    )


def test_anchor_picks_the_first_match_after_it() -> None:
    source = "class A:\n    x = 1\n\nclass B:\n    x = 1\n"
    text = patch("*** Update File: m.py", "@@ class B:", "-    x = 1", "+    x = 2")
    assert apply(text, {"m.py": source})["m.py"] == source[:-2] + "2\n"


def test_stacked_anchors_narrow_the_search() -> None:
    source = "class A:\n    def f(self):\n        pass\nclass B:\n    def f(self):\n        pass\n"
    text = patch(
        "*** Update File: m.py",
        "@@ class B:",
        "@@     def f(self):",
        "-        pass",
        "+        return 1",
    )
    assert apply(text, {"m.py": source})["m.py"] == source[: -len("pass\n")] + "return 1\n"


def test_anchor_with_only_added_lines_inserts_after_it() -> None:
    text = patch("*** Update File: calc.py", "@@ def add(a, b):", "+    '''Add.'''")
    result = apply(text, {"calc.py": CALC})["calc.py"]
    assert result == CALC.replace("b):\n", "b):\n    '''Add.'''\n", 1)


def test_added_lines_without_context_go_at_the_end() -> None:
    text = patch("*** Update File: notes.txt", "@@", "+two")
    assert apply(text, {"notes.txt": "one\n"}) == {"notes.txt": "one\ntwo\n"}


def test_context_matches_despite_trailing_whitespace_then_any_whitespace() -> None:
    trailing = "def f():   \n    return 1\n"
    text = patch("*** Update File: f.py", "@@", " def f():", "-    return 1", "+    return 2")
    assert apply(text, {"f.py": trailing})["f.py"] == "def f():   \n    return 2\n"

    reindented = patch("*** Update File: f.py", "@@", " def f():", "-  return 1", "+    return 2")
    tabbed = {"f.py": "def f():\n\treturn 1\n"}
    assert apply(reindented, tabbed)["f.py"] == "def f():\n    return 2\n"


def test_an_exact_match_wins_over_a_loose_one() -> None:
    source = "x = 1 \nx = 1\n"
    text = patch("*** Update File: f.py", "@@", "-x = 1", "+x = 2")
    assert apply(text, {"f.py": source})["f.py"] == "x = 1 \nx = 2\n"


def test_blank_patch_lines_are_blank_context() -> None:
    text = patch("*** Update File: f.txt", "@@", " a", "", "-b", "+c")
    assert apply(text, {"f.txt": "a\n\nb\n"})["f.txt"] == "a\n\nc\n"
    assert apply(text, {"f.txt": "a\n  \nb\n"})["f.txt"] == "a\n  \nc\n"


def test_end_of_file_prefers_the_last_occurrence() -> None:
    source = "end\nmiddle\nend\n"
    text = patch("*** Update File: f.txt", "@@", "-end", "+fin", "*** End of File")
    assert apply(text, {"f.txt": source})["f.txt"] == "end\nmiddle\nfin\n"


def test_final_newline_state_and_crlf_are_kept() -> None:
    text = patch("*** Update File: f.txt", "@@", " a", "-b", "+c")
    assert apply(text, {"f.txt": "a\nb"})["f.txt"] == "a\nc"
    assert apply(text, {"f.txt": "a\r\nb\r\n"})["f.txt"] == "a\r\nc\r\n"


def test_a_trailing_blank_context_line_past_the_end_is_forgiven() -> None:
    text = patch("*** Update File: f.txt", "@@", " a", "-b", "+c", "")
    assert apply(text + "\n", {"f.txt": "a\nb\n"})["f.txt"] == "a\nc\n"


def test_unmatched_hunk_names_file_hunk_lines_and_nearest_text() -> None:
    text = patch(
        "*** Update File: calc.py",
        "@@",
        " def add(a, b):",
        "+    '''Add.'''",
        "@@",
        " def sub(a, b):",
        "-    return a * b",
        "+    return a - b",
    )
    with pytest.raises(PatchError) as caught:
        apply(text, {"calc.py": CALC})
    assert str(caught.value) == (
        "calc.py: hunk 2 did not match: could not find these lines (after line 1):\n"
        "    def sub(a, b):\n"
        "        return a * b\n"
        "The closest text is at line 5:\n"
        "    def sub(a, b):\n"
        "        return a + b\n"
        "Read the file again and resend the patch."
    )


def test_missing_anchor_is_reported() -> None:
    text = patch("*** Update File: calc.py", "@@ def mul(a, b):", "-    return a + b", "+    x")
    with pytest.raises(PatchError, match=r"calc.py: hunk 1 did not match: could not find the @@"):
        apply(text, {"calc.py": CALC})


def test_ambiguous_context_is_refused_with_the_places() -> None:
    text = patch("*** Update File: calc.py", "@@", "-    return a + b", "+    return 0")
    with pytest.raises(PatchError) as caught:
        apply(text, {"calc.py": CALC})
    message = str(caught.value)
    assert message.startswith("calc.py: hunk 1 is ambiguous: these lines occur 2 times")
    assert "at lines 2, 6" in message
    assert "'@@ line'" in message


def test_missing_and_existing_files_are_refused() -> None:
    update = patch("*** Update File: calc.py", "@@", "-x", "+y")
    with pytest.raises(PatchError, match=r"^calc.py does not exist; use \*\*\* Add File"):
        apply(update, {})
    add = patch("*** Add File: notes.txt", "+hi")
    with pytest.raises(PatchError, match=r"^notes.txt already exists; use \*\*\* Update File"):
        apply(add, {"notes.txt": "old\n"})
    with pytest.raises(PatchError, match=r"gone\.txt does not exist, so it cannot be deleted"):
        apply(patch("*** Delete File: gone.txt"), {})
    move = patch("*** Update File: a.txt", "*** Move to: b.txt")
    with pytest.raises(PatchError, match=r"cannot move a\.txt to b\.txt: b\.txt already exists"):
        apply(move, {"a.txt": "a\n", "b.txt": "b\n"})


def test_all_or_nothing() -> None:
    text = patch(
        "*** Add File: new.txt",
        "+new",
        "*** Delete File: old.txt",
        "*** Update File: calc.py",
        "@@",
        "-no such line",
        "+x",
    )
    current: dict[str, str | None] = {"new.txt": None, "old.txt": "old\n", "calc.py": CALC}
    with pytest.raises(PatchError, match=r"calc\.py: hunk 1 did not match"):
        parse(text).apply(current)
    assert current == {"new.txt": None, "old.txt": "old\n", "calc.py": CALC}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"must start with a line '\*\*\* Begin Patch'"),
        ("*** Update File: a\n@@\n-x\n+y\n*** End Patch", "must start with"),
        ("*** Begin Patch\n*** Update File: a\n@@\n-x\n+y", r"must end with a line '\*\*\* End"),
        ("*** Begin Patch\n*** End Patch", "the patch changes no files"),
        (
            "*** Begin Patch\n*** Update File: a.py\n@@\n x\n-y\n*y\n*** End Patch",
            r"^line 6 of the patch: expected a line starting with ' ', '\+' or '-', got: '\*y'$",
        ),
        ("*** Begin Patch\n*** Add File: a\nhello\n*** End Patch", "line 3 .* starts with '\\+'"),
        ("*** Begin Patch\n*** Edit File: a\n*** End Patch", r"line 2 .* got: '\*\*\* Edit File"),
        ("*** Begin Patch\n*** Update File: a\n*** End Patch", "a has no hunks"),
        (
            "*** Begin Patch\n*** Update File: a\n@@ x\n*** End Patch",
            "an @@ line must be followed",
        ),
        (
            "*** Begin Patch\n*** Delete File: a\n*** Update File: a\n@@\n+x\n*** End Patch",
            "a appears more than once",
        ),
    ],
)
def test_malformed_patches_explain_themselves(text: str, message: str) -> None:
    with pytest.raises(PatchError, match=message):
        parse(text)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc/passwd", "is absolute"),
        ("../outside.txt", "contains '..'"),
        ("src/../../x", "contains '..'"),
        (".git/config", "is inside .git"),
        ("sub/.git/hooks/pre-commit", "is inside .git"),
        (".", "is not a file path"),
    ],
)
def test_paths_outside_the_checkout_are_refused(path: str, message: str) -> None:
    for header in ("*** Delete File: ", "*** Add File: "):
        with pytest.raises(PatchError, match=f"^line 2 of the patch: .*{message}"):
            parse(patch(header + path))
    move = patch("*** Update File: a.txt", f"*** Move to: {path}")
    with pytest.raises(PatchError, match=f"^line 3 of the patch: .*{message}"):
        parse(move)


def test_paths_are_normalised_and_markers_tolerate_whitespace() -> None:
    parsed = parse("\n  *** Begin Patch \r\n*** Delete File: ./src//a.py\r\n*** End Patch  \n\n")
    assert isinstance(parsed, Patch)
    assert parsed.paths == ["src/a.py"]

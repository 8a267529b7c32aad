"""Placing a patch's hunks in a file: the in-order, whitespace-tolerant search, and the
errors that tell the model exactly which hunk did not match and what the file holds instead.

Each hunk is searched for after the previous one, first exactly, then ignoring trailing
whitespace, then ignoring surrounding whitespace. An `@@ line` anchor moves the search to just
after the first line matching it; a hunk without an anchor must match in exactly one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

REREAD = "Read the file again and resend the patch."
_LEVELS: tuple[Callable[[str], str], ...] = (str, str.rstrip, str.strip)

Body = tuple[tuple[str, str], ...]  # a hunk's lines: (" " | "-" | "+", text)


class PatchError(Exception):
    """A patch that cannot be parsed or applied; the message is written for the model."""


@dataclass(frozen=True)
class Hunk:
    anchors: tuple[str, ...]
    lines: Body
    end_of_file: bool = False

    @property
    def old(self) -> list[str]:
        """The lines the file must hold where the hunk applies: context and removed lines."""
        return [text for op, text in self.lines if op != "+"]


def apply_hunks(path: str, text: str, hunks: tuple[Hunk, ...]) -> str:
    """`text` with `hunks` applied, keeping its line endings and final-newline state."""
    newline = "\r\n" if "\r\n" in text and text.count("\r\n") == text.count("\n") else "\n"
    lines = text.split(newline) if text else [""]
    final_newline = lines[-1] == ""
    if final_newline:
        lines.pop()
    out: list[str] = []
    done = 0
    for number, hunk in enumerate(hunks, 1):
        at, body = _locate(f"{path}: hunk {number}", lines, done, hunk)
        out += lines[done:at]
        for op, added in body:
            if op == "+":
                out.append(added)
            else:
                if op == " ":
                    out.append(lines[at])  # the file's own text, whatever whitespace matched
                at += 1
        done = at
    out += lines[done:]
    return newline.join(out) + (newline if final_newline and out else "")


def _locate(name: str, lines: list[str], start: int, hunk: Hunk) -> tuple[int, Body]:
    """Where `hunk` applies (an index into `lines`, at or after `start`), and the lines to apply."""
    for anchor in hunk.anchors:
        hits = _matches(lines, [anchor], start, at_end=False)
        if not hits:
            raise PatchError(
                f"{name} did not match: could not find the @@ line{_after(start)}:\n"
                f"{_quote([anchor])}\n{REREAD}"
            )
        start = hits[0] + 1
    if not hunk.old:
        return (start if hunk.anchors and not hunk.end_of_file else len(lines)), hunk.lines
    body = hunk.lines
    hits = _matches(lines, hunk.old, start, hunk.end_of_file)
    if not hits and body[-1] == (" ", ""):  # models often add a blank line past the file's end
        body = body[:-1]
        hits = _matches(lines, [text for op, text in body if op != "+"], start, at_end=True)
    if not hits:
        raise PatchError(
            f"{name} did not match: could not find these lines{_after(start)}:\n"
            f"{_quote(hunk.old)}\n{_nearest(lines, hunk.old, start)}{REREAD}"
        )
    if len(hits) > 1 and not hunk.anchors:
        where = ", ".join(str(hit + 1) for hit in hits)
        raise PatchError(
            f"{name} is ambiguous: these lines occur {len(hits)} times{_after(start)}, at lines "
            f"{where}:\n{_quote(hunk.old)}\nAdd context lines, or an '@@ line' naming the "
            "enclosing function or class, so that the hunk matches one place."
        )
    return hits[0], body


def _matches(lines: list[str], old: list[str], start: int, at_end: bool) -> list[int]:
    """Where `old` occurs in `lines` from `start`, at the strictest level that finds it."""
    last = len(lines) - len(old)
    for key in _LEVELS:
        wanted = [key(line) for line in old]
        if at_end and last >= start and [key(line) for line in lines[last:]] == wanted:
            return [last]
        hits = [
            i
            for i in range(start, last + 1)
            if all(key(lines[i + k]) == wanted[k] for k in range(len(old)))
        ]
        if hits:
            return hits
    return []


def _nearest(lines: list[str], old: list[str], start: int) -> str:
    """A hint showing the file text most like `old`, or nothing if no line resembles it."""
    score, best = 0, start
    for i in range(start, len(lines)):
        pairs = zip(lines[i:], old, strict=False)
        same = sum(bool(want.strip()) and have.strip() == want.strip() for have, want in pairs)
        if same > score:
            score, best = same, i
    if not score:
        return ""
    return f"The closest text is at line {best + 1}:\n{_quote(lines[best : best + len(old)])}\n"


def _after(start: int) -> str:
    return f" (after line {start})" if start else ""


def _quote(lines: list[str]) -> str:
    return "\n".join(f"    {line}" for line in lines)

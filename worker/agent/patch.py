"""The apply_patch format (OpenAI Codex's): parse a patch, then apply it to file texts.

This code performs no I/O: the caller reads the files named by `Patch.paths`, hands their texts
to `Patch.apply`, and writes back what it returns. Every failure is a `PatchError` whose message
tells the model what did not match and what to do, and nothing is returned unless every file
change applies.

Placing each hunk inside its file is `worker.agent.hunks`'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from worker.agent.hunks import Hunk, PatchError, apply_hunks

__all__ = ["Patch", "PatchError", "parse"]

BEGIN, END, END_OF_FILE = "*** Begin Patch", "*** End Patch", "*** End of File"
ADD, DELETE, UPDATE = "*** Add File: ", "*** Delete File: ", "*** Update File: "
MOVE = "*** Move to: "


@dataclass(frozen=True)
class AddFile:
    path: str
    lines: tuple[str, ...]

    def apply(self, current: Mapping[str, str | None]) -> dict[str, str | None]:
        if current[self.path] is not None:
            raise PatchError(f"{self.path} already exists; use *** Update File to change it")
        return {self.path: "".join(line + "\n" for line in self.lines)}

    def summary(self) -> str:
        return f"A {self.path} (+{len(self.lines)})"


@dataclass(frozen=True)
class DeleteFile:
    path: str

    def apply(self, current: Mapping[str, str | None]) -> dict[str, str | None]:
        if current[self.path] is None:
            raise PatchError(f"{self.path} does not exist, so it cannot be deleted")
        return {self.path: None}

    def summary(self) -> str:
        return f"D {self.path}"


@dataclass(frozen=True)
class UpdateFile:
    path: str
    move_to: str | None
    hunks: tuple[Hunk, ...]

    def apply(self, current: Mapping[str, str | None]) -> dict[str, str | None]:
        text = current[self.path]
        if text is None:
            raise PatchError(f"{self.path} does not exist; use *** Add File to create it")
        if self.move_to is None:
            return {self.path: apply_hunks(self.path, text, self.hunks)}
        if current[self.move_to] is not None:
            raise PatchError(
                f"cannot move {self.path} to {self.move_to}: {self.move_to} already exists"
            )
        return {self.path: None, self.move_to: apply_hunks(self.path, text, self.hunks)}

    def summary(self) -> str:
        ops = [op for hunk in self.hunks for op, _ in hunk.lines]
        counts = f" (+{ops.count('+')} -{ops.count('-')})" if self.hunks else ""
        if self.move_to is None:
            return f"M {self.path}{counts}"
        return f"R {self.path} -> {self.move_to}{counts}"


FileChange = AddFile | DeleteFile | UpdateFile


@dataclass(frozen=True)
class Patch:
    changes: tuple[FileChange, ...]

    @property
    def paths(self) -> list[str]:
        """Every path the patch reads or writes: the caller maps each to its text, or None."""
        found: list[str] = []
        for change in self.changes:
            found.append(change.path)
            if isinstance(change, UpdateFile) and change.move_to is not None:
                found.append(change.move_to)
        return found

    def apply(self, current: Mapping[str, str | None]) -> dict[str, str | None]:
        """The new text of each changed path (None: delete it), or PatchError for the first
        change that does not apply."""
        result: dict[str, str | None] = {}
        for change in self.changes:
            result.update(change.apply(current))
        return result

    def summary(self) -> str:
        return ", ".join(change.summary() for change in self.changes)


def parse(text: str) -> Patch:
    lines = text.replace("\r\n", "\n").split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    if first >= len(lines) or lines[first].strip() != BEGIN:
        raise PatchError(f"the patch must start with a line '{BEGIN}'")
    if last == first or lines[last].strip() != END:
        raise PatchError(f"the patch must end with a line '{END}'")
    changes: list[FileChange] = []
    i = first + 1
    while i < last:
        line = lines[i]
        if line.startswith(ADD):
            path, i = _path(line[len(ADD) :], i), i + 1
            body: list[str] = []
            while i < last and not lines[i].startswith("***"):
                if not lines[i].startswith("+"):
                    raise PatchError(
                        f"line {i + 1} of the patch: every line of an added file starts with "
                        f"'+', got: {lines[i]!r}"
                    )
                body.append(lines[i][1:])
                i += 1
            changes.append(AddFile(path, tuple(body)))
        elif line.startswith(DELETE):
            changes.append(DeleteFile(_path(line[len(DELETE) :], i)))
            i += 1
        elif line.startswith(UPDATE):
            path, i = _path(line[len(UPDATE) :], i), i + 1
            move_to = None
            if i < last and lines[i].startswith(MOVE):
                move_to, i = _path(lines[i][len(MOVE) :], i), i + 1
            hunks, i = _hunks(lines, i, last)
            if not hunks and move_to is None:
                raise PatchError(f"line {i + 1} of the patch: *** Update File: {path} has no hunks")
            changes.append(UpdateFile(path, move_to, tuple(hunks)))
        elif not line.strip():
            i += 1
        else:
            raise PatchError(
                f"line {i + 1} of the patch: expected '{ADD}', '{DELETE}' or '{UPDATE}' and a "
                f"path, got: {line!r}"
            )
    if not changes:
        raise PatchError("the patch changes no files")
    patch = Patch(tuple(changes))
    _check_distinct(patch.paths)
    return patch


def _hunks(lines: list[str], i: int, last: int) -> tuple[list[Hunk], int]:
    hunks: list[Hunk] = []
    anchors: list[str] = []
    body: list[tuple[str, str]] = []
    while i < last:
        line = lines[i]
        if line.strip() == END_OF_FILE:
            if not body:
                raise PatchError(f"line {i + 1} of the patch: '{END_OF_FILE}' ends an empty hunk")
            hunks.append(Hunk(tuple(anchors), tuple(body), end_of_file=True))
            anchors, body = [], []
        elif line.startswith("***"):
            break
        elif line.startswith("@@"):
            if body:
                hunks.append(Hunk(tuple(anchors), tuple(body)))
                anchors, body = [], []
            if line[2:].strip():
                anchors.append(line[3:] if line.startswith("@@ ") else line[2:])
        elif line == "":  # an empty line is empty context (models drop the space)
            body.append((" ", ""))
        elif line[0] in " +-":
            body.append((line[0], line[1:]))
        else:
            raise PatchError(
                f"line {i + 1} of the patch: expected a line starting with ' ', '+' or '-', "
                f"got: {line!r}"
            )
        i += 1
    if body:
        hunks.append(Hunk(tuple(anchors), tuple(body)))
    elif anchors:
        raise PatchError(f"line {i} of the patch: an @@ line must be followed by the hunk's lines")
    return hunks, i


def _path(raw: str, i: int) -> str:
    path = raw.strip()
    parts = PurePosixPath(path).parts
    where = f"line {i + 1} of the patch: {path!r}"
    if path.startswith("/"):
        raise PatchError(f"{where} is absolute; use a path relative to the repository root")
    if ".." in parts:
        raise PatchError(f"{where} contains '..'; use a path inside the repository")
    if ".git" in parts:
        raise PatchError(f"{where} is inside .git, which a patch may not change")
    normal = "/".join(part for part in parts if part != ".")
    if not normal:
        raise PatchError(f"{where} is not a file path")
    return normal


def _check_distinct(paths: list[str]) -> None:
    for path in paths:
        if paths.count(path) > 1:
            raise PatchError(
                f"{path} appears more than once in the patch; put all of its changes under one "
                "*** Update File"
            )

"""Keeping command output bounded: the head and the tail survive, the middle is cut."""

from __future__ import annotations


class OutputBuffer:
    """Collects a byte stream while holding at most `limit` bytes of it; its `text()` is at
    most `limit` characters, the note of what was cut included."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.limit // 2 - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            del self.tail[: max(0, len(self.tail) - self.limit // 2)]

    def take_end(self, end: bytes) -> bool:
        """Remove `end` from the end of the stream; False when the stream does not end so."""
        if self.total == len(self.head) + len(self.tail):  # nothing cut: all of it is here
            whole = self.head + self.tail
            if not whole.endswith(end):
                return False
            self.head, self.tail = whole[: -len(end)], bytearray()
        elif self.tail.endswith(end):
            del self.tail[-len(end) :]
        else:
            return False
        self.total -= len(end)
        return True

    def text(self) -> str:
        if self.total == len(self.head) + len(self.tail):
            return (self.head + self.tail).decode("utf-8", "replace")
        # The note's room, for the largest count it can show; what it shows is never more.
        half = max(0, self.limit - len(marker(self.total))) // 2
        head = whole_characters(bytes(self.head[:half]), at_end=True)
        tail = whole_characters(bytes(self.tail[max(0, len(self.tail) - half) :]), at_end=False)
        cut = self.total - len(head) - len(tail)
        return head.decode("utf-8", "replace") + marker(cut) + tail.decode("utf-8", "replace")


def marker(cut: int) -> str:
    return f"\n[... {cut} bytes of output cut ...]\n"


def whole_characters(data: bytes, at_end: bool) -> bytes:
    """`data` without the part of a UTF-8 character the cut left at its end (or its start)."""
    if not at_end:
        start = 0
        while start < min(3, len(data)) and 0x80 <= data[start] < 0xC0:
            start += 1
        return data[start:]
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return data
        if byte >= 0xC0:
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= needed else data[:-back]
    return data

"""The report: one row per figure, beside its baseline as a ratio, printed as it is measured
and gathered into the Markdown table the README carries."""

from __future__ import annotations

import sys
from dataclasses import dataclass

HEADER = "| figure | measured | vs baseline | notes |\n|---|---|---|---|"


@dataclass(frozen=True)
class Row:
    figure: str
    measured: str
    ratio: str
    """The measurement over its baseline, e.g. `1.27x`; `1.00x` on the baseline's own row."""
    notes: str = ""


def ratio(value: float, baseline: float, digits: int = 2) -> str:
    return f"{value / baseline:.{digits}f}x" if baseline > 0 else "n/a"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def target(met: bool, text: str) -> str:
    """`target < 1.3x: met` / `... MISSED`, so a missed target stands out in the table."""
    return f"target {text}: {'met' if met else 'MISSED'}"


def show(rows: list[Row]) -> list[Row]:
    """Print each row as one line now (the run takes minutes); return them for the table."""
    for row in rows:
        notes = f"  [{row.notes}]" if row.notes else ""
        print(f"{row.figure}: {row.measured}  ({row.ratio}){notes}", flush=True)
    return rows


def table(rows: list[Row]) -> str:
    lines = [HEADER]
    lines += [f"| {r.figure} | {r.measured} | {r.ratio} | {r.notes} |" for r in rows]
    return "\n".join(lines)


def progress(message: str) -> None:
    """What the run is doing, on stderr, so stdout stays the figures and the table."""
    print(f"... {message}", file=sys.stderr, flush=True)

"""Percentiles and aligned text tables: what every part prints."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Latencies", "Table", "percentile", "verdict"]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by the nearest-rank method: always a measured value."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Latencies:
    """Latencies in milliseconds."""

    values: tuple[float, ...]

    @property
    def p50(self) -> float:
        return percentile(self.values, 50)

    @property
    def p99(self) -> float:
        return percentile(self.values, 99)

    @property
    def max(self) -> float:
        return max(self.values) if self.values else math.nan


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


class Table:
    """Rows of cells printed with aligned columns; numbers right-aligned."""

    def __init__(self, title: str, headers: Sequence[str]) -> None:
        self.title = title
        self.headers = list(headers)
        self.rows: list[list[str]] = []
        self.notes: list[str] = []

    def add(self, *cells: object) -> None:
        self.rows.append([_cell(cell) for cell in cells])

    def note(self, text: str) -> None:
        self.notes.append(text)

    def render(self) -> str:
        widths = [len(h) for h in self.headers]
        for row in self.rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))

        def line(cells: Sequence[str], *, header: bool = False) -> str:
            parts = []
            for i, cell in enumerate(cells):
                numeric = not header and _numeric(cell)
                parts.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
            return "  ".join(parts).rstrip()

        out = [self.title, line(self.headers, header=True)]
        out.append("  ".join("-" * w for w in widths))
        out += [line(row) for row in self.rows]
        out += [f"  {note}" for note in self.notes]
        return "\n".join(out)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"
    return str(value)


def _numeric(cell: str) -> bool:
    return cell.rstrip("%").replace(".", "", 1).replace("-", "", 1).isdigit() or cell == "-"

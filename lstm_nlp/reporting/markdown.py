"""Markdown for the reports (report.md, eval-*.md): one table writer for every table in them."""

from __future__ import annotations

from typing import Any, Iterable


def table(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    """A pipe table: the first column left-aligned (names), the others right-aligned (numbers).
    Cells are written with str(); format numbers before."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def metric_table(values: dict[str, str]) -> str:
    """Two columns, metric and value: a score report's summary."""
    return table(["metric", "value"], values.items())

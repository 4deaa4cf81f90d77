"""Everything the user sees: a rich progress bar and metric tables on stderr, `metrics.jsonl`
and the Markdown/JSON reports. The only module that imports rich."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

from lstm_nlp.reporting import markdown

console = Console(stderr=True, highlight=False)
if not console.is_terminal:  # logs and CI: wide enough for the metric table on one line
    console.width = max(console.width, 120)

COLUMNS = [  # (key, header, format) of the per-validation table
    ("step", "step", "{:d}"), ("epoch", "epoch", "{:d}"), ("train_loss", "train loss", "{:.3f}"),
    ("val_loss", "val loss", "{:.3f}"), ("train_acc", "train acc", "{:.1%}"),
    ("val_acc", "val acc", "{:.1%}"), ("val_ppl", "val ppl", "{:.2f}"),
    ("val_bleu", "val BLEU", "{:.2f}"), ("val_f1", "val F1", "{:.1%}"), ("lr", "lr", "{:.2e}"),
    ("tokens_per_s", "tok/s", "{:,.0f}"),
]


def counted(n: int, noun: str, plural: str = "") -> str:
    """`1 line`, `2 lines`, `1,234 texts`: a count and its noun in the right number."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def mute() -> None:
    """Print nothing from here on: a training process other than rank 0, which speaks for the
    run (its own errors go to torchrun, training/distributed.py)."""
    console.quiet = True


def info(message: str) -> None:
    console.print(message)


def warning(message: str) -> None:
    """`message` as written: brackets in it (`pip install 'lstm-nlp[plots]'`, a path) are
    text, not rich markup."""
    console.print(f"[bold yellow]warning:[/] {escape(message)}", soft_wrap=True)


def error(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def _fmt(fmt: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


def format_metric(key: str, value: Any) -> str:
    """`value` of the metrics-row column `key` as the validation table shows it (accuracy
    as a percentage, BLEU and perplexity with 2 decimals, loss with 3), so that a summary
    line says what the table said; a key without a column gets 4 significant digits."""
    fmt = next((f for k, _, f in COLUMNS if k == key), "{:.4g}")
    return _fmt(fmt, value)


def to_json(data: Any, indent: int | None = None) -> str:
    """JSON that strict parsers read: a float that is not finite (NaN, Infinity, which
    json.dumps would write as bare words no JSON parser need accept) becomes null."""
    return json.dumps(_finite(data), indent=indent, allow_nan=False)


def _finite(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


class Reporter:
    """Progress bar during training, one table row per validation; with a TensorBoard `board`
    (reporting/board.py), the same numbers as event files."""

    def __init__(self, metrics_path: Path | None, unit: str = "tok", board: Any = None):
        self.metrics_path = metrics_path
        self.unit = unit  # what the trainer counts: tokens, or texts for a classifier
        self.board = board
        self.progress: Progress | None = None
        self.task = None

    def start(self, total: int | None, completed: int) -> None:
        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=console, transient=False)
        self.task = self.progress.add_task("train", total=total, completed=completed, status="")
        self.progress.start()

    def advance(self, step: int, loss: float, tokens_per_s: float,
                total: int | None = None, log: bool = False) -> None:
        """Called every step; `total` re-estimates the last step (time-limited runs) for the ETA;
        `log` asks for a line in non-terminal output (log files, CI)."""
        if log and not console.is_terminal:  # a log file gets a line instead of a live bar
            console.print(f"step {step:,}  loss {loss:.3f}  {tokens_per_s:,.0f} {self.unit}/s")
        if log and self.board is not None:
            self.board.train(step, loss, tokens_per_s)
        if self.progress is not None:
            self.progress.update(self.task, completed=step, total=total or
                                 self.progress.tasks[0].total,
                                 status=f"loss {loss:.3f}  {tokens_per_s:,.0f} {self.unit}/s")

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if self.board is not None:
            self.board.flush()

    def validation(self, row: dict[str, Any], best: bool) -> None:
        cols = [c for c in COLUMNS if c[0] in row]
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        for key, header, _ in cols:
            table.add_column(f"{self.unit}/s" if key == "tokens_per_s" else header,
                             justify="right")
        table.add_row(*[_fmt(fmt, row[key]) for key, _, fmt in cols],
                      style="green" if best else None)
        console.print(table)
        if self.metrics_path is not None:
            with open(self.metrics_path, "a", encoding="utf-8") as f:
                f.write(to_json(row) + "\n")
        if self.board is not None:
            self.board.validation(row)

    def stop_reason(self) -> str:
        """Asked after each validation: a reason to stop the run there, as early stopping
        does ('' to go on). A run never stops for its reporter; a search's trial stops when
        its pruner gives up on it (lstm_nlp/search/trial.py)."""
        return ""


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def truncate_metrics(path: Path, step: int) -> list[dict[str, Any]]:
    """On resume: forget validations logged after the checkpoint we resume from; the rows kept."""
    rows = [r for r in read_metrics(path) if r["step"] <= step]
    path.write_text("".join(to_json(r) + "\n" for r in rows), encoding="utf-8")
    return rows


def curve_table_md(rows: list[dict[str, Any]], unit: str) -> str:
    """The validation rows of metrics.jsonl as a Markdown table (throughput in `unit`/s)."""
    if not rows:
        return "_no validation yet_\n"
    cols = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    header = [f"{unit}/s" if key == "tokens_per_s" else h for key, h, _ in cols]
    return markdown.table(header, ([_fmt(f, r.get(k)) for k, _, f in cols] for r in rows))


def print_scores(title: str, scores: dict[str, Any]) -> None:
    table = Table(title=title, show_edge=False, box=None, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in scores.items():
        if isinstance(value, float):
            value = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.2f}" \
                if abs(value) >= 1 else f"{value:.4f}"
        elif isinstance(value, int):
            value = f"{value:,}"
        table.add_row(key, str(value))
    console.print(table)


def print_confusion(classes: list[str], confusion: list[list[int]],
                    per_class: dict[str, dict[str, float]]) -> None:
    """Per-class precision/recall/F1 and the confusion matrix (rows: true, columns: predicted)."""
    table = Table(title="per class; confusion matrix (rows: true, columns: predicted)",
                  show_edge=False, box=None, header_style="bold")
    for header in ["class", "precision", "recall", "F1", "support", *classes]:
        table.add_column(header, justify="left" if header == "class" else "right")
    for name, row in zip(classes, confusion):
        c = per_class[name]
        table.add_row(name, f"{c['precision']:.1%}", f"{c['recall']:.1%}", f"{c['f1']:.1%}",
                      f"{c['support']:,}", *[f"{v:,}" for v in row])
    console.print(table)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(to_json(data, indent=2) + "\n", encoding="utf-8")


class LiveTable:
    """A table redrawn in place on a terminal while work goes on elsewhere (a search's trials);
    in a log file nothing is drawn, and the caller prints a line per event instead. The last
    table stays on the screen."""

    def __init__(self) -> None:
        self.live: Live | None = None

    def __enter__(self) -> LiveTable:
        if console.is_terminal:
            self.live = Live(console=console, refresh_per_second=2, transient=False)
            self.live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def show(self, title: str, header: list[str], rows: list[list[str]]) -> None:
        """Redraw: `title` above, the newest rows that fit the terminal."""
        if self.live is None:
            return
        table = Table(title=title, title_justify="left", show_edge=False, box=None,
                      header_style="bold")
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i in (1, len(header) - 1) else "right",
                             overflow="ellipsis", no_wrap=i == len(header) - 1)
        for row in rows[-max(console.height - 6, 5):]:
            table.add_row(*row)
        self.live.update(table)

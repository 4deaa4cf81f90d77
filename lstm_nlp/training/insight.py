"""What a run shows beyond its tables: the report's figures (training curves from metrics.jsonl;
a classifier's test confusion matrix), the gate statistics of the best model on validation text,
and the TensorBoard board (`train.tensorboard`). A missing matplotlib, or a figure the disk
refuses, is a one-line warning: the trained run and its report stand without them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from lstm_nlp.reporting import board as boards
from lstm_nlp.reporting import console as reporting
from lstm_nlp.reporting import figures
from lstm_nlp.tasks import gates
from lstm_nlp.tasks.registry import TaskSpec

HISTOGRAM_TEXTS = 8  # validation texts whose gate values TensorBoard's histograms show


def board_for(recipe: Any, run_dir: Path, spec: TaskSpec, model: torch.nn.Module, task: Any
              ) -> boards.Board | None:
    """The run's TensorBoard writer when the recipe asks for one (train.tensorboard), with
    gate histograms of the model on validation text at each validation."""
    if not recipe.train.tensorboard:
        return None
    return boards.Board(run_dir / boards.FOLDER, spec.unit, lambda: gates.validation_traces(
        spec.name, model, task, HISTOGRAM_TEXTS))


def headline_metric(spec: TaskSpec, stopping_metric: str, rows: list[dict[str, Any]]) -> str:
    """The validation score the curves show beside the loss: the one that picks best.pt, or,
    when that is the loss, the first the rows have of BLEU, perplexity, accuracy."""
    key = spec.metrics[stopping_metric][0]
    if key != "val_loss":
        return key
    present = {k for r in rows for k in r}
    return next((k for k in ("val_bleu", "val_ppl", "val_acc") if k in present), key)


def report_figures(run_dir: Path, recipe: Any, spec: TaskSpec, rows: list[dict[str, Any]],
                   best_step: int | None, test: dict | None) -> tuple[str, list[Path]]:
    """The report's figures, written beside it, and the Markdown that shows them: the curves
    (when there was a validation), the test confusion matrix (a classifier's)."""
    start = time.perf_counter()
    wanted = []  # (file, caption, drawing)
    if rows:
        smoothed = bool(getattr(recipe.train, "label_smoothing", 0.0))
        metric = headline_metric(spec, recipe.train.early_stopping_metric, rows)
        wanted.append(("curves.png", "training curves", lambda: figures.curves(
            rows, metric, best_step, spec.unit_long, f"{recipe.name}: training", smoothed)))
    if test and "confusion" in test:
        wanted.append(("confusion.png", "test confusion matrix", lambda: figures.confusion(
            test["classes"], test["confusion"], f"{recipe.name}: test confusion matrix")))
    written = [(run_dir / name, md) for name, caption, draw in wanted
               if (md := figures.embedded(run_dir / name, caption, draw))]
    if not written:
        return "", []
    reporting.info(f"figures: {', '.join(p.name for p, _ in written)} in "
                   f"{time.perf_counter() - start:.2f}s")
    return "## Figures\n\n" + "\n".join(md for _, md in written), [p for p, _ in written]


def report_sections(run_dir: Path, recipe: Any, spec: TaskSpec, rows: list[dict[str, Any]],
                    best_step: int | None, test: dict | None, model: torch.nn.Module,
                    task: Any, board: boards.Board | None) -> tuple[str, str]:
    """The figures section and the gate statistics section of a run report (the best model
    `model`, the trainer's `task` for its validation data); the board gets the figures and is
    closed."""
    figures_md, paths = report_figures(run_dir, recipe, spec, rows, best_step, test)
    gates_md = gates.validation_section(spec.name, model, task)
    if board is not None:
        with figures.optional("figures in TensorBoard"):
            board.images(rows[-1]["step"] if rows else 0, paths)
        board.close()
    return figures_md, gates_md

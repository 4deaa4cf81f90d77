"""The `train` command, the same for every task (the work is in training/run.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lstm_nlp.cli.app import TrainDeviceOpt


def train(
    recipe: Annotated[Path, typer.Argument(metavar="RECIPE", help="YAML recipe file.")],
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="KEY=VALUE", help="Override a recipe key: --set train.lr=0.0005 (repeatable).")] = None,
    run_dir: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Run folder \\[runs/<recipe name>].")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing run folder.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run from its last.pt (a run with no checkpoint yet starts afresh).")] = False,
    device: TrainDeviceOpt = None,
) -> None:
    """Train a model from a recipe; writes checkpoints, metrics.jsonl and report.md."""
    from lstm_nlp.training.run import train as train_run

    train_run(recipe, set_ or [], run_dir, overwrite=overwrite, resume=resume, device=device)

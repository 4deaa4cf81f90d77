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
    nproc: Annotated[Optional[int], typer.Option(metavar="N", min=1, help="Train in N processes on this machine (torchrun; each takes its share of the batches and of train.threads, or a GPU each) \\[1].")] = None,
) -> None:
    """Train a model from a recipe; writes checkpoints, metrics.jsonl and report.md."""
    if nproc is not None and nproc > 1:
        from lstm_nlp.training import launch

        launch.check(nproc, recipe, set_ or [], device)
        code = launch.launch(nproc, launch.worker_args(recipe, set_ or [], run_dir, overwrite,
                                                       resume, device))
        if code:
            raise typer.Exit(code)
        return
    from lstm_nlp.training.run import train as train_run

    train_run(recipe, set_ or [], run_dir, overwrite=overwrite, resume=resume, device=device)

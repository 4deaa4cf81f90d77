"""The `inspect` command, for a model of any task (the work is in tasks/inspect.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from lstm_nlp.cli.app import Model


def inspect(
    model: Model,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", metavar="FILE", help="Text whose gate statistics to compute; - = stdin (also read when piped).")] = None,
    json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout, for tools.")] = False,
    heatmap: Annotated[Optional[Path], typer.Option(metavar="FILE", help="Gate heatmap PNG of the first line \\[inspect-NAME.png beside the model; NAME: the input file's name, or stdin].")] = None,
) -> None:
    """Show what a checkpoint holds (task, recipe, parameters per layer, vocabulary, training)
    and, given text, the saturation of every LSTM gate and a heatmap of the most saturated
    cells."""
    from lstm_nlp.tasks.inspect import inspect as run_inspect

    run_inspect(model, input, sys.stdin, sys.stdout, json, heatmap)

"""The `average` command: checkpoint averaging (the work is in training/average.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def average(
    sources: Annotated[list[Path], typer.Argument(metavar="RUN_OR_FILES", help="A run folder (with --last) or checkpoint files.")],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE", help="Where to write the averaged checkpoint.")],
    last: Annotated[Optional[int], typer.Option(metavar="N", min=1, help="Average a run folder's N newest kept checkpoints (train.keep_checkpoints).")] = None,
) -> None:
    """Average the weights of checkpoints of one model into a checkpoint every verb takes."""
    from rich.markup import escape

    from lstm_nlp.reporting.console import console
    from lstm_nlp.training import checkpoint
    from lstm_nlp.training.average import average_checkpoints, checkpoints_to_average

    paths = checkpoints_to_average(sources, last)
    payload = average_checkpoints(paths)
    payload = {k: v for k, v in payload.items() if k not in ("format", "version")}
    checkpoint.save(output, payload)
    console.print(escape(f"averaged {len(paths)} checkpoints ({', '.join(str(p) for p in paths)}) "
                         f"into {output}"), soft_wrap=True)

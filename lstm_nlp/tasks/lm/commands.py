"""The `generate` command (parsing only: the work is in verbs.py, imported when it runs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from lstm_nlp.cli.app import DeviceOpt, Model, Output, PrecisionOpt, output_stream, positive


def generate(
    model: Model,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", metavar="FILE", help="Read prompts from this file, not stdin.")] = None,
    output: Output = None,
    max_tokens: Annotated[Optional[int], typer.Option(metavar="N", min=1, help="Tokens per continuation \\[recipe].")] = None,
    temperature: Annotated[Optional[float], typer.Option(metavar="X", min=0.0, help="Softmax temperature; 0 = most likely token \\[recipe].")] = None,
    top_k: Annotated[Optional[int], typer.Option(metavar="N", min=0, help="Sample among the k most likely; 0 = all \\[recipe].")] = None,
    top_p: Annotated[Optional[float], typer.Option(metavar="X", max=1.0, callback=positive, help="Nucleus sampling mass; 1 = all \\[recipe].")] = None,
    seed: Annotated[int, typer.Option(metavar="N", help="Sampling seed: same seed and input, same text.")] = 1,
    batch_size: Annotated[Optional[int], typer.Option(metavar="N", min=1, help="Prompts per batch \\[recipe].")] = None,
    precision: PrecisionOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Continue each prompt line from stdin (or --input) with a language model: one line out per
    line in; an empty line starts from the start of a text."""
    from lstm_nlp.tasks.lm import verbs

    options = dict(max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                   seed=seed, batch_size=batch_size,
                   precision=precision.value if precision else None, device=device)
    with output_stream(output) as out:
        verbs.generate(model, input, out, sys.stdin, **options)


COMMANDS = [generate]

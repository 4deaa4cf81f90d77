"""The `translate` command (parsing only: the work is in verbs.py, imported when it runs)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from lstm_nlp.cli.app import DeviceOpt, Model, Output, PrecisionOpt, output_stream, positive


class Backend(str, Enum):
    torch = "torch"
    onnxruntime = "onnxruntime"


def translate(
    model: Model,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", metavar="FILE", help="Read this file, not stdin.")] = None,
    output: Output = None,
    beam: Annotated[Optional[int], typer.Option(metavar="N", min=1, help="Beam size; 1 = greedy \\[recipe].")] = None,
    length_penalty: Annotated[Optional[float], typer.Option(metavar="X", min=0.0, help="GNMT alpha \\[recipe].")] = None,
    max_len_ratio: Annotated[Optional[float], typer.Option(metavar="X", callback=positive, help="Max output/input length \\[recipe].")] = None,
    batch_size: Annotated[Optional[int], typer.Option(metavar="N", min=1, help="Sentences per batch \\[recipe].")] = None,
    precision: PrecisionOpt = None,
    device: DeviceOpt = None,
    backend: Annotated[Backend, typer.Option(metavar="torch|onnxruntime", help="torch: a run or checkpoint; onnxruntime: a folder of lstm-nlp export --format onnx (fp32, CPU).")] = Backend.torch,
) -> None:
    """Translate lines from stdin (or --input) to stdout: one output line per input line."""
    from lstm_nlp.tasks.translate import verbs

    options = dict(beam=beam, length_penalty=length_penalty, max_len_ratio=max_len_ratio,
                   batch_size=batch_size, precision=precision.value if precision else None,
                   device=device, backend=backend.value)
    with output_stream(output) as out:
        verbs.translate(model, input, out, sys.stdin, **options)


COMMANDS = [translate]

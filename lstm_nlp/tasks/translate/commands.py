"""The `translate` command (parsing only: the work is in verbs.py, imported when it runs)."""

from __future__ import annotations

import contextlib
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from lstm_nlp.cli.app import DeviceOpt, Models, Output, PrecisionOpt, output_stream, positive


class Backend(str, Enum):
    torch = "torch"
    onnxruntime = "onnxruntime"


def translate(
    model: Models,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", metavar="FILE", help="Read this file, not stdin.")] = None,
    output: Output = None,
    beam: Annotated[Optional[int], typer.Option(metavar="N", min=1, help="Beam size; 1 = greedy \\[recipe].")] = None,
    length_penalty: Annotated[Optional[float], typer.Option(metavar="X", min=0.0, help="GNMT alpha \\[recipe].")] = None,
    max_len_ratio: Annotated[Optional[float], typer.Option(metavar="X", callback=positive, help="Max output/input length \\[recipe].")] = None,
    batch_size: Annotated[Optional[int], typer.Option(metavar="N", min=1, help="Sentences per batch \\[recipe].")] = None,
    precision: PrecisionOpt = None,
    device: DeviceOpt = None,
    n_best: Annotated[Optional[int], typer.Option("--n-best", metavar="K", min=1, help="The K best translations of each line, Moses n-best format (n ||| translation ||| score); K <= beam.")] = None,
    scores: Annotated[bool, typer.Option("--scores", help="Add the log-probability and the length-normalised score, tab-separated.")] = False,
    alignments: Annotated[bool, typer.Option("--alignments", help="Add word alignments from attention (Pharaoh i-j), tab-separated.")] = False,
    attention: Annotated[Optional[Path], typer.Option("--attention", metavar="FILE", help="Write each line's attention over the source pieces as JSON lines.")] = None,
    backend: Annotated[Backend, typer.Option(metavar="torch|onnxruntime", help="torch: a run or checkpoint; onnxruntime: a folder of lstm-nlp export --format onnx (fp32, CPU).")] = Backend.torch,
) -> None:
    """Translate lines from stdin (or --input) to stdout: one output line per input line (a
    block of --n-best lines)."""
    from lstm_nlp.tasks.translate import verbs
    from lstm_nlp.tasks.translate.output import Details

    options = dict(beam=beam, length_penalty=length_penalty, max_len_ratio=max_len_ratio,
                   batch_size=batch_size, precision=precision.value if precision else None,
                   device=device, backend=backend.value)
    with output_stream(output) as out, \
            output_stream(attention) if attention else contextlib.nullcontext() as att:
        details = Details(n_best, scores, alignments, att)
        verbs.translate(model, input, out, sys.stdin, details=details, **options)


COMMANDS = [translate]

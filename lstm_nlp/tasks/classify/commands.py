"""The `classify` command (parsing only: the work is in verbs.py, imported when it runs)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from lstm_nlp.cli.app import DeviceOpt, Models, Output, PrecisionOpt, output_stream


class Format(str, Enum):
    tsv = "tsv"
    jsonl = "jsonl"


def classify(
    model: Models,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", metavar="FILE", help="Read texts from this file, not stdin.")] = None,
    output: Output = None,
    format: Annotated[Format, typer.Option("--format", "-f", metavar="tsv|jsonl", help="tsv: label, tab, probability; jsonl: every class's probability.")] = Format.tsv,
    batch_size: Annotated[Optional[int], typer.Option(metavar="N", min=1, help="Texts per batch \\[recipe].")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="jsonl: each token's weight (attention pooling's, else gradient x input).")] = False,
    precision: PrecisionOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Classify each line of stdin (or --input): one output line per input line, in order."""
    from lstm_nlp.tasks.classify import verbs

    with output_stream(output) as out:
        verbs.classify(model, input, out, sys.stdin, format.value, batch_size,
                       precision.value if precision else None, device, explain)


COMMANDS = [classify]

"""The `export` command (parsing only: the work is in export/verb.py)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from lstm_nlp.cli.app import Model


class ExportFormat(str, Enum):
    onnx = "onnx"
    safetensors = "safetensors"


def export(
    model: Model,
    output: Annotated[Path, typer.Option("--output", "-o", metavar="DIR", help="The export folder to write.")],
    format: Annotated[ExportFormat, typer.Option("--format", metavar="onnx|safetensors", help="onnx: encoder and decoder-step graphs (translation); safetensors: the weights (any task).")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing export folder.")] = False,
) -> None:
    """Export a model: ONNX graphs for onnxruntime, or safetensors weights, with its tokenizers
    and a manifest.json."""
    from rich.markup import escape

    from lstm_nlp.export.verb import export as run_export
    from lstm_nlp.reporting.console import info

    manifest = run_export(model, format.value, output, overwrite)
    files = sorted(p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file())
    info(escape(f"exported {manifest['source']} ({manifest['task']}, {format.value}) to "
                f"{output}: {', '.join(files)}"))

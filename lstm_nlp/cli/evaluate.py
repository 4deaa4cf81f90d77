"""The `eval` command for every task (the first model's task answers: tasks/evaluate.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from lstm_nlp.cli.app import DeviceOpt, Models, PrecisionOpt


def eval_(
    model: Models,
    split: Annotated[Optional[str], typer.Option(metavar="NAME", help="Split of the recipe's data: train, valid, test (the recipe's names for them) or a split name \\[test].")] = None,
    src: Annotated[Optional[Path], typer.Option(metavar="FILE", help="Translation: source file (with --ref).")] = None,
    ref: Annotated[Optional[Path], typer.Option(metavar="FILE", help="Translation: reference file (with --src).")] = None,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", metavar="FILE", help="Language model: text file to score (default: stdin when piped, else --split). Classifier: a labeled file in the recipe's format.")] = None,
    beam: Annotated[Optional[int], typer.Option(metavar="N", min=1, help="Translation: beam size; 1 = greedy \\[recipe].")] = None,
    batch_size: Annotated[Optional[int], typer.Option(metavar="N", min=1, help="Sentences (translation), parallel streams (language model) or texts (classifier) per batch \\[recipe].")] = None,
    out_dir: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Report folder \\[the run folder].")] = None,
    precision: PrecisionOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Score a model. Translation: BLEU and chrF (sacrebleu, with signature) and perplexity.
    Language model: perplexity and bits per token of a split, a file, or text on stdin.
    Classifier: accuracy, macro-F1, per-class scores and confusion matrix of a split or file."""
    from lstm_nlp.tasks.base import EvalRequest
    from lstm_nlp.tasks.evaluate import evaluate

    evaluate(EvalRequest(model, split, src, ref, input, sys.stdin, beam, batch_size, out_dir,
                         precision.value if precision else None, device))

"""The `lstm-nlp` command: parse arguments, call one pipeline function, and turn domain errors
into one red line and exit code 1 (130 after Ctrl-C). Heavy imports happen inside the commands."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from pathlib import Path
from enum import Enum
from typing import Annotated, Optional

import typer

from lstm_nlp import __version__

app = typer.Typer(no_args_is_help=True, pretty_exceptions_show_locals=False,
                  add_completion=False,
                  help="Train, evaluate and use LSTM models for NLP. See README.md.")

Model = Annotated[Path, typer.Option("--model", "-m", help="Run folder (uses best.pt) or .pt file.")]
Models = Annotated[list[Path], typer.Option("--model", "-m", help="Run folder (uses best.pt) or .pt file; classifiers: repeat for an ensemble (mean probabilities).")]


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"


PrecisionOpt = Annotated[Optional[Precision], typer.Option(
    help="Inference arithmetic \\[the recipe's train.precision].")]


def _boundary(fn):
    """Catch domain errors once, here: one line on stderr, exit 1 (130 for Ctrl-C)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from lstm_nlp.errors import LstmNlpError, TrainingInterrupted
        from lstm_nlp.reporting import error, info

        try:
            return fn(*args, **kwargs)
        except TrainingInterrupted as e:
            info(f"[yellow]{e}[/]")
            raise typer.Exit(130) from None
        except LstmNlpError as e:
            error(str(e))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            error("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:  # `| head -1`: the reader left; end quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lstm-nlp {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version,
                                                is_eager=True)] = False) -> None:
    """Train, evaluate and use LSTM models for NLP."""


@app.command()
@_boundary
def train(
    recipe: Annotated[Path, typer.Argument(help="YAML recipe (see recipes/).")],
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a recipe key: --set train.lr=0.0005 (repeatable).")] = None,
    run_dir: Annotated[Optional[Path], typer.Option(help="Run folder \\[runs/<recipe name>].")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run folder.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue the run from its last.pt.")] = False,
) -> None:
    """Train a model from a recipe; writes checkpoints, metrics.jsonl and report.md."""
    from lstm_nlp import pipeline

    pipeline.train(recipe, set_ or [], run_dir, overwrite=overwrite, resume=resume)


@app.command()
@_boundary
def translate(
    model: Model,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="Read this file, not stdin.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here, not stdout.")] = None,
    beam: Annotated[Optional[int], typer.Option(help="Beam size; 1 = greedy \\[recipe].")] = None,
    length_penalty: Annotated[Optional[float], typer.Option(help="GNMT alpha \\[recipe].")] = None,
    max_len_ratio: Annotated[Optional[float], typer.Option(help="Max output/input length \\[recipe].")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Sentences per batch \\[recipe].")] = None,
    precision: PrecisionOpt = None,
) -> None:
    """Translate lines from stdin (or --input) to stdout: one output line per input line."""
    from lstm_nlp import translate_pipeline

    options = dict(beam=beam, length_penalty=length_penalty, max_len_ratio=max_len_ratio,
                   batch_size=batch_size, precision=precision.value if precision else None)
    with _output_stream(output) as out:
        translate_pipeline.translate(model, input, out, sys.stdin, **options)


@contextlib.contextmanager
def _output_stream(output: Optional[Path]):
    """stdout, or a file written atomically: a failed run leaves no half-written output."""
    if output is None:
        yield sys.stdout
        return
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            yield f
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)


@app.command()
@_boundary
def generate(
    model: Model,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="Read prompts from this file, not stdin.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here, not stdout.")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(help="Tokens per continuation \\[recipe].")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="Softmax temperature; 0 = most likely token \\[recipe].")] = None,
    top_k: Annotated[Optional[int], typer.Option(help="Sample among the k most likely; 0 = all \\[recipe].")] = None,
    top_p: Annotated[Optional[float], typer.Option(help="Nucleus sampling mass; 1 = all \\[recipe].")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed: same seed and input, same text.")] = 1,
    batch_size: Annotated[Optional[int], typer.Option(help="Prompts per batch \\[recipe].")] = None,
    precision: PrecisionOpt = None,
) -> None:
    """Continue each prompt line from stdin (or --input) with a language model: one line out per
    line in; an empty line starts from the start of a text."""
    from lstm_nlp import lm_pipeline

    options = dict(max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                   seed=seed, batch_size=batch_size,
                   precision=precision.value if precision else None)
    with _output_stream(output) as out:
        lm_pipeline.generate(model, input, out, sys.stdin, **options)


class Format(str, Enum):
    tsv = "tsv"
    jsonl = "jsonl"


@app.command()
@_boundary
def classify(
    model: Models,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="Read texts from this file, not stdin.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here, not stdout.")] = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="tsv: label<TAB>probability; jsonl: every class's probability.")] = Format.tsv,
    batch_size: Annotated[Optional[int], typer.Option(help="Texts per batch \\[recipe].")] = None,
    precision: PrecisionOpt = None,
) -> None:
    """Classify each line of stdin (or --input): one output line per input line, in order."""
    from lstm_nlp import classify_pipeline

    with _output_stream(output) as out:
        classify_pipeline.classify(model, input, out, sys.stdin, format.value, batch_size,
                                   precision.value if precision else None)


@app.command("eval")
@_boundary
def eval_(
    model: Models,
    split: Annotated[Optional[str], typer.Option(help="Split of the recipe's data: train, valid, test (the recipe's names for them) or a split name \\[test].")] = None,
    src: Annotated[Optional[Path], typer.Option(help="Translation: source file (with --ref).")] = None,
    ref: Annotated[Optional[Path], typer.Option(help="Translation: reference file (with --src).")] = None,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="Language model: text file to score (default: stdin when piped, else --split). Classifier: a labeled file in the recipe's format.")] = None,
    beam: Annotated[Optional[int], typer.Option(help="Translation: beam size; 1 = greedy \\[recipe].")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Sentences (translation) or parallel streams (language model) per batch \\[recipe].")] = None,
    out_dir: Annotated[Optional[Path], typer.Option(help="Report folder \\[the run folder].")] = None,
    precision: PrecisionOpt = None,
) -> None:
    """Score a model. Translation: BLEU and chrF (sacrebleu, with signature) and perplexity.
    Language model: perplexity and bits per token of a split, a file, or text on stdin.
    Classifier: accuracy, macro-F1, per-class scores and confusion matrix of a split or file."""
    from lstm_nlp import pipeline

    pipeline.evaluate(model, split, src, ref, beam, out_dir,
                      precision.value if precision else None, input, sys.stdin, batch_size)


def main() -> None:
    app()

"""The Typer app and what every command shares: options, the error boundary (domain errors and
what the operating system refuses become one red line and exit code 1; 128 + the signal's number
after Ctrl-C, SIGTERM or SIGHUP), the
atomic output file and the console entry point. Heavy imports happen inside the commands."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from lstm_nlp import __version__

app = typer.Typer(no_args_is_help=True, pretty_exceptions_show_locals=False,
                  add_completion=False, rich_markup_mode="markdown",
                  help="Train, evaluate and use LSTM models for NLP.",
                  epilog="Each command's options: lstm-nlp COMMAND --help")


def _plain_metavars() -> None:
    """Show in the help what a user types: Typer 0.29 prints a type after every option,
    flags too (`--help <bool>`), and braces around required arguments (`{recipe}`). Flags get
    no metavar and arguments their own (RECIPE); options name theirs where they are declared
    (`metavar=`). Left alone where a Typer version lacks these methods."""
    core = typer.core
    option, argument = getattr(core, "TyperOption", None), getattr(core, "TyperArgument", None)
    if option is not None and hasattr(option, "display_type_rich"):
        shown = option.display_type_rich
        option.display_type_rich = lambda self, ctx: None if self.is_flag else shown(self, ctx)
    if argument is not None and hasattr(argument, "_usage_display_name"):
        argument.display_type_rich = lambda self, ctx: None
        argument._usage_display_name = lambda self: self.display_name_raw + \
            ("..." if self.nargs != 1 else "")


_plain_metavars()

Model = Annotated[Path, typer.Option("--model", "-m", metavar="PATH", help="Run folder (uses best.pt) or .pt file.")]
Models = Annotated[list[Path], typer.Option("--model", "-m", metavar="PATH", help="Run folder (uses best.pt) or .pt file; classifiers and translation: repeat for an ensemble (mean probabilities).")]
Output = Annotated[Optional[Path], typer.Option("--output", "-o", metavar="FILE", help="Write here, not stdout.")]


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


PrecisionOpt = Annotated[Optional[Precision], typer.Option(
    metavar="fp32|bf16|fp16", help="Inference arithmetic; fp16 on CUDA only \\[the recipe's train.precision].")]


def device_name(value: str | None) -> str | None:
    """Typer callback: a device's name (auto, cpu, cuda, cuda:N, mps), else a usage error;
    whether that device is here is asked when the command runs (exit 1 if not)."""
    from lstm_nlp.config.sections import DEVICE_CHOICES, DEVICE_NAME  # not on the --help path

    if value is not None and not DEVICE_NAME.fullmatch(value):
        raise typer.BadParameter(f"{value!r} is not a device: use {DEVICE_CHOICES}.")
    return value


DEVICE_METAVAR = "auto|cpu|cuda[:N]|mps"
DeviceOpt = Annotated[Optional[str], typer.Option(
    metavar=DEVICE_METAVAR, callback=device_name,
    help="Where to compute: auto = CUDA, else MPS, else the CPU \\[auto].")]
TrainDeviceOpt = Annotated[Optional[str], typer.Option(
    metavar=DEVICE_METAVAR, callback=device_name,
    help="Where to train (auto = CUDA, else MPS, else the CPU) \\[the recipe's train.device].")]


def positive(value: float | None) -> float | None:
    """Typer callback: a number that must be above 0 (Typer's min= includes its bound)."""
    if value is not None and value <= 0:
        raise typer.BadParameter(f"{value:g} is not above 0.")
    return value


def boundary(fn):
    """Catch domain errors and what the operating system refuses once, here: one line on
    stderr, exit 1; a stop signal exits 128 + its number (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP),
    what a shell or scheduler reports for a process that signal ended."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from lstm_nlp.errors import LstmNlpError, TrainingInterrupted
        from lstm_nlp.reporting.console import error, info

        try:
            return fn(*args, **kwargs)
        except TrainingInterrupted as e:
            info(f"[yellow]{e}[/]")
            raise typer.Exit(128 + e.signum) from None
        except LstmNlpError as e:
            error(str(e))
            raise typer.Exit(1) from None
        except KeyboardInterrupt as e:  # a second signal (errors.Aborted) or Ctrl-C elsewhere
            error(str(e) or "interrupted")
            raise typer.Exit(128 + getattr(e, "signum", 2)) from None
        except BrokenPipeError:  # `| head -1`: the reader left; end quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None
        except OSError as e:  # what the operating system refused: a path and its reason
            error(f"{e.filename}: {e.strerror}" if e.filename and e.strerror else str(e))
            raise typer.Exit(1) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lstm-nlp {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", "-V", callback=_version,
                                                is_eager=True,
                                                help="Print the version and exit.")] = False
          ) -> None:
    """Train, evaluate and use LSTM models for NLP."""


@contextlib.contextmanager
def output_stream(output: Optional[Path]):
    """stdout, or a file written atomically: a failed run leaves no half-written output. A file
    that cannot be written is refused (one line naming it) before the model loads; one that
    cannot be finished (disk full) is named, not its temp file."""
    if output is None:
        yield sys.stdout
        return
    from lstm_nlp.filesystem import open_output, refused

    tmp = output.with_name(f".{output.name}.tmp")
    try:
        with open_output(output, tmp) as f:
            yield f
        with refused("cannot write", output):
            os.replace(tmp, output)
    finally:  # quietly: an error on its way (read-only file system) says more
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def main() -> None:
    """The console entry point. A malformed command line (unknown option, missing argument,
    value out of range) is a usage error: one line naming the problem, exit code 2 (Click's
    convention), instead of Click's framed box."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:  # Ctrl-C while Click was still parsing
        sys.exit(130)
    except typer.TyperException as e:  # Click's errors (Typer vendors Click): UsageError & co
        from lstm_nlp.reporting.console import error

        ctx, message = getattr(e, "ctx", None), e.format_message()
        if message:  # empty after `lstm-nlp` alone, which printed the help
            error(message + (f" (see: {ctx.command_path} --help)" if ctx is not None else ""))
        sys.exit(getattr(e, "exit_code", 1))
    sys.exit(code or 0)

"""What every task shares with the trainer and the verbs: the loss contract (`LossOutput`), the
trainer's view of a task (`TrainTask`), and switching a model to inference for a while
(`inference`), the command line over the recipe (`overridden`), and what `lstm-nlp eval` was
asked (`EvalRequest`)."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol, TextIO, TypeVar

import torch

from lstm_nlp.data.textio import read_input_lines
from lstm_nlp.errors import ConfigError
from lstm_nlp.reporting.console import info


@dataclass
class LossOutput:
    """What a task's loss gives the trainer, which minimises loss / normalizer + penalty."""

    loss: torch.Tensor  # summed over tokens (divide by n_tokens for the mean)
    n_tokens: int
    n_correct: int
    normalizer: int = 0                  # 0: n_tokens (mean per token)
    penalty: torch.Tensor | None = None  # regularisation term, already scaled (e.g. AR/TAR)

    def objective(self) -> torch.Tensor:
        value = self.loss / max(self.normalizer or self.n_tokens, 1)
        return value if self.penalty is None else value + self.penalty

    def share(self) -> int:
        """What this batch weighs in a step over several (gradient accumulation): the divisor
        of its objective."""
        return max(self.normalizer or self.n_tokens, 1)

    @staticmethod
    def combined(outs: list[LossOutput]) -> LossOutput:
        """The outputs of a step's batches as one (detached): losses, tokens and correct
        predictions summed, each penalty weighted by its batch's share, so that objective() is
        what the accumulated gradient minimised."""
        if len(outs) == 1:
            return outs[0]
        total = sum(o.share() for o in outs)
        penalties = [o.penalty.detach() * o.share() for o in outs if o.penalty is not None]
        return LossOutput(sum(o.loss.detach() for o in outs), sum(o.n_tokens for o in outs),
                          sum(o.n_correct for o in outs),
                          total if any(o.normalizer for o in outs) else 0,
                          sum(penalties) / total if penalties else None)



class TrainTask(Protocol):
    """The trainer's view of a task: batches, loss and validation. Nothing else is asked."""

    def epoch_batches(self, epoch: int) -> list[Any]: ...
    def collate(self, item: Any) -> Any: ...
    def loss(self, model: torch.nn.Module, batch: Any) -> LossOutput: ...
    def validate(self, model: torch.nn.Module) -> dict[str, float]: ...
    # State the task carries from batch to batch (an LM's hidden state), saved in checkpoints.
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


Options = TypeVar("Options")


def overridden(defaults: Options, **given: Any) -> Options:
    """An inference verb's options (a dataclass of the recipe's values) with each option given
    on the command line (not None) in its place. Typer checked the given values' ranges."""
    return dataclasses.replace(defaults, **{k: v for k, v in given.items() if v is not None})


@contextlib.contextmanager
def inference(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Eval mode and no autograd for the block; the model's earlier mode afterwards (training
    code validates mid-run, inference verbs hold models in eval mode throughout)."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        model.train(was_training)


@dataclass
class EvalRequest:
    """What `lstm-nlp eval` was asked: the models and each option (None: not given). The first
    model's task answers it (`evaluate` in the task's verbs module)."""

    models: list[Path]
    split: str | None = None
    src: Path | None = None
    ref: Path | None = None
    input: Path | None = None
    stdin: TextIO | None = None
    beam: int | None = None
    batch_size: int | None = None
    out_dir: Path | None = None
    precision: str | None = None
    device: str | None = None  # a name (auto when None); tasks/evaluate.py resolves it

    def single_model(self, task: str) -> Path:
        """The one model of a task without ensembles."""
        if len(self.models) > 1:
            raise ConfigError("several --model: ensembles are for classifiers and translation "
                              f"models; {self.models[0]} is a {task} model")
        return self.models[0]

    def piped_lines(self) -> list[str] | None:
        """The lines piped on stdin, which every task that scores text reads the same way: when
        neither --split nor --input is given and stdin is not a terminal. None when a split or
        a file is to be scored; also for an empty stdin (a script's /dev/null), said on stderr."""
        if self.split is not None or self.input is not None or self.stdin is None \
                or self.stdin.isatty():
            return None
        lines = [line for chunk in read_input_lines(self.stdin, None, 1 << 16) for line in chunk]
        if not lines:
            info("stdin is empty: scoring the test split (pipe text, or give --split or -i)")
        return lines or None

    def refuse(self, options: tuple[str, ...], why: str) -> None:
        """A one-line error when any of `options` (field names) was given: `--a/--b {why}`."""
        if any(getattr(self, name) is not None for name in options):
            flags = "/".join(f"--{name.replace('_', '-')}" for name in options)
            raise ConfigError(f"{flags} {why}")

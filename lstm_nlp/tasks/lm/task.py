"""The lm task's training and scoring: the token stream, truncated-BPTT windows over parallel
streams, the trainer's view (`LanguageModelTask`) and perplexity (`stream_nll`)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

from lstm_nlp import metrics
from lstm_nlp.data.tokenizer import Tokenizer
from lstm_nlp.errors import DataError
from lstm_nlp.tasks.base import LossOutput, inference
from lstm_nlp.tasks.lm.config import LMRecipe
from lstm_nlp.tasks.lm.model import LanguageModel, State, detach
from lstm_nlp.training import distributed
from lstm_nlp.training.devices import device_of


def token_stream(tok: Tokenizer, lines: list[str]) -> torch.Tensor:
    """Lines -> one id stream: <eos> (the start-of-text state), then each line's tokens followed
    by <eos>. Every line counts, empty ones too, as in the published PTB/WikiText setups."""
    ids = [tok.eos_id]
    for row in tok.encode(lines):
        ids.extend(row)
        ids.append(tok.eos_id)
    return torch.tensor(ids, dtype=torch.long)


def batchify(stream: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut the stream into `batch_size` parallel streams, one per column; the tail that does not
    fill a row is dropped. A view, not a copy: a stream mapped from a token store stays on disk
    (`window` copies out what a step reads). With the alphabet as the stream and batch_size 4:

        a g m s
        b h n t        each column continues in the next batch window, so the hidden
        c i o u        state of column j carries over from one window to the next
        d j p v
        e k q w
        f l r x        -> (T, B) = (6, 4); y, z dropped
    """
    steps = stream.numel() // batch_size
    return stream[: steps * batch_size].view(batch_size, steps).t()  # (T, B)


def bptt_windows(n_steps: int, bptt: int, variable: bool, seed: int, epoch: int
                 ) -> list[tuple[int, int]]:
    """(start, length) windows covering positions 0..n_steps-2 (the last position is only a
    target). Variable length as in AWD-LSTM: the base length is bptt (p 0.95) or bptt / 2, then
    drawn from N(base, 5), at least 5. Depends only on (seed, epoch), so resume replays it."""
    rng = random.Random(seed * 1_000_003 + epoch)
    windows, start = [], 0
    while start < n_steps - 1:
        length = bptt
        if variable:
            base = bptt if rng.random() < 0.95 else bptt / 2
            length = max(5, int(rng.gauss(base, 5)))
        length = min(length, n_steps - 1 - start)
        windows.append((start, length))
        start += length
    return windows


@dataclass
class Window:
    inputs: torch.Tensor   # (T, B)
    targets: torch.Tensor  # (T, B) the inputs shifted by one position
    start: int             # 0: the streams begin here, so the hidden state starts at zero
    part: int = 0          # which batch_size streams of the training data (see LanguageModelTask)


def window(data: torch.Tensor, start: int, length: int) -> Window:
    """The window's inputs and targets as int64 ids of their own (the stream may be uint16 or
    uint32, as a token store keeps it)."""
    return Window(data[start: start + length].long().contiguous(),                  # (T, B)
                  data[start + 1: start + 1 + length].long().contiguous(), start)


class LanguageModelTask:
    """The trainer's view of language modeling. The hidden state is carried from window to window
    (detached between them), reset at the start of each epoch, and saved in checkpoints.

    A step's batch is batch_size streams, or P parts of batch_size streams each when the step
    takes P batches (P = train.accum_steps times the number of training processes): the text is
    cut into P * batch_size streams, and a step is one window over all of them, as P batches
    of batch_size streams, each part carrying its own hidden state. The trainer shares a step's
    batches out to the processes, so each computes (and carries the state of) its own parts."""

    def __init__(self, recipe: LMRecipe, train_stream: torch.Tensor, valid_stream: torch.Tensor):
        self.recipe = recipe
        tr = recipe.train
        self.parts = tr.accum_steps * distributed.place().size
        self.data = batchify(train_stream, tr.batch_size * self.parts)          # (T, P*B)
        if self.data.size(0) < 2:
            raise DataError(f"training text too short: {train_stream.numel()} tokens for "
                            f"{self.data.size(1)} streams (train.batch_size {tr.batch_size}"
                            f"{f' times {self.parts} batches a step' if self.parts > 1 else ''})")
        self.valid_stream = valid_stream
        self.states: dict[int, State] = {}  # by part: those this process computed

    @property
    def n_tokens(self) -> int:
        return self.data.numel()

    def epoch_batches(self, epoch: int) -> list[tuple[int, int, int]]:
        """(start, length, part): each window, once for each part of the streams."""
        tr = self.recipe.train
        windows = bptt_windows(self.data.size(0), tr.bptt, tr.variable_bptt, self.recipe.seed,
                               epoch)
        return [(start, length, part) for start, length in windows for part in range(self.parts)]

    def collate(self, item: tuple[int, int, int]) -> Window:
        start, length, part = item
        b = self.recipe.train.batch_size
        batch = window(self.data[:, part * b: (part + 1) * b], start, length)    # (T, B)
        batch.part = part
        return batch

    def loss(self, model: LanguageModel, batch: Window) -> LossOutput:
        tr = self.recipe.train
        state = self.states.get(batch.part)
        if batch.start == 0 or state is None:
            state = model.init_state(batch.inputs.size(1))
        out, state = model.loss(batch.inputs, batch.targets, state, tr.ar_alpha, tr.tar_beta)
        self.states[batch.part] = detach(state)
        if tr.loss_per == "sequence":  # sum over the window, mean over the streams
            out.normalizer = batch.inputs.size(1)
        return out

    def validate(self, model: LanguageModel) -> dict[str, float]:
        tr = self.recipe.train
        stats = stream_nll(model, self.valid_stream, tr.valid_batch_size, tr.bptt)
        return {"val_loss": stats["nll"], "val_ppl": stats["ppl"], "val_acc": stats["acc"]}

    def state_dict(self) -> dict:
        """The hidden state of the parts this process carries: per layer, theirs side by side
        (B * parts columns), and with several parts which ones they are."""
        if not self.states:
            return {}
        parts = sorted(self.states)
        layers = zip(*(self.states[p] for p in parts))  # per layer: each part's (h, c)
        hidden, cell = zip(*((torch.cat([h for h, _ in s], 1), torch.cat([c for _, c in s], 1))
                             for s in layers))
        extra = {"parts": parts} if self.parts > 1 else {}
        return {"hidden": list(hidden), "cell": list(cell), **extra}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            self.states = {}
            return
        parts = state.get("parts", [0])
        split = [(h.chunk(len(parts), 1), c.chunk(len(parts), 1))
                 for h, c in zip(state["hidden"], state["cell"])]  # per layer, per part
        self.states = {p: [(h[i], c[i]) for h, c in split] for i, p in enumerate(parts)}


def stream_nll(model: LanguageModel, stream: torch.Tensor, batch_size: int, bptt: int
               ) -> dict[str, float]:
    """Mean NLL per predicted token of a stream, perplexity, bits per token, next-token accuracy.
    Batch size 1 scores every token with its full left context (the published setting)."""
    batch_size = max(1, min(batch_size, (stream.numel() - 1)))
    data, device = batchify(stream, batch_size), device_of(model)               # (T, B)
    nll, n, correct = 0.0, 0, 0
    with inference(model):
        state = model.init_state(batch_size)
        for start, length in bptt_windows(data.size(0), bptt, False, 0, 0):
            w = window(data, start, length)
            out, state = model.loss(w.inputs.to(device), w.targets.to(device), state)
            nll, n, correct = nll + float(out.loss), n + out.n_tokens, correct + out.n_correct
    mean = nll / max(n, 1)
    return {"nll": mean, "ppl": metrics.perplexity(nll, n), "bits_per_token": mean / math.log(2),
            "acc": metrics.accuracy(correct, n), "tokens": n}

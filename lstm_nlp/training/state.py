"""What the trainer keeps count of: the position it saves in checkpoints (`TrainState`), the
training since the last validation (`Window`) and the wall time toward max_minutes (`Clock`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class TrainState:
    """Where a run stands; saved in every checkpoint as a dict (field names are the format)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    elapsed_s: float = 0.0
    best_score: float | None = None
    best_step: int = 0
    bad_validations: int = 0
    lr_scale: float = 1.0
    stopped_early: bool = False
    epoch_len: int = 0  # batches in the current epoch


@dataclass
class Window:
    """Training since the last validation: what its metrics row says about the training side.
    Not checkpointed: a resumed run starts a fresh window."""

    loss: float = 0.0     # summed over tokens (nats), as the task's LossOutput gives it
    tokens: int = 0       # tokens, or texts for a classifier (the task's unit)
    correct: int = 0
    seconds: float = 0.0  # in steps only (batch to optimizer step), not in validation

    def add(self, loss: float, tokens: int, correct: int, seconds: float) -> None:
        self.loss += loss
        self.tokens += tokens
        self.correct += correct
        self.seconds += seconds

    def mean_loss(self) -> float:
        return self.loss / max(self.tokens, 1)

    def accuracy(self) -> float:
        return self.correct / max(self.tokens, 1)

    def throughput(self) -> float:
        """Units per second of step time."""
        return self.tokens / max(self.seconds, 1e-9)


class Clock:
    """Wall time toward max_minutes. Steps and validations count; the time before `start` (set-up,
    and the pause between a run and its resume) does not."""

    def __init__(self, now: Callable[[], float] = time.perf_counter):
        self.now = now
        self.last = 0.0

    def start(self) -> None:
        self.last = self.now()

    def lap(self) -> float:
        """Seconds since the previous lap (or the start)."""
        now = self.now()
        seconds, self.last = now - self.last, now
        return seconds

"""Averaged weights for validation and best.pt, while training goes on from the raw ones."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


class WeightAverage:
    """Exponential moving average of the trainable weights (Polyak averaging; OpenNMT-py's
    average_decay): after each step avg <- avg + (1 - d) (w - avg), with d = min(decay,
    (1 + step) / (10 + step)) so early weights fade fast. Validation, best.pt and the test
    use the average; training continues from the raw weights."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.params = {k: p for k, p in model.named_parameters()}
        self.avg = {k: p.detach().clone() for k, p in self.params.items()}

    def update(self, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, p in self.params.items():
                if p.requires_grad:  # frozen groups (gradual unfreezing) keep their average
                    self.avg[k].lerp_(p.detach(), 1.0 - d)

    def swap(self) -> None:
        """Exchange the model's weights and the average (twice = back to where it was)."""
        with torch.no_grad():
            for k, p in self.params.items():
                raw = p.detach().clone()
                p.copy_(self.avg[k])
                self.avg[k] = raw

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The model holds the average inside the block and its raw weights again after, also
        when the block raises (a failed validation must not leave training on the average)."""
        self.swap()
        try:
            yield
        finally:
            self.swap()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.avg

    def load_state_dict(self, avg: dict[str, torch.Tensor]) -> None:
        """The average from a checkpoint, beside each weight on its device."""
        self.avg = {k: v.to(self.params[k].device, copy=True) for k, v in avg.items()}

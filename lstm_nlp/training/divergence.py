"""Divergence: a per-token loss that is not finite, or far above its recent level, means the
weights blew up (too high a learning rate, too little warm-up or clipping). Training on would
only log noise and could keep it as best.pt, so the trainer stops with the fix instead."""

from __future__ import annotations

import math
import statistics
from collections import deque

FACTOR = 1e4  # "far above": this many times the reference level
WINDOW = 100  # recent steps in the running median
WARMUP = 20   # steps before the running median is the reference; until then, the first loss
FLOOR = 0.01  # nats per token: the least reference, so that a near-perfect fit (a median of
#               1e-5 on an easy classifier) does not make one ordinary mistake look like a blow-up


class LossMonitor:
    """The recent per-token training losses and the bound a loss must stay under. During the
    warm-up the reference is the first loss seen (a run that blows up at step 2 has only huge
    losses after it, and so a huge median); afterwards the median of the last WINDOW, which
    follows the loss down as training goes on and ignores the odd spike."""

    def __init__(self, window: int = WINDOW, warmup: int = WARMUP, factor: float = FACTOR,
                 floor: float = FLOOR):
        self.recent: deque[float] = deque(maxlen=window)
        self.first: float | None = None
        self.warmup, self.factor, self.floor = warmup, factor, floor

    def reference(self) -> tuple[float, str] | None:
        """(the level a loss is compared with, what it is), None before the first loss."""
        if self.first is None:
            return None
        if len(self.recent) < self.warmup:
            return self.first, "the first step's"
        return statistics.median(self.recent), f"the running median of the last " \
            f"{len(self.recent)} steps,"

    def excess(self, loss: float) -> str:
        """Why `loss` (nats per token) means divergence; '' when it does not."""
        if not math.isfinite(loss):
            return f"is {loss}"
        ref = self.reference()
        if ref is not None and loss > self.factor * max(ref[0], self.floor):
            return f"is {loss:.3g}, over {self.factor:g} times {ref[1]} {ref[0]:.3g}"
        return ""

    def add(self, loss: float) -> None:
        """Count a sane loss in the reference."""
        if self.first is None:
            self.first = loss
        self.recent.append(loss)

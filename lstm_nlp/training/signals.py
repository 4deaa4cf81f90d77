"""Stop signals during training: SIGINT (Ctrl-C), SIGTERM (`timeout`, `docker stop`, systemd,
batch schedulers) and SIGHUP (the terminal closed). The first asks the loop to save last.pt and
stop after the current step; a second one aborts at once, except while a checkpoint is being
written: then it waits until the file is complete, so that no signal leaves a checkpoint half
saved or the run's files out of step with each other."""

from __future__ import annotations

import contextlib
import signal
from typing import Any, Iterator

from lstm_nlp.errors import Aborted

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def describe(signum: int) -> str:
    """A signal as messages name it: the key users press for SIGINT, else its name."""
    return "Ctrl-C (SIGINT)" if signum == signal.SIGINT else signal.Signals(signum).name


class StopSignals:
    """Handlers for SIGNALS while training (a context manager; the handlers found are restored
    on leaving). `signum` is the first stop signal received (None while none); `saving()` marks
    checkpoint writes, during which a second signal is deferred rather than acted on.

    A flag, not a blocked signal mask: pthread_sigmask blocks a signal for the calling thread
    only, and the kernel may hand a process-wide SIGTERM to one of torch's worker threads, whose
    mask it is not; Python then runs the handler in the main thread anyway, mid-save."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._saving = False
        self._deferred: int | None = None  # a second signal that arrived during a save

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __enter__(self) -> "StopSignals":
        for signum in SIGNALS:
            if signum == signal.SIGHUP and signal.getsignal(signum) == signal.SIG_IGN:
                continue  # started with nohup: the user asked to outlive the terminal
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: no handlers, signals act as usual
                break
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            # None: a handler not installed from Python, which cannot be put back
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
        elif self._saving:
            self._deferred = signum
        else:
            raise _abort(signum)

    @contextlib.contextmanager
    def saving(self, then_abort: bool = True) -> Iterator[None]:
        """Checkpoint writes: a second signal meanwhile takes effect when they are complete
        (then_abort), or not at all when the caller stops right after anyway."""
        self._saving = True
        try:
            yield
        finally:
            self._saving = False
        deferred, self._deferred = self._deferred, None
        if deferred is not None and then_abort:
            raise _abort(deferred)


def _abort(signum: int) -> Aborted:
    return Aborted(f"{describe(signum)} again: stopped at once, without saving the steps since "
                   "the last checkpoint", signum)

"""A search's worker process: `python -m lstm_nlp.search.worker SETTINGS_JSON`, started by
`lstm-nlp search` (--jobs of them), runs trials until the study has its count. Its stderr is its
log (each trial's training goes to that trial's log). Exit codes as the CLI's: 0 done, 1 an
error (one line), 128 + the signal's number when stopped (the running trial saved)."""

from __future__ import annotations

import ctypes
import signal
import sys

from lstm_nlp.errors import Aborted, LstmNlpError, TrainingInterrupted
from lstm_nlp.training.signals import describe


def main(argv: list[str]) -> int:
    from lstm_nlp.reporting.console import error
    from lstm_nlp.search.study import Settings
    from lstm_nlp.search.trial import run_trials

    _stop_with_parent()
    for signum in (signal.SIGTERM, signal.SIGHUP):  # between trials: stop as Ctrl-C does
        signal.signal(signum, _stop)
    try:
        run_trials(Settings.from_json(argv[0]))
    except TrainingInterrupted as e:
        return 128 + e.signum
    except LstmNlpError as e:
        error(str(e))
        return 1
    except KeyboardInterrupt as e:  # a second signal, or one between trials
        return 128 + getattr(e, "signum", signal.SIGINT)
    return 0


def _stop(signum: int, frame: object) -> None:
    raise Aborted(f"stopped by {describe(signum)}", signum)


def _stop_with_parent() -> None:
    """Linux: SIGTERM when the search process dies (killed outright), so that no worker trains
    on unseen; the trial saves and is continued by --resume."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

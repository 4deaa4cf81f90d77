"""One process's share of a search: ask the study for a trial, train it as an ordinary run in
`runs/<study>/trial-NNNN/`, tell the study how it ended; again, until the study has its trials.

A trial reports its early-stopping score to the study at every validation, and stops like an
early-stopped run (checkpoints and report kept) when the pruner gives up on it. A trial that
fails (values that do not fit together, a diverged loss, any lstm-nlp error) is told as failed
with its reason, and the search goes on. A stop signal saves the running trial as training
does (its last.pt), tells it as failed and queues it again, to continue from there on --resume.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from lstm_nlp.errors import LstmNlpError, TrainingInterrupted
from lstm_nlp.reporting.console import Reporter, format_metric, info, read_metrics
from lstm_nlp.search import study as studies
from lstm_nlp.search.space import Space, override


class TrialReporter(Reporter):
    """A trial's reporter: shows and logs the training as a run's does, reports the score to the
    study at each validation, and asks the trainer to stop when the pruner says so. The step it
    reports is the validation's number (1, 2, ...), so that trials of different batch sizes
    compare at the same epoch (or the same number of valid_every steps)."""

    def __init__(self, metrics_path: Path, unit: str, trial: Any, settings: studies.Settings,
                 board: Any = None):
        super().__init__(metrics_path, unit, board)
        self.trial, self.settings = trial, settings
        self.reported = 0  # validations reported so far
        self.pruned = ""

    def validation(self, row: dict[str, Any], best: bool) -> None:
        super().validation(row, best)
        score = self.settings.score
        rows = read_metrics(self.metrics_path)  # a continued trial's earlier ones too
        for number, earlier in enumerate(rows[self.reported:], start=self.reported + 1):
            self.trial.report(earlier[score], number)
        self.reported = len(rows)
        if self.trial.should_prune():
            self.pruned = (f"pruned at validation {self.reported} (step {row['step']:,}, val "
                           f"{self.settings.metric} {format_metric(score, row[score])})")

    def stop_reason(self) -> str:
        return self.pruned


def run_trials(settings: studies.Settings, pruner: Any = None) -> int:
    """Trials until the study has `settings.trials` counted (or, for a grid, no point is left
    queued); `pruner` replaces the named one (tests). The number of trials this process ran."""
    optuna = studies.load_optuna()
    storage = studies.open_storage(settings.storage)
    study = studies.load(settings, storage)
    if pruner is not None:
        study.pruner = pruner
    space = Space.from_dict(study.user_attrs["space"])
    grid, ran = settings.sampler == "grid", 0
    while True:
        optuna.storages.fail_stale_trials(study)  # lost trials: failed and queued again
        trials = study.get_trials(deepcopy=False)
        if (len(studies.counted(trials)) >= settings.trials
                or (grid and not studies.waiting(trials))):
            return ran
        trial = study.ask()
        tid = studies.trial_id(storage, study, trial.number)
        frozen = storage.get_trial(tid)  # with the system attrs the queue gave it
        if studies.surplus(study.get_trials(deepcopy=False), frozen, settings.trials, grid):
            give_back(study, storage, trial, tid)
            continue
        run_trial(study, storage, trial, tid, settings, space)
        ran += 1


def give_back(study: Any, storage: Any, trial: Any, tid: int) -> None:
    """A trial past --trials: a queued one goes back to the queue, a new one is told failed
    and marked, so that nothing counts or shows it. A short random wait, so that two processes
    that gave back at once do not meet again."""
    state = studies.load_optuna().trial.TrialState
    if studies.is_queued(storage.get_trial(tid)):
        storage.set_trial_state_values(tid, state.WAITING)
    else:
        storage.set_trial_system_attr(tid, studies.SURPLUS, True)
        study.tell(trial, state=state.FAIL)
    time.sleep(random.uniform(0.1, 1.0))


def run_trial(study: Any, storage: Any, trial: Any, tid: int, settings: studies.Settings,
              space: Space) -> None:
    """Train one trial (`tid`: its id in the storage) and tell the study how it ended."""
    import torch

    from lstm_nlp.training.run import train

    state = studies.load_optuna().trial.TrialState
    studies.mark_process(trial)
    folder, resume = trial_folder(settings, storage.get_trial(tid))
    values = space.suggest(trial)
    reporters: list[TrialReporter] = []

    def reporter(path: Path, unit: str, board: Any) -> TrialReporter:
        reporters.append(TrialReporter(path, unit, trial, settings, board))
        return reporters[-1]

    log = Path(settings.run_dir) / "logs" / f"trial-{trial.number:04d}.log"
    try:
        with heartbeat(storage, tid), logged_to(log):
            train(settings.base_recipe, trial_overrides(settings, trial.number, values), folder,
                  resume=resume, make_reporter=reporter)
    except (TrainingInterrupted, KeyboardInterrupt) as e:  # saved; continues on --resume
        trial.set_user_attr("interrupted", str(e))
        study.tell(trial, state=state.FAIL)
        studies.requeue(study, storage.get_trial(tid))
        raise
    except (LstmNlpError, MemoryError, torch.OutOfMemoryError) as e:
        # this trial's values fail (a model too large for the device too); the search goes on
        fail(study, trial, str(e) or type(e).__name__)
        return
    except Exception as e:  # not the values: a fault that every trial would meet
        fail(study, trial, f"{type(e).__name__}: {e}")
        raise
    tell_result(study, trial, settings, folder, reporters[0] if reporters else None)


def fail(study: Any, trial: Any, reason: str) -> None:
    state = studies.load_optuna().trial.TrialState
    trial.set_user_attr("error", reason.strip().splitlines()[0])
    study.tell(trial, state=state.FAIL)
    info(f"trial {trial.number} failed: {reason}")


def tell_result(study: Any, trial: Any, settings: studies.Settings, folder: Path,
                reporter: TrialReporter | None) -> None:
    """Pruned, or complete with the best validation score (the one best.pt holds)."""
    state = studies.load_optuna().trial.TrialState
    if reporter is not None and reporter.pruned:
        trial.set_user_attr("pruned", reporter.pruned)
        study.tell(trial, state=state.PRUNED)
        return
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    score = report.get(f"best_{settings.metric}")
    if score is None:
        fail(study, trial, "no validation score")
        return
    study.tell(trial, score)


def trial_folder(settings: studies.Settings, trial: Any) -> tuple[Path, bool]:
    """runs/<study>/trial-NNNN, and whether training resumes there: a trial queued again takes
    over the folder of the one it continues, with its checkpoint, where this machine has it."""
    run_dir = Path(settings.run_dir)
    folder = run_dir / f"trial-{trial.number:04d}"
    for earlier in reversed(trial.system_attrs.get(studies.RETRIES, [])):
        before = run_dir / f"trial-{earlier:04d}"
        if (before / "recipe.yaml").is_file() and not folder.exists():
            os.replace(before, folder)
            return folder, True
    return folder, False


def trial_overrides(settings: studies.Settings, number: int, values: dict[str, Any]) -> list[str]:
    """The trial's recipe: the base one with its name, its values, its threads, and no test
    split (the search chooses on validation; the test split is for the winner)."""
    forced = [f"name={settings.study}-trial-{number:04d}", "data.test="]
    if settings.threads:
        forced.append(f"train.threads={settings.threads}")
    return [*forced, *(override(k, v) for k, v in values.items())]


@contextlib.contextmanager
def heartbeat(storage: Any, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat now and every HEARTBEAT_S while the block runs: a trial
    without one for GRACE_S is taken for lost by the other processes (Optuna runs this thread
    in study.optimize; a search asks and tells trials itself)."""
    stop = threading.Event()

    def beat() -> None:
        while True:
            storage.record_heartbeat(trial_id)
            if stop.wait(studies.HEARTBEAT_S):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def logged_to(path: Path) -> Iterator[None]:
    """The process's stderr (the training's progress and messages) into `path` while the block
    runs: a trial's log, apart from the search's table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = os.dup(2)
    try:
        with open(path, "a", encoding="utf-8") as log:
            os.dup2(log.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)

"""A search's study in Optuna's storage: the settings every process of a search shares, where
the study lives (`runs/<study>/study.db`, or any database Optuna supports), starting or
continuing it, which trials count toward `--trials`, and trials whose process is gone (Ctrl-C,
a crash, a lost machine) queued again with the same values.

Several processes, on one machine or several, work on one study: each asks the storage for a
trial, trains it and tells the result. Optuna numbers trials in the order the database creates
them, which makes `--trials N` exact: a process that got a trial while N others were already
counted gives it back (see `surplus`)."""

from __future__ import annotations

import json
import os
import socket
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from lstm_nlp.errors import ConfigError
from lstm_nlp.extras import require

HEARTBEAT_S = 30   # a running trial's process writes its heartbeat this often ...
GRACE_S = 120      # ... and a trial silent for this long is taken for lost: failed, queued again
RETRIES = "lstm_nlp:continues"  # system attr of a queued-again trial: the numbers it continues
SURPLUS = "lstm_nlp:surplus"    # system attr of a trial made past --trials (in a race), not run


@dataclass(frozen=True)
class Settings:
    """What every process of one search needs (workers get it as JSON)."""
    study: str         # the study's name
    storage: str       # its database URL
    run_dir: str       # trial folders, logs and the report: runs/<study>
    trials: int        # trials in all, every process's counted
    sampler: str       # grid | random | tpe
    pruner: str        # none | median | hyperband
    metric: str        # the recipe's early-stopping metric (accuracy, bleu, loss, ppl) ...
    score: str         # ... and its key in the metrics rows (val_acc, val_bleu, ...)
    threads: int       # train.threads of each trial; 0: the recipe's

    @property
    def base_recipe(self) -> Path:
        """The resolved recipe (file, --set, defaults) every trial starts from."""
        return Path(self.run_dir) / "base-recipe.yaml"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls(**json.loads(text))


def load_optuna() -> ModuleType:
    """Optuna (the `search` extra), quiet: the search says what happens in its own words."""
    optuna = require("optuna", "search", "lstm-nlp search")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # a search asks and tells trials itself, and runs their heartbeat (search/trial.py)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
    return optuna


def default_storage(run_dir: Path) -> str:
    return f"sqlite:///{(run_dir / 'study.db').resolve()}"


def open_storage(url: str) -> Any:
    """The database at `url` with heartbeats: a trial whose process stops writing them is
    failed by the next process that looks, and queued again (`requeue`)."""
    optuna = load_optuna()
    from sqlalchemy.exc import SQLAlchemyError

    # SQLite locks the whole file for a write; several processes wait their turn
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine,
                                          heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                          heartbeat_stale_trial_callback=requeue)
    except (ImportError, ValueError, SQLAlchemyError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"--storage {url}: {reason}") from None


def sampler(name: str) -> Any:
    """tpe or random draw each trial's values; a grid's trials are queued (`queue_grid`), and
    its random sampler only draws for a trial made in a race, which is given back unrun."""
    optuna = load_optuna()
    return optuna.samplers.TPESampler() if name == "tpe" else optuna.samplers.RandomSampler()


def pruner(name: str) -> Any:
    """Optuna's pruners with their defaults: median stops a trial whose score at a validation
    is worse than the median of earlier trials' at that validation (from the 6th trial on);
    hyperband races trials in brackets of growing budgets."""
    optuna = load_optuna()
    return {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner,
            "hyperband": optuna.pruners.HyperbandPruner}[name]()


def create(settings: Settings, storage: Any, direction: str, meta: dict[str, Any]) -> Any:
    """A new study, keeping `meta` (the base recipe, the space, the metric) for --resume and
    for the processes that join it."""
    optuna = load_optuna()
    try:
        study = optuna.create_study(study_name=settings.study, storage=storage,
                                    direction=direction)
    except optuna.exceptions.DuplicatedStudyError:
        raise ConfigError(f"study '{settings.study}' already exists in {settings.storage}; "
                          "continue it (or join it from another process) with --resume, or "
                          "start another with --study NAME") from None
    for key, value in meta.items():
        study.set_user_attr(key, value)
    return study


def load(settings: Settings, storage: Any, pruner_name: str | None = None) -> Any:
    """The existing study, with this process's sampler and pruner."""
    optuna = load_optuna()
    try:
        return optuna.load_study(study_name=settings.study, storage=storage,
                                 sampler=sampler(settings.sampler),
                                 pruner=pruner(pruner_name or settings.pruner))
    except KeyError:
        raise ConfigError(f"--resume: no study '{settings.study}' in {settings.storage}; "
                          "nothing to resume") from None


def check_same(study: Any, meta: dict[str, Any]) -> None:
    """--resume continues a study with the recipe and space it began with; limits, logging and
    the machine may change, as for `train --resume`."""
    from lstm_nlp.training.run import RESUMABLE_CHANGES, recipe_change

    saved = study.user_attrs
    if "recipe" not in saved:
        raise ConfigError(f"--resume: study '{study.study_name}' was not made by lstm-nlp "
                          "search (it keeps no recipe)")
    if (change := recipe_change(saved["recipe"], meta["recipe"])):
        key, was, now = change
        raise ConfigError(f"--resume: the recipe differs from the study's at {key} ({was!r} in "
                          f"the study, {now!r} now); only {', '.join(sorted(RESUMABLE_CHANGES))} "
                          "may change")
    if saved["space"] != meta["space"]:
        keys = sorted(set(saved["space"]) ^ set(meta["space"]) | {
            k for k in saved["space"] if saved["space"][k] != meta["space"].get(k)})
        raise ConfigError(f"--resume: the search space differs from the study's at {keys[0]}; "
                          "a study keeps its space (start another with --study NAME)")


def queue_grid(study: Any, points: list[dict[str, Any]]) -> None:
    """A grid's points, each queued once: a point some trial already has (run, running or
    queued) is not queued again, so --resume and joining processes add nothing twice."""
    for point in points:
        study.enqueue_trial(point, skip_if_exists=True)


# -- which trials count -------------------------------------------------------------------------

def continued(trials: list[Any]) -> dict[int, int]:
    """Trial number -> the trial that continues it (queued again after it was interrupted or
    lost)."""
    return {n: t.number for t in trials for n in t.system_attrs.get(RETRIES, [])}


def counted(trials: list[Any]) -> list[Any]:
    """The trials that count toward --trials: complete, pruned, failed with a reason, running;
    not one continued by another trial, queued ones, or one made past --trials."""
    state = load_optuna().trial.TrialState
    later = continued(trials)
    return [t for t in trials if t.state in (state.COMPLETE, state.PRUNED, state.FAIL,
                                            state.RUNNING)
            and t.number not in later and not t.system_attrs.get(SURPLUS)]


def waiting(trials: list[Any]) -> list[Any]:
    state = load_optuna().trial.TrialState
    return [t for t in trials if t.state == state.WAITING]


def is_queued(trial: Any) -> bool:
    """Whether a trial came from the queue (a grid point, or a trial queued again) rather than
    being made new for this ask."""
    return "fixed_params" in trial.system_attrs or RETRIES in trial.system_attrs


def surplus(trials: list[Any], trial: Any, limit: int, grid: bool) -> bool:
    """Whether `trial`, just handed to this process, would be one past `limit`. A new trial
    counts after those numbered before it (the database's own order, the same for every
    process); one from the queue, whose number is older, after every other counted trial; in
    a grid search only queued points run. Two processes that race both give back at worst, and
    ask again."""
    others = [t for t in counted(trials) if t.number != trial.number]
    if is_queued(trial):
        return len(others) >= limit
    return grid or sum(t.number < trial.number for t in others) >= limit


# -- trials whose process is gone ---------------------------------------------------------------

def requeue(study: Any, trial: Any) -> None:
    """Queue `trial` (interrupted, or lost: failed for want of a heartbeat) again with the same
    values; the new trial continues its folder where that has a checkpoint. Optuna's storage
    calls this for each trial it finds lost."""
    optuna = load_optuna()
    history = [*trial.system_attrs.get(RETRIES, []), trial.number]
    fixed = {k: v for k, v in trial.system_attrs.items() if k == "fixed_params"}
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING, params=trial.params,
        distributions=trial.distributions, system_attrs={**fixed, RETRIES: history}))


def mark_process(trial: Any) -> None:
    """Which process runs `trial`, so that --resume on this machine knows it lost."""
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())


def requeue_lost_here(study: Any, storage: Any) -> list[int]:
    """--resume: running trials of this machine whose process is gone (Ctrl-C'd or killed) are
    failed and queued again now, without waiting for their heartbeat to go stale. The trial
    numbers done so."""
    optuna = load_optuna()
    state = optuna.trial.TrialState
    host, lost = socket.gethostname(), []
    for t in study.get_trials(deepcopy=False, states=(state.RUNNING,)):
        if t.user_attrs.get("host") != host or _alive(t.user_attrs.get("pid")):
            continue
        try:
            if storage.set_trial_state_values(trial_id(storage, study, t.number), state.FAIL):
                requeue(study, t)
                lost.append(t.number)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another process on this machine did it first
    return lost


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return True  # not known: leave it to the heartbeat
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def trial_id(storage: Any, study: Any, number: int) -> int:
    return storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(study.study_name), number)

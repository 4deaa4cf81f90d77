"""`lstm-nlp search`: check the recipe and the space, start or continue the study, run --jobs
worker processes (lstm_nlp/search/worker.py) that train the trials, show the trials as they go,
and write the report. A stop signal goes on to the workers, which save their running trials as
training does; the study is left to continue with --resume."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstm_nlp import filesystem
from lstm_nlp.config import load_recipe, save_recipe
from lstm_nlp.errors import ConfigError, LstmNlpError, TrainingInterrupted
from lstm_nlp.reporting.console import LiveTable, counted, format_metric, info, warning
from lstm_nlp.search import study as studies
from lstm_nlp.search import summary
from lstm_nlp.search.space import Space, load_space
from lstm_nlp.tasks import registry
from lstm_nlp.training.signals import SIGNALS, describe


@dataclass
class Request:
    """The command line of `lstm-nlp search`."""
    recipe: Path
    space: Path
    trials: int
    sampler: str = "tpe"
    pruner: str = "median"
    storage: str | None = None
    study: str | None = None
    jobs: int = 1
    resume: bool = False
    run_dir: Path | None = None
    overrides: list[str] = field(default_factory=list)


def search(request: Request) -> Path:
    """Run the search; the run folder holding its trials and report."""
    studies.load_optuna()  # a missing extra is the first thing said
    recipe = load_recipe(request.recipe, request.overrides)
    if recipe.task not in registry.TASKS:
        raise ConfigError(f"{request.recipe}: a search varies one task's recipe; search a "
                          "chain's stages one at a time")
    space = load_space(request.space, recipe.to_dict(), grid=request.sampler == "grid")
    settings = make_settings(request, recipe)
    run_dir = Path(settings.run_dir)
    meta = {"recipe": recipe.to_dict(), "space": space.to_dict()}
    storage, study = open_study(request, settings, meta)
    save_recipe(recipe, settings.base_recipe)
    if request.sampler == "grid":
        queue_grid(study, space, request.trials)
    if request.resume and (lost := studies.requeue_lost_here(study, storage)):
        info(f"{'trials' if len(lost) > 1 else 'trial'} {', '.join(map(str, lost))} lost "
             "the process that ran it: queued again, to continue from its last.pt")
    info(f"study {settings.study}: {request.trials} trials ({request.sampler} sampler, "
         f"{request.pruner} pruner), {request.jobs} at a time"
         + (f", {counted(settings.threads, 'thread')} each" if settings.threads else "")
         + f"; trials and logs in {run_dir}/")
    codes, signum = run_workers(settings, request.jobs, study)
    summary.write(study, settings, request.recipe, request.space)
    finish(study, settings, codes, signum)
    return run_dir


def make_settings(request: Request, recipe: Any) -> studies.Settings:
    name = request.study or f"{recipe.name}-search"
    run_dir = Path(request.run_dir or Path("runs") / name)
    score, _ = registry.get(recipe.task).metrics[recipe.train.early_stopping_metric]
    return studies.Settings(
        study=name, storage=request.storage or studies.default_storage(run_dir),
        run_dir=str(run_dir), trials=request.trials, sampler=request.sampler,
        pruner=request.pruner, metric=recipe.train.early_stopping_metric, score=score,
        threads=trial_threads(recipe.train.threads, request.jobs))


def trial_threads(recipe_threads: int, jobs: int) -> int:
    """train.threads of each trial: the cores shared out among --jobs trials at once; 0 (the
    recipe's) for one trial at a time or a recipe that pins its threads."""
    if recipe_threads or jobs == 1:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        os.cpu_count() or 1
    if jobs > cores:
        warning(f"--jobs {jobs} on {cores} cores: 1 thread per trial, and trials share cores")
    return max(1, cores // jobs)


def open_study(request: Request, settings: studies.Settings,
               meta: dict[str, Any]) -> tuple[Any, Any]:
    """The storage, and in it a new study (in a new run folder) or, with --resume, the
    existing one, which must have begun with the same recipe and space."""
    run_dir = Path(settings.run_dir)
    new_folder = not run_dir.exists()
    if request.resume:
        if request.storage is None and not (run_dir / "study.db").is_file():
            raise ConfigError(f"--resume: no study in {run_dir} (no study.db); nothing to "
                              "resume")
    elif not new_folder and any(run_dir.iterdir()):
        raise ConfigError(f"run folder {run_dir} already exists; continue its study with "
                          "--resume, or pick another with --study or --run-dir")
    with filesystem.refused("cannot create run folder", run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
    filesystem.probe_writable(run_dir, "run folder")
    try:
        storage = studies.open_storage(settings.storage)
        if request.resume:
            study = studies.load(settings, storage)
            studies.check_same(study, meta)
            return storage, study
        higher = registry.get(meta["recipe"]["task"]).metrics[settings.metric][1]
        return storage, studies.create(settings, storage, "maximize" if higher else "minimize",
                                       meta)
    except LstmNlpError:
        if new_folder:  # leave nothing that blocks the next attempt
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def queue_grid(study: Any, space: Space, trials: int) -> None:
    points = space.grid()
    if trials > len(points):
        info(f"the grid has {len(points)} points: {len(points)} trials")
    elif trials < len(points):
        info(f"the grid has {len(points)} points; --trials {trials} runs {trials} of them")
    studies.queue_grid(study, points)


# -- the workers --------------------------------------------------------------------------------

def run_workers(settings: studies.Settings, jobs: int, study: Any) -> tuple[list[int], int | None]:
    """Start the workers and watch the study until they end; their exit codes, and the stop
    signal that came meanwhile (None if none)."""
    logs = Path(settings.run_dir) / "logs"
    logs.mkdir(exist_ok=True)
    workers = [start_worker(settings, logs / f"worker-{k}.log")
               for k in range(1, min(jobs, settings.trials) + 1)]
    with Forwarding(workers) as stop, LiveTable() as live:
        watch = Watch(study, settings)
        while any(w.poll() is None for w in workers):
            watch.show(live)
            time.sleep(1)
        watch.show(live)
    return [w.returncode for w in workers], stop.signum


def start_worker(settings: studies.Settings, log: Path) -> subprocess.Popen:
    """A worker in a session of its own: Ctrl-C at the terminal reaches this process only,
    which passes it on once (a second one would stop the trial without saving)."""
    with filesystem.refused("cannot write", log), open(log, "a", encoding="utf-8") as out:
        return subprocess.Popen([sys.executable, "-m", "lstm_nlp.search.worker",
                                 settings.to_json()], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=out, start_new_session=True)


class Forwarding:
    """While the workers run, a stop signal (Ctrl-C, SIGTERM, SIGHUP) goes on to each of them:
    they save their running trials and stop, as training does; the first one is kept for the
    exit code. A second one goes on too, and stops them at once."""

    def __init__(self, workers: list[subprocess.Popen]):
        self.workers, self.signum = workers, None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Forwarding:
        for signum in SIGNALS:
            if signum == signal.SIGHUP and signal.getsignal(signum) == signal.SIG_IGN:
                continue  # started with nohup
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = self.signum or signum
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signum)


class Watch:
    """The trials as they go: a live table on a terminal, a line per finished trial in a log."""

    def __init__(self, study: Any, settings: studies.Settings):
        self.study, self.settings = study, settings
        self.keys = list(study.user_attrs["space"])
        self.higher = study.direction.name == "MAXIMIZE"
        self.said = {t.number for t in study.get_trials(deepcopy=False)  # before this run
                     if t.state.is_finished()}

    def show(self, live: LiveTable) -> None:
        trials = self.study.get_trials(deepcopy=False)
        header, rows = summary.table(trials, self.keys, self.settings, self.higher)
        live.show(self.title(trials), header, rows)
        if live.live is None:
            self.say_finished(header, rows)

    def title(self, trials: list[Any]) -> str:
        """'sst2-search: 7 of 24 trials (5 complete, 2 pruned); best val accuracy 82.1%
        (trial 4)'."""
        n, by_state = summary.tally(trials)
        title = f"{self.settings.study}: {n} of {self.settings.trials} trials" + \
            (f" ({by_state})" if by_state else "")
        best = summary.best_trial(self.study)
        if best is not None:
            title += (f"; best val {self.settings.metric} "
                      f"{format_metric(self.settings.score, best.value)} (trial {best.number})")
        return title

    def say_finished(self, header: list[str], rows: list[list[str]]) -> None:
        for row in rows:
            number, state = int(row[0]), row[1]
            if state == "running" or number in self.said:
                continue
            self.said.add(number)
            values = ", ".join(f"{k}={v}" for k, v in zip(header[2:2 + len(self.keys)],
                                                          row[2:]))
            note = f"; {row[-1]}" if row[-1] else ""
            info(f"trial {number} {state}: {header[2 + len(self.keys)]} "
                 f"{row[2 + len(self.keys)]} ({values}) in {row[-2]} min{note}")


def finish(study: Any, settings: studies.Settings, codes: list[int], signum: int | None) -> None:
    """Say how the search ended: stopped by a signal (exit 128 + its number), a worker's error
    (exit 1), or done."""
    trials = study.get_trials(deepcopy=False)
    if signum is not None:
        n, _ = summary.tally(trials)
        raise TrainingInterrupted(f"search stopped by {describe(signum)} after {n} of "
                                  f"{settings.trials} trials; --resume continues it (the "
                                  "running trials from their last.pt)", signum)
    failed = [(k, code) for k, code in enumerate(codes, start=1) if code != 0]
    if failed:
        k, code = failed[0]
        log = Path(settings.run_dir) / "logs" / f"worker-{k}.log"
        why = f"killed by {describe(-code)}" if code < 0 else last_line(log)
        raise LstmNlpError(f"search process {k} stopped: {why} (its log: {log}); --resume "
                           "continues the study")
    best = summary.best_trial(study)
    if best is not None:
        info(f"best: trial {best.number}, val {settings.metric} "
             f"{format_metric(settings.score, best.value)}; "
             f"{Path(settings.run_dir) / 'best-recipe.yaml'}")


def last_line(log: Path) -> str:
    lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
             if line.strip()]
    return lines[-1].strip() if lines else "no message"

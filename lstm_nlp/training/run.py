"""`lstm-nlp train`, the same for every task: run folder, seeds, the task's setup (from the
registry), the training loop, the test evaluation and the report. A chain recipe trains its
stages one after the other (tasks/chain.py).

Started by torchrun as one of several processes (training/distributed.py), rank 0 prepares the
run folder and sets up first (the tokenizer it trains is there for the others), the others set
up from what it made, all train, and rank 0 alone tests and writes the reports."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any, Callable

import torch

from lstm_nlp.config import Recipe, load_recipe, save_recipe
from lstm_nlp.errors import ConfigError, DataError, LstmNlpError
from lstm_nlp.reporting import board as boards
from lstm_nlp.reporting import console as reporting
from lstm_nlp.reporting import figures
from lstm_nlp.tasks import chain, registry
from lstm_nlp.training import checkpoint, distributed, insight
from lstm_nlp.training import loop as trainer
from lstm_nlp.training import runtime

# Recipe keys that may change when a run is resumed (limits, logging and the machine, not the
# experiment: a run started on the CPU may go on on a GPU).
RESUMABLE_CHANGES = {"name", "train.max_steps", "train.max_epochs", "train.max_minutes",
                     "train.valid_every", "train.log_every", "train.threads", "train.patience",
                     "train.device", "train.keep_checkpoints", "train.tensorboard"}


def train(recipe_path: Path, overrides: list[str], run_dir: Path | None = None,
          overwrite: bool = False, resume: bool = False,
          on_step: Callable[[int], None] | None = None, device: str | None = None,
          make_reporter: Callable[[Path, str, Any], reporting.Reporter] = reporting.Reporter) -> Path:
    """`device` (--device) stands for `--set train.device=...`; for a chain, in every stage.
    `make_reporter(metrics_path, unit, board)` builds the object that shows and logs the
    training (a search gives its trials one that reports to the study and may stop them)."""
    given = [f"train.device={device}"] if device else []
    recipe = load_recipe(recipe_path, [*overrides, *given])
    run_dir = Path(run_dir) if run_dir else Path("runs") / recipe.name
    place = distributed.place()
    if isinstance(recipe, chain.ChainRecipe):  # its overrides go to the stages: STAGE.KEY=VALUE
        if place.size > 1:
            raise ConfigError(f"{recipe_path}: a chain recipe trains in one process; train its "
                              "stages one by one with several")
        return chain.train_chain(Path(recipe_path), recipe, overrides, run_dir, overwrite,
                                 resume, on_step, train_stage=train, device=device)
    where = runtime.training_device(recipe.train, device is not None)  # before anything is built
    if recipe.train.tensorboard:
        boards.check_installed()
    where = distributed.rank_device(where, place, "--device" if device else "train.device")
    group = distributed.join(where, place)
    if not group.is_main:
        reporting.mute()  # rank 0 speaks for the run
    with distributed.reported(group):
        return _train(recipe, run_dir, overwrite, resume, on_step, where, group, make_reporter)


def _train(recipe: Recipe, run_dir: Path, overwrite: bool, resume: bool,
           on_step: Callable[[int], None] | None, where: torch.device,
           group: distributed.Group,
           make_reporter: Callable[[Path, str, Any], reporting.Reporter]) -> Path:
    """`train` on its device, in its group of processes (alone by default)."""
    resume = group.from_main(functools.partial(_prepare, run_dir, recipe, overwrite, resume))
    runtime.tune_allocator()
    runtime.set_threads(recipe.train.threads, group.local_size)
    runtime.set_seed(recipe.seed)

    spec = registry.get(recipe.task)
    steps = spec.api()
    if not group.is_main:
        group.barrier()  # wait for rank 0's set-up, then load the tokenizer it stored
    try:  # the others take the weights of rank 0 (DDP), not of a language model to start from
        task, model, extra = steps.setup(recipe, run_dir, resume or not group.is_main)
    except LstmNlpError:
        if not resume and group.is_main:  # nothing trained: leave no folder that blocks a retry
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    if group.is_main:
        group.barrier()
    distributed.seed_rank(recipe.seed, group)
    n_params = sum(p.numel() for p in model.parameters())
    model.to(where)
    processes = f"; {group.size} processes" if group.several else ""
    reporting.info(f"device: {where} (train.device {recipe.train.device}), precision "
                   f"{recipe.train.precision}{processes}")
    if group.is_main:
        board = insight.board_for(recipe, run_dir, spec, model, task)
        reporter = make_reporter(run_dir / "metrics.jsonl", spec.unit, board)
    else:  # the others log and show nothing
        reporter = reporting.Reporter(None, spec.unit)
    stopping = spec.metrics[recipe.train.early_stopping_metric]
    result = trainer.fit(model, task, recipe.train, run_dir, reporter, extra, resume, stopping,
                         on_step, group)
    if not group.is_main:
        return run_dir
    figures.warm_up()  # matplotlib loads while the test split is scored
    best = reporting.format_metric(stopping[0], result.state.best_score)
    reporting.info(f"training ended: {result.reason or 'done'}; best val "
                   f"{recipe.train.early_stopping_metric} {best} at step {result.state.best_step:,}")

    model, tok, recipe = checkpoint.load_model(checkpoint.resolve(run_dir), where)
    try:
        if not recipe.data.test:
            raise DataError("the recipe has no test split (data.test is empty)")
        test = steps.test_report(model, tok, recipe)
    except DataError as e:  # no or bad test split: the trained run and its report still stand
        reporting.info(f"no test evaluation: {e}")
        test = None
    rows = reporting.read_metrics(run_dir / "metrics.jsonl")
    looks = insight.report_sections(run_dir, recipe, spec, rows, result.state.best_step,
                                    test, model, task, board)
    _write_train_report(run_dir, recipe, result, n_params, test, spec.unit_long, best, where,
                        looks)
    return run_dir


def _prepare(run_dir: Path, recipe: Recipe, overwrite: bool, resume: bool) -> bool:
    """The run folder made ready for training and its recipe.yaml written; whether the run
    resumes (not when --resume finds no checkpoint yet)."""
    if resume:
        _check_resumable(run_dir, recipe)
        if not _has_checkpoint(run_dir):  # killed before its first checkpoint
            reporting.info(f"{run_dir} has no checkpoint yet: starting it afresh")
            resume, overwrite = False, True
    runtime.prepare_run_dir(run_dir, overwrite, resume)
    save_recipe(recipe, run_dir / "recipe.yaml")
    return resume


def _check_resumable(run_dir: Path, recipe: Recipe) -> None:
    """--resume continues a run folder (its recipe.yaml) with the recipe it was started with, but
    for limits and logging. One without a checkpoint yet passes too: it then starts afresh."""
    saved_path = run_dir / "recipe.yaml"
    if not saved_path.is_file():
        if (run_dir / "last.pt").is_file():
            raise ConfigError(f"--resume: {saved_path} not found; is {run_dir} a run folder?")
        raise ConfigError(f"--resume: no last.pt and no recipe.yaml in {run_dir}: not a run "
                          "folder; nothing to resume")
    if (run_dir / "best.pt").is_file() and not (run_dir / "last.pt").is_file():
        raise ConfigError(f"--resume: no last.pt in {run_dir} (best.pt alone cannot be "
                          "continued); nothing to resume")
    if (change := recipe_change(load_recipe(saved_path).to_dict(), recipe.to_dict())):
        k, was, now = change
        raise ConfigError(f"--resume: the recipe differs from the run's at {k} "
                          f"({was!r} in the run, {now!r} now); only "
                          f"{', '.join(sorted(RESUMABLE_CHANGES))} may change")


def recipe_change(saved: dict, new: dict) -> tuple[str, object, object] | None:
    """The first key (a.b) whose value differs between two recipes (as dicts) and may not
    change on resume, with its value in each; None when there is none (a search's --resume
    asks this too)."""
    saved, new = _flatten(saved), _flatten(new)
    key = next((k for k in new if new[k] != saved.get(k) and k not in RESUMABLE_CHANGES), None)
    return None if key is None else (key, saved.get(key), new[key])


def _has_checkpoint(run_dir: Path) -> bool:
    return (run_dir / "last.pt").is_file() or (run_dir / "best.pt").is_file()


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _write_train_report(run_dir: Path, recipe: Recipe, result: trainer.TrainResult,
                        n_params: int, test: dict | None, unit: str, best: str,
                        device: torch.device, looks: tuple[str, str] = ("", "")) -> None:
    """report.json and report.md; `best` is the best validation score as the validation table
    formats it (accuracy as a percentage: a rounded 1 would hide whether it is 100%); `looks`:
    the figures section, after the validation curve, and the gate statistics, at the end."""
    rows = reporting.read_metrics(run_dir / "metrics.jsonl")
    s = result.state
    test_md = test.pop("markdown") if test else []
    summary = {"recipe": recipe.name, "task": recipe.task, "parameters": n_params,
               "steps": s.step, "epochs": s.epoch,
               "train_seconds": round(s.elapsed_s, 1), "stop_reason": result.reason,
               "device": str(device),
               "best_step": s.best_step, "best_" + recipe.train.early_stopping_metric: s.best_score,
               "last_validation": result.last_validation, "test": test}
    reporting.write_json(run_dir / "report.json", summary)
    tps = [r["tokens_per_s"] for r in rows if r.get("tokens_per_s") is not None]
    md = [f"# Run report: {recipe.name}\n",
          f"task `{recipe.task}`, {n_params:,} parameters, {s.step:,} steps in "
          f"{s.elapsed_s / 60:.1f} min of training ({result.reason or 'done'}); "
          f"median {sorted(tps)[len(tps) // 2] if tps else 0:,.0f} {unit}/s; "
          f"precision {recipe.train.precision} on {device}.\n",
          f"Best validation {recipe.train.early_stopping_metric}: {best} at step "
          f"{s.best_step:,} (`best.pt`); last checkpoint `last.pt`; resolved recipe "
          f"`recipe.yaml`.\n", "## Validation curve\n", reporting.curve_table_md(rows, unit),
          looks[0], *test_md, looks[1]]
    (run_dir / "report.md").write_text("\n".join(md), encoding="utf-8")
    reporting.info(f"report: {run_dir / 'report.md'}")

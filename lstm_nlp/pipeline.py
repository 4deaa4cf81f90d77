"""The whole story, one function per verb. `train` is shared by every task: run folder, seeds,
the trainer, the test evaluation and the report; each task's module (translate_pipeline,
lm_pipeline, classify_pipeline) sets up its data, tokenizer and model and owns its other verbs.
A chain recipe trains its stages one after the other."""

from __future__ import annotations

import difflib
import json
import shutil
from pathlib import Path
from typing import Callable, TextIO

from lstm_nlp import (checkpoint, classify_pipeline, lm_pipeline, reporting, runtime, trainer,
                      translate_pipeline)
from lstm_nlp.config import ChainRecipe, Recipe, load_recipe, save_recipe
from lstm_nlp.errors import ConfigError, DataError, LstmNlpError

TASKS = {"translate": translate_pipeline, "lm": lm_pipeline, "classify": classify_pipeline}

# Recipe keys that may change when a run is resumed (limits and logging, not the experiment).
RESUMABLE_CHANGES = {"name", "train.max_steps", "train.max_epochs", "train.max_minutes",
                     "train.valid_every", "train.log_every", "train.threads", "train.patience"}


def train(recipe_path: Path, overrides: list[str], run_dir: Path | None = None,
          overwrite: bool = False, resume: bool = False,
          on_step: Callable[[int], None] | None = None) -> Path:
    recipe = load_recipe(recipe_path, overrides)
    run_dir = Path(run_dir) if run_dir else Path("runs") / recipe.name
    if isinstance(recipe, ChainRecipe):  # its overrides go to the stages: STAGE.KEY=VALUE
        return _train_chain(Path(recipe_path), recipe, overrides, run_dir, overwrite, resume,
                            on_step)
    if resume:
        _check_resumable(run_dir, recipe)
    run_dir = runtime.prepare_run_dir(run_dir, overwrite, resume)
    save_recipe(recipe, run_dir / "recipe.yaml")
    runtime.tune_allocator()
    runtime.set_threads(recipe.train.threads)
    runtime.set_seed(recipe.seed)

    steps = TASKS[recipe.task]
    try:
        task, model, extra = steps.setup(recipe, run_dir, resume)
    except LstmNlpError:
        if not resume:  # nothing trained yet: leave no folder that blocks the next attempt
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    n_params = sum(p.numel() for p in model.parameters())
    reporter = reporting.Reporter(run_dir / "metrics.jsonl", steps.UNIT)
    result = trainer.fit(model, task, recipe.train, run_dir, reporter, extra, resume, on_step)
    reporting.info(f"training stopped: {result.reason or 'done'}; best val "
                   f"{recipe.train.early_stopping_metric} {result.state.best_score:.4g} "
                   f"at step {result.state.best_step}")

    model, tok, recipe = checkpoint.load_model(checkpoint.resolve(run_dir))
    try:
        if not recipe.data.test:
            raise DataError("the recipe has no test split (data.test is empty)")
        test = steps.test_report(model, tok, recipe)
    except DataError as e:  # no or bad test split: the trained run and its report still stand
        reporting.info(f"no test evaluation: {e}")
        test = None
    _write_train_report(run_dir, recipe, result, n_params, test)
    return run_dir


def _train_chain(path: Path, chain: ChainRecipe, overrides: list[str], run_dir: Path,
                 overwrite: bool, resume: bool, on_step: Callable[[int], None] | None) -> Path:
    """Stage i trains in <run>/<its name>/ from stage i-1 (model.init_from). `--set` overrides
    name their stage: `imdb-lm.train.max_minutes=10`. With --resume, finished stages are kept,
    an interrupted one continues, the rest start."""
    stages = [path.parent / s for s in chain.stages]
    for stage in stages:
        if not stage.is_file():
            raise ConfigError(f"{path}: stage recipe not found: {stage}")
    names = [load_recipe(stage).name for stage in stages]  # the stages' run folder names
    per_stage = _stage_overrides(overrides, names)
    recipes = [load_recipe(stage, per_stage[name])  # all checked before any training
               for stage, name in zip(stages, names)]
    for stage, recipe in zip(stages[1:], recipes[1:]):
        if recipe.task == "translate":
            raise ConfigError(f"{stage}: a chain stage after the first must be able to start "
                              "from a language model (task lm or classify)")
    if resume and not (run_dir / "chain.json").is_file():
        raise ConfigError(f"--resume: {run_dir} is not a chain run folder")
    if not resume:
        run_dir = runtime.prepare_run_dir(run_dir, overwrite, resume=False)
    folders = [run_dir / r.name for r in recipes]
    (run_dir / "chain.json").write_text(json.dumps(
        {"recipe": str(path), "stages": [str(s) for s in stages],
         "folders": [f.name for f in folders]}, indent=2) + "\n", encoding="utf-8")
    for i, (stage, folder) in enumerate(zip(stages, folders)):
        overrides = per_stage[names[i]] + ([f"model.init_from={folders[i - 1]}"] if i else [])
        reporting.info(f"[bold]chain stage {i + 1}/{len(stages)}:[/] {stage} -> {folder}")
        if (folder / "report.json").is_file():
            reporting.info(f"{folder}: finished earlier; kept")
            continue
        train(stage, overrides, folder, overwrite=False,
              resume=(folder / "last.pt").is_file(), on_step=on_step)
    reporting.info(f"chain done: the last stage ({folders[-1]}) answers for {run_dir}")
    return run_dir


def _stage_overrides(overrides: list[str], names: list[str]) -> dict[str, list[str]]:
    """`STAGE.KEY.PATH=VALUE` -> {STAGE: [KEY.PATH=VALUE]}; an unknown stage is an error."""
    per_stage: dict[str, list[str]] = {name: [] for name in names}
    for item in overrides:
        stage, dot, rest = item.partition(".")
        if stage not in per_stage or not dot:
            near = difflib.get_close_matches(stage, names, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise ConfigError(f"--set {item}: a chain takes overrides per stage, as "
                              f"STAGE.KEY=VALUE with STAGE one of {', '.join(names)}{hint}")
        per_stage[stage].append(rest)
    return per_stage


def _check_resumable(run_dir: Path, recipe: Recipe) -> None:
    saved_path = run_dir / "recipe.yaml"
    if not (run_dir / "last.pt").is_file():
        raise ConfigError(f"--resume: no last.pt in {run_dir}; nothing to resume")
    if not saved_path.is_file():
        raise ConfigError(f"--resume: {saved_path} not found; is {run_dir} a run folder?")
    saved = _flatten(load_recipe(saved_path).to_dict())
    new = _flatten(recipe.to_dict())
    changed = [k for k in new if new[k] != saved.get(k) and k not in RESUMABLE_CHANGES]
    if changed:
        k = changed[0]
        raise ConfigError(f"--resume: the recipe differs from the run's at {k} "
                          f"({saved.get(k)!r} in the run, {new[k]!r} now); only "
                          f"{', '.join(sorted(RESUMABLE_CHANGES))} may change")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def evaluate(model_paths: Path | list[Path], split: str | None = None, src: Path | None = None,
             ref: Path | None = None, beam: int | None = None, out_dir: Path | None = None,
             precision: str | None = None, input_path: Path | None = None,
             stdin: TextIO | None = None, batch_size: int | None = None) -> dict:
    """Score a model of any task (or an ensemble of classifiers); options that do not apply to
    its task are refused."""
    runtime.tune_allocator()
    paths = [model_paths] if isinstance(model_paths, (str, Path)) else list(model_paths)
    model_path = paths[0]
    model, tok, recipe = checkpoint.load_model(model_path)
    if len(paths) > 1 and recipe.task != "classify":
        raise ConfigError(f"several --model: ensembles are for classifiers; {model_path} is a "
                          f"{recipe.task} model")
    if recipe.task != "translate":
        if src is not None or ref is not None or beam is not None:
            raise ConfigError("--src/--ref/--beam are for translation models")
    if recipe.task == "classify":
        members = classify_pipeline.load_members(paths, first=(model, tok, recipe))
        return classify_pipeline.evaluate(members, paths, split, input_path, batch_size,
                                          out_dir, precision)
    if recipe.task == "lm":
        return lm_pipeline.evaluate(model, tok, recipe, model_path, split, input_path, stdin,
                                    batch_size, out_dir, precision)
    if input_path is not None:
        raise ConfigError("--input is for language models and classifiers; score a "
                          "translation model with --src and --ref, or --split")
    return translate_pipeline.evaluate(model, tok, recipe, model_path, split, src, ref, beam,
                                       batch_size, out_dir, precision)


def _write_train_report(run_dir: Path, recipe: Recipe, result: trainer.TrainResult,
                        n_params: int, test: dict | None) -> None:
    rows = reporting.read_metrics(run_dir / "metrics.jsonl")
    s = result.state
    test_md = test.pop("markdown") if test else []
    summary = {"recipe": recipe.name, "task": recipe.task, "parameters": n_params,
               "steps": s.step, "epochs": s.epoch,
               "train_seconds": round(s.elapsed_s, 1), "stop_reason": result.reason,
               "best_step": s.best_step, "best_" + recipe.train.early_stopping_metric: s.best_score,
               "last_validation": result.last_validation, "test": test}
    reporting.write_json(run_dir / "report.json", summary)
    tps = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r]
    unit = {"translate": "target tokens/s", "lm": "tokens/s", "classify": "texts/s"}[recipe.task]
    md = [f"# Run report: {recipe.name}\n",
          f"task `{recipe.task}`, {n_params:,} parameters, {s.step:,} steps in "
          f"{s.elapsed_s / 60:.1f} min of training ({result.reason or 'done'}); "
          f"median {sorted(tps)[len(tps) // 2] if tps else 0:,.0f} {unit}; "
          f"precision {recipe.train.precision}.\n",
          f"Best validation {recipe.train.early_stopping_metric}: {s.best_score:.4g} at step "
          f"{s.best_step} (`best.pt`); last checkpoint `last.pt`; resolved recipe "
          f"`recipe.yaml`.\n", "## Validation curve\n", reporting.curve_table_md(rows), *test_md]
    (run_dir / "report.md").write_text("\n".join(md), encoding="utf-8")
    reporting.info(f"report: {run_dir / 'report.md'}")

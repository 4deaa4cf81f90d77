"""Chain recipes: other recipes trained one after the other in one run folder, each stage
starting from the one before (ULMFiT: general LM -> target-domain LM -> classifier)."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Callable, Literal

from pydantic import Field, model_validator

from lstm_nlp.config import load_recipe
from lstm_nlp.config.sections import Section, Text
from lstm_nlp.errors import ConfigError
from lstm_nlp.reporting import console as reporting


class ChainRecipe(Section):
    """Recipes trained one after the other in one run folder (`<run>/<stage name>/`); each stage
    after the first starts from the one before (its model.init_from is set to it): ULMFiT's
    general LM -> target-domain LM -> classifier. Paths are relative to the chain recipe."""
    task: Literal["chain"]
    name: Text = ""
    seed: int = 1
    stages: list[Text] = Field(default_factory=list)

    @model_validator(mode="after")
    def _two_stages(self) -> ChainRecipe:
        if len(self.stages) < 2:
            raise ValueError("stages: a chain needs at least two recipe files")
        return self


def train_chain(path: Path, chain: ChainRecipe, overrides: list[str], run_dir: Path,
                overwrite: bool, resume: bool, on_step: Callable[[int], None] | None,
                train_stage: Callable[..., Path], device: str | None = None) -> Path:
    """Stage i trains in <run>/<its name>/ from stage i-1 (model.init_from). `--set` overrides
    name their stage: `imdb-lm.train.max_minutes=10`; `device` (--device) is every stage's
    train.device. With --resume, finished stages are kept, an interrupted one continues, the
    rest start."""
    stages = [path.parent / s for s in chain.stages]
    for stage in stages:
        if not stage.is_file():
            raise ConfigError(f"{path}: stage recipe not found: {stage}")
    names = [load_recipe(stage).name for stage in stages]  # the stages' run folder names
    per_stage = _stage_overrides(overrides, names)
    if device:
        for name in names:
            per_stage[name].append(f"train.device={device}")
    recipes = [load_recipe(stage, per_stage[name])  # all checked before any training
               for stage, name in zip(stages, names)]
    for stage, recipe in zip(stages[1:], recipes[1:]):
        if "init_from" not in type(recipe.model).model_fields:  # the one key a stage gets set
            raise ConfigError(f"{stage}: a chain stage after the first must be able to start "
                              f"from a language model (model.init_from); task {recipe.task} "
                              "cannot")
    if resume and not (run_dir / "chain.json").is_file():
        raise ConfigError(f"--resume: {run_dir} is not a chain run folder")
    from lstm_nlp.training import runtime  # torch: not on the --help path

    for recipe in recipes:  # each stage's device, before the run folder is touched
        runtime.training_device(recipe.train, device is not None)
    folders = [run_dir / r.name for r in recipes]
    if resume:  # chain.json and every stage still to train: writable before any is rewritten
        for folder in [run_dir] + [f for f in folders if f.is_dir()
                                   and not (f / "report.json").is_file()]:
            runtime.check_writable(folder)
    else:
        run_dir = runtime.prepare_run_dir(run_dir, overwrite, resume=False)
    (run_dir / "chain.json").write_text(json.dumps(
        {"recipe": str(path), "stages": [str(s) for s in stages],
         "folders": [f.name for f in folders]}, indent=2) + "\n", encoding="utf-8")
    for i, (stage, folder) in enumerate(zip(stages, folders)):
        overrides = per_stage[names[i]] + ([f"model.init_from={folders[i - 1]}"] if i else [])
        reporting.info(f"[bold]chain stage {i + 1}/{len(stages)}:[/] {stage} -> {folder}")
        if (folder / "report.json").is_file():
            reporting.info(f"{folder}: finished earlier; kept")
            continue
        train_stage(stage, overrides, folder, overwrite=False,  # resume: afresh if no last.pt
                    resume=(folder / "recipe.yaml").is_file(), on_step=on_step)
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

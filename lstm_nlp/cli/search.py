"""The `search` command: hyperparameter search on Optuna (the work is in lstm_nlp/search/)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer


class Sampler(str, Enum):
    grid = "grid"
    random = "random"
    tpe = "tpe"


class Pruner(str, Enum):
    none = "none"
    median = "median"
    hyperband = "hyperband"


def search(
    recipe: Annotated[Path, typer.Argument(metavar="RECIPE", help="YAML recipe to start from.")],
    space: Annotated[Path, typer.Option(metavar="SPACE.yaml", help="Search space: recipe keys -> distributions or lists.")],
    trials: Annotated[int, typer.Option(metavar="N", min=1, help="Trials in all (every process's counted).")],
    sampler: Annotated[Sampler, typer.Option(metavar="grid|random|tpe", show_default=False, help="How trials draw their values \\[tpe].")] = Sampler.tpe,
    pruner: Annotated[Pruner, typer.Option(metavar="none|median|hyperband", show_default=False, help="Which trials stop early \\[median].")] = Pruner.median,
    storage: Annotated[Optional[str], typer.Option(metavar="URL", help="Database of the study (several processes or machines share it) \\[sqlite in the run folder].")] = None,
    study: Annotated[Optional[str], typer.Option(metavar="NAME", help="Study name \\[RECIPE-NAME-search].")] = None,
    jobs: Annotated[int, typer.Option(metavar="N", min=1, show_default=False, help="Trials at once on this machine (threads shared out) \\[1].")] = 1,
    resume: Annotated[bool, typer.Option("--resume", help="Continue (or join) the study: interrupted trials run again from their checkpoints.")] = False,
    run_dir: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Folder of the trials and the report \\[runs/STUDY].")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="KEY=VALUE", help="Override a recipe key for every trial (repeatable).")] = None,
) -> None:
    """Search hyperparameters: trials as runs, report.md and best-recipe.yaml."""
    from lstm_nlp.search.run import Request
    from lstm_nlp.search.run import search as run_search

    run_search(Request(recipe, space, trials, sampler.value, pruner.value, storage, study, jobs,
                       resume, run_dir, set_ or []))

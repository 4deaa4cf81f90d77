"""What a search leaves in `runs/<study>/`: report.md (the trials table, the best values,
figures), report.json, best-recipe.yaml (the base recipe with the best values: a plain recipe,
trainable as is) and the figures, drawn by Optuna's matplotlib visualisation: the optimisation
history, the parameters' importances and a parallel-coordinate plot."""

from __future__ import annotations

import datetime
import warnings
from pathlib import Path
from typing import Any

import yaml

from lstm_nlp.config.loader import apply_overrides, recipe_from_dict
from lstm_nlp.extras import require
from lstm_nlp.reporting import markdown
from lstm_nlp.reporting.console import format_metric, info, write_json
from lstm_nlp.search import study as studies
from lstm_nlp.search.space import override

FIGURES = {"history": "optimisation history", "importances": "parameter importances",
           "parallel": "parallel coordinates"}


def shown_trials(trials: list[Any]) -> list[Any]:
    """The trials a report lists: all but queued ones and those made past --trials."""
    state = studies.load_optuna().trial.TrialState
    return [t for t in trials if t.state != state.WAITING
            and not t.system_attrs.get(studies.SURPLUS)]


def state_of(trial: Any, later: dict[int, int]) -> str:
    """complete, pruned, failed, running; interrupted (a stop signal) or lost (no heartbeat)
    for a failed trial that another continues."""
    if trial.number in later:
        return "interrupted" if "interrupted" in trial.user_attrs else "lost"
    return trial.state.name.lower().replace("fail", "failed")


def note(trial: Any, later: dict[int, int]) -> str:
    """Why it ended where it did: the pruner's verdict, the error, what continues it."""
    if trial.number in later:
        return f"continued by trial {later[trial.number]}"
    earlier = trial.system_attrs.get(studies.RETRIES, [])
    said = trial.user_attrs.get("pruned") or trial.user_attrs.get("error") or ""
    if earlier:
        said = f"continues trial {earlier[-1]}" + (f"; {said}" if said else "")
    return said


def score(trial: Any, higher: bool) -> float | None:
    """A complete trial's value; the best validation so far of a pruned or running one."""
    if trial.state.name == "COMPLETE":
        return trial.value
    seen = list(trial.intermediate_values.values())
    return (max if higher else min)(seen) if seen else None


def minutes(trial: Any) -> str:
    if trial.datetime_start is None:
        return "-"
    end = trial.datetime_complete or datetime.datetime.now()
    return f"{(end - trial.datetime_start).total_seconds() / 60:.1f}"


def value_text(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def table(trials: list[Any], keys: list[str], settings: studies.Settings,
          higher: bool) -> tuple[list[str], list[list[str]]]:
    """The trials table (header, rows), the same in the live view and in report.md."""
    later = studies.continued(trials)
    header = ["trial", "state", *keys, f"val {settings.metric}", "validations", "minutes",
              "note"]
    rows = [[str(t.number), state_of(t, later), *(value_text(t.params.get(k, "-")) for k in keys),
             format_metric(settings.score, score(t, higher)),
             str(len(t.intermediate_values)), minutes(t), note(t, later)]
            for t in shown_trials(trials)]
    return header, rows


def tally(trials: list[Any]) -> tuple[int, str]:
    """How many trials count so far, and by state: (6, '4 complete, 1 pruned, 1 failed')."""
    later = studies.continued(trials)
    shown = [t for t in shown_trials(trials) if t.number not in later]
    by_state: dict[str, int] = {}
    for t in shown:
        by_state[state_of(t, later)] = by_state.get(state_of(t, later), 0) + 1
    return len(shown), ", ".join(f"{n} {name}" for name, n in by_state.items())


def best_trial(study: Any) -> Any | None:
    """The complete trial with the best score (pruned ones stopped early; never best)."""
    state = studies.load_optuna().trial.TrialState
    return study.best_trial if study.get_trials(deepcopy=False, states=(state.COMPLETE,)) \
        else None


def write(study: Any, settings: studies.Settings, recipe_path: Path, space_path: Path) -> None:
    """report.md, report.json, best-recipe.yaml and the figures, from the study as it stands
    (also after Ctrl-C: the trials so far)."""
    run_dir = Path(settings.run_dir)
    trials = study.get_trials(deepcopy=False)
    keys = list(study.user_attrs["space"])
    higher = study.direction.name == "MAXIMIZE"
    best = best_trial(study)
    if best is not None:
        write_best_recipe(run_dir / "best-recipe.yaml", study, settings, best)
    figures = draw_figures(study, run_dir, settings)
    header, rows = table(trials, keys, settings, higher)
    lines = [f"# Search report: {settings.study}\n",
             f"Recipe `{recipe_path}` (resolved: `base-recipe.yaml`), space `{space_path}`; "
             f"sampler {settings.sampler}, pruner {settings.pruner}. Objective: the best "
             f"validation {settings.metric} of each trial "
             f"({'maximised' if higher else 'minimised'}); the test split is not scored "
             "during a search.\n",
             f"{_tally_line(trials)}. " + _best_line(best, settings), "",
             "## Trials\n", markdown.table(header, rows), "## Figures\n", *figures]
    (run_dir / "report.md").write_text("\n".join(lines), encoding="utf-8")
    write_json(run_dir / "report.json", {
        "study": settings.study, "recipe": str(recipe_path), "space": str(space_path),
        "sampler": settings.sampler, "pruner": settings.pruner, "metric": settings.metric,
        "direction": "maximize" if higher else "minimize",
        "best": None if best is None else {"trial": best.number, "value": best.value,
                                           "params": best.params},
        "trials": [dict(zip(header, row)) for row in rows]})
    info(f"search report: {run_dir / 'report.md'}")


def _tally_line(trials: list[Any]) -> str:
    n, by_state = tally(trials)
    return f"{n} trial{'s' if n != 1 else ''}" + (f": {by_state}" if by_state else "")


def _best_line(best: Any, settings: studies.Settings) -> str:
    if best is None:
        return "No trial is complete yet: no best recipe.\n"
    values = ", ".join(f"`{k}={value_text(v)}`" for k, v in best.params.items())
    return (f"Best: trial {best.number}, val {settings.metric} "
            f"{format_metric(settings.score, best.value)} (`trial-{best.number:04d}/`), with "
            f"{values}; as a recipe: `best-recipe.yaml` "
            f"(`lstm-nlp train {Path(settings.run_dir) / 'best-recipe.yaml'}`).\n")


def write_best_recipe(path: Path, study: Any, settings: studies.Settings, best: Any) -> None:
    """The base recipe with the best trial's values and a name of its own: no search keys, no
    trial settings (its test split and threads are the base recipe's)."""
    raw = apply_overrides(study.user_attrs["recipe"],
                          [*(override(k, v) for k, v in best.params.items()),
                           f"name={settings.study}-best"])
    recipe = recipe_from_dict(raw)
    head = (f"# The best of search {settings.study}: trial {best.number}, val "
            f"{settings.metric} {format_metric(settings.score, best.value)}.\n"
            "# Its base recipe with these values: "
            + ", ".join(f"{k}={value_text(v)}" for k, v in best.params.items()) + "\n"
            "# (limits and --set overrides as the search's trials had them).\n")
    path.write_text(head + yaml.safe_dump(recipe.to_dict(), sort_keys=False), encoding="utf-8")


def draw_figures(study: Any, run_dir: Path, settings: studies.Settings) -> list[str]:
    """The figures as PNGs beside the report, and the report's lines that show them (or say
    why one is missing)."""
    state = studies.load_optuna().trial.TrialState
    complete = len(study.get_trials(deepcopy=False, states=(state.COMPLETE,)))
    if complete == 0:
        return ["_No figures: no trial is complete yet._\n"]
    lines = []
    for name, title in FIGURES.items():
        if name == "importances" and complete < 2:
            lines.append(f"_No parameter importances: they need at least 2 complete trials "
                         f"({complete} so far)._\n")
            continue
        _draw(name, study, run_dir / f"{name}.png", f"val {settings.metric}")
        lines.append(f"![{title}]({name}.png)\n")
    return lines


def _draw(name: str, study: Any, path: Path, target: str) -> None:
    """One of Optuna's matplotlib figures. Importances by PED-ANOVA (Watanabe et al. 2023),
    which Optuna computes itself (its default, fANOVA, needs scikit-learn)."""
    matplotlib = require("matplotlib", "search", "the search's figures")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "search", "the search's figures")
    optuna = studies.load_optuna()
    draw = optuna.visualization.matplotlib
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "experimental", and too few trials for a quantile
        if name == "history":
            axes = draw.plot_optimization_history(study, target_name=target)
        elif name == "importances":
            axes = draw.plot_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                target_name=target)
        else:
            axes = draw.plot_parallel_coordinate(study, target_name=target)
    figure = axes.figure if hasattr(axes, "figure") else axes[0].figure
    figure.set_size_inches(9, 5)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)

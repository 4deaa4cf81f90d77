"""Every task, declared once: the table below is the one place that names them.

A task is a folder `lstm_nlp/tasks/<name>/` with its recipe class (`config.py`) and a verbs
module that the shared code calls through these functions (imported only when a verb runs, so
`lstm-nlp --help` stays free of torch):

    setup(recipe, run_dir, resume) -> (train task, model, checkpoint extras)
        data, tokenizer and model for `train`; the train task follows `tasks.base.TrainTask`
    rebuild(ckpt, recipe, path) -> (model, tokenizer)
        the model (weights not loaded yet) and tokenizer(s) a checkpoint describes
    test_report(model, tokenizer, recipe) -> dict
        test scores for the run report (a "markdown" entry holds its section)
    evaluate(request: tasks.base.EvalRequest) -> dict
        the `eval` verb for this task's models

and, optionally, a gates module (tasks/gates.py: `inspect` and the reports' gate statistics):

    from_validation(model, task, n) -> list[nn.gates.LayerTrace]
        the model's LSTM layers over the first n texts of the train task's validation data
    from_text(model, tok, recipe, lines) -> list[nn.gates.LayerTrace]
        the same over lines of raw text
A task whose models export to ONNX names the module with `export_onnx(model, tokenizer, recipe,
folder) -> manifest entries` (`lstm-nlp export --format onnx`).

Adding a task means a new folder and one entry in TASKS (tests/test_registry.py does it with a
toy task); nothing else in the package names tasks.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

from lstm_nlp.errors import ConfigError

# early_stopping_metric -> (key in the validation scores, higher is better)
LOSS_METRICS = {"loss": ("val_loss", False), "ppl": ("val_ppl", False),
                "accuracy": ("val_acc", True)}


@dataclass(frozen=True)
class TaskSpec:
    name: str                    # the recipe's `task` value
    recipe_ref: type | str       # its recipe class, or "module:Class" (imported when needed)
    verbs_module: str            # module with setup, rebuild, test_report, evaluate
    commands_module: str         # module whose COMMANDS are its Typer commands ("": none)
    noun: str                    # "translation": says what a model of this task is
    verbs: tuple[str, ...]       # the inference verbs that take its models
    unit: str                    # what training throughput counts ("tok", "texts")
    unit_long: str               # the same in reports ("target tokens")
    metrics: dict[str, tuple[str, bool]] = field(default_factory=lambda: dict(LOSS_METRICS))
    gates_module: str = ""       # module with from_validation, from_text ("": no gate statistics)
    onnx_module: str = ""        # module with export_onnx ("": no ONNX export)

    @property
    def recipe(self) -> type:
        return _resolve(self.recipe_ref)

    def api(self) -> ModuleType:
        return importlib.import_module(self.verbs_module)

    def commands(self) -> list:
        if not self.commands_module:  # a task with no verbs of its own (train and eval only)
            return []
        return list(importlib.import_module(self.commands_module).COMMANDS)


TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in [
    TaskSpec("translate", "lstm_nlp.tasks.translate.config:TranslateRecipe",
             "lstm_nlp.tasks.translate.verbs",
             "lstm_nlp.tasks.translate.commands", "translation",
             ("translate", "eval"), "tok", "target tokens",
             {**LOSS_METRICS, "bleu": ("val_bleu", True)},
             onnx_module="lstm_nlp.tasks.translate.onnx_export",
             gates_module="lstm_nlp.tasks.translate.gates"),
    TaskSpec("lm", "lstm_nlp.tasks.lm.config:LMRecipe", "lstm_nlp.tasks.lm.verbs",
             "lstm_nlp.tasks.lm.commands", "language", ("generate", "eval"),
             "tok", "tokens", gates_module="lstm_nlp.tasks.lm.gates"),
    TaskSpec("classify", "lstm_nlp.tasks.classify.config:ClassifyRecipe",
             "lstm_nlp.tasks.classify.verbs",
             "lstm_nlp.tasks.classify.commands", "classification",
             ("classify", "eval"), "texts", "texts",
             gates_module="lstm_nlp.tasks.classify.gates"),
]}

# A chain is not a task (it trains other tasks' recipes in turn) but has a recipe of its own.
CHAIN_RECIPE = "lstm_nlp.tasks.chain:ChainRecipe"


def recipe_classes() -> dict[str, type]:
    """`task` value -> recipe class, for the recipe loader (imports the config modules: the
    CLI's start-up, `--help` included, only needs the names)."""
    return {**{name: spec.recipe for name, spec in TASKS.items()},
            "chain": _resolve(CHAIN_RECIPE)}


def _resolve(ref: type | str) -> type:
    if not isinstance(ref, str):
        return ref
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def get(name: str) -> TaskSpec:
    if name not in TASKS:
        raise ConfigError(f"task: no task '{name}' (tasks: {', '.join(TASKS)})")
    return TASKS[name]


def register(spec: TaskSpec) -> None:
    """Add a task at run time (a plug-in, or a test's toy task)."""
    TASKS[spec.name] = spec


def unregister(name: str) -> None:
    TASKS.pop(name, None)

"""A task is declared once: this file defines a whole toy task (reverse a sequence of digits),
registers it, and trains and evaluates it through the same `train` and `eval` paths as the real
tasks. Nothing else in the package is edited for it."""

from __future__ import annotations

import json
import random
from typing import Literal

import pytest
import torch
from pydantic import Field
from torch import nn
from typer.testing import CliRunner

from lstm_nlp.cli import app
from lstm_nlp.config.sections import Section, TrainConfig, section
from lstm_nlp.tasks import registry
from lstm_nlp.tasks.base import EvalRequest, LossOutput, inference
from lstm_nlp.training import checkpoint

from conftest import write_recipe

# ---------------------------------------------------------------- the toy task: its recipe


class ReverseData(Section):
    length: int = Field(4, ge=1)  # digits per sequence
    train: int = 512              # generated training sequences
    valid: int = 64
    test: str = "test"            # the split the run report scores (64 sequences)


class ReverseModel(Section):
    hidden_size: int = 32


class ReverseTrain(TrainConfig):
    batch_size: int = 32


class ReverseRecipe(Section):
    task: Literal["reverse"]
    name: str = ""
    seed: int = 1
    data: ReverseData = section()
    model: ReverseModel = section()
    train: ReverseTrain = section()


# ---------------------------------------------------------------- its model and trainer view


def sequences(n: int, length: int, seed: int) -> torch.Tensor:
    rng = random.Random(seed)
    return torch.tensor([[rng.randrange(10) for _ in range(length)] for _ in range(n)])


class Reverser(nn.Module):
    """Digits (B, L) -> logits (B, L, 10) of the reversed sequence: a biLSTM sees it all."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.embed = nn.Embedding(10, hidden_size)
        self.lstm = nn.LSTM(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden_size, 10)

    def loss(self, digits: torch.Tensor) -> LossOutput:
        h, _ = self.lstm(self.embed(digits))                                   # (B, L, 2H)
        logits = self.out(h)                                                   # (B, L, 10)
        target = digits.flip(1)
        nll = nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(),
                                          reduction="sum")
        correct = int((logits.argmax(-1) == target).sum())
        return LossOutput(nll, target.numel(), correct)


class ReverseTask:
    def __init__(self, recipe: ReverseRecipe):
        d = recipe.data
        self.recipe = recipe
        self.train = sequences(d.train, d.length, recipe.seed)
        self.valid = sequences(d.valid, d.length, recipe.seed + 1)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        order = torch.randperm(len(self.train),
                               generator=torch.Generator().manual_seed(epoch)).tolist()
        size = self.recipe.train.batch_size
        return [order[i: i + size] for i in range(0, len(order), size)]

    def collate(self, rows: list[int]) -> torch.Tensor:
        return self.train[rows]

    def loss(self, model: Reverser, batch: torch.Tensor) -> LossOutput:
        return model.loss(batch)

    def validate(self, model: Reverser) -> dict[str, float]:
        return scores(model, self.valid, "val_")

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def scores(model: Reverser, digits: torch.Tensor, prefix: str = "") -> dict[str, float]:
    with inference(model):
        out = model.loss(digits)
    return {f"{prefix}loss": float(out.loss) / out.n_tokens,
            f"{prefix}acc": out.n_correct / out.n_tokens}


# ---------------------------------------------------------------- the functions the registry names


def setup(recipe: ReverseRecipe, run_dir, resume: bool):
    model = Reverser(recipe.model.hidden_size)
    return ReverseTask(recipe), model, {"task": recipe.task, "recipe": recipe.to_dict()}


def rebuild(ckpt: dict, recipe: ReverseRecipe, path):
    return Reverser(recipe.model.hidden_size), None


def test_report(model: Reverser, tok, recipe: ReverseRecipe) -> dict:
    result = scores(model, sequences(64, recipe.data.length, recipe.seed + 2))
    result["markdown"] = [f"## Test\n\ndigit accuracy {result['acc']:.1%}\n"]
    return result


test_report.__test__ = False  # a registry function, not a pytest test


def evaluate(request: EvalRequest, loaded) -> dict:
    model, _, recipe = loaded
    request.refuse(("src", "ref", "beam", "input"), "are not for the reverse task")
    result = scores(model, sequences(64, recipe.data.length, recipe.seed + 2))
    folder = request.out_dir or request.models[0]
    (folder / "eval-test.json").write_text(json.dumps(result))
    return result


TOY = registry.TaskSpec("reverse", ReverseRecipe, __name__, "", "digit reversal", ("eval",),
                        "digits", "digits")


@pytest.fixture
def toy_task():
    registry.register(TOY)
    yield TOY
    registry.unregister(TOY.name)


def test_a_registered_toy_task_trains_and_evaluates_through_the_shared_paths(toy_task, tmp_path):
    recipe = write_recipe(tmp_path / "reverse.yaml", {
        "task": "reverse", "train": {"lr": 0.03, "max_epochs": 20, "valid_every": 0}})
    run_dir = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(run_dir)])
    assert result.exit_code == 0, result.output

    report = json.loads((run_dir / "report.json").read_text())
    assert report["task"] == "reverse" and report["epochs"] == 20
    assert report["test"]["acc"] > 0.9, report  # it learned to reverse (chance: 10%)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 21))
    assert "digit accuracy" in (run_dir / "report.md").read_text()

    model, tok, loaded = checkpoint.load_model(run_dir)  # rebuilt through the registry
    assert isinstance(model, Reverser) and loaded.task == "reverse" and not model.training

    result = runner.invoke(app, ["eval", "-m", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "eval-test.json").read_text())["acc"] > 0.9
    result = runner.invoke(app, ["eval", "-m", str(run_dir), "--beam", "3"])
    assert result.exit_code == 1 and "are not for the reverse task" in result.stderr


def test_the_toy_recipe_is_checked_like_the_real_ones(toy_task, tmp_path):
    recipe = write_recipe(tmp_path / "reverse.yaml", {
        "task": "reverse", "data": {"lenght": 3}, "train": {"max_epochs": 1}})
    result = CliRunner().invoke(app, ["train", str(recipe)])
    assert result.exit_code == 1
    assert "unknown key 'data.lenght'; did you mean 'data.length'?" in result.stderr


def test_unregistered_task_is_a_recipe_error(tmp_path):
    recipe = write_recipe(tmp_path / "reverse.yaml", {"task": "reverse"})
    result = CliRunner().invoke(app, ["train", str(recipe)])
    assert result.exit_code == 1
    assert "task: must be one of translate, lm, classify, chain; got 'reverse'" in result.stderr


def test_every_task_is_declared_in_one_table():
    assert list(registry.TASKS) == ["translate", "lm", "classify"]
    for spec in registry.TASKS.values():
        api = spec.api()
        for name in ("setup", "rebuild", "test_report", "evaluate"):
            assert callable(getattr(api, name)), f"{spec.verbs_module}.{name}"
        assert [c.__name__ for c in spec.commands()] == [v for v in spec.verbs if v != "eval"]
        assert spec.recipe.__name__.endswith("Recipe")

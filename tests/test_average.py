"""Checkpoint averaging: train.keep_checkpoints and `lstm-nlp average`."""

import pytest
import torch
from typer.testing import CliRunner

from lstm_nlp.cli import app
from lstm_nlp.errors import CheckpointError
from lstm_nlp.training import checkpoint
from lstm_nlp.training.average import average_checkpoints
from lstm_nlp.training.run import train as train_run

from conftest import tiny_recipe, write_recipe

runner = CliRunner()


@pytest.fixture(scope="module")
def kept_run(tmp_path_factory, corpus):
    folder = tmp_path_factory.mktemp("kept")
    recipe = write_recipe(folder / "kept.yaml",
                          tiny_recipe(corpus, train={"keep_checkpoints": 2}))
    return train_run(recipe, [], run_dir=folder / "run")  # validations at steps 10, 20, 30


def one_line_error(result, *parts):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for part in parts:
        assert part in lines[0], lines[0]


def test_keep_checkpoints_keeps_the_last_n_weights_only(kept_run):
    kept = checkpoint.kept_checkpoints(kept_run)
    assert [p.name for p in kept] == ["step-20.pt", "step-30.pt"]
    assert sorted(p.name for p in (kept_run / "checkpoints").iterdir()) == \
        ["step-20.pt", "step-30.pt"]  # no temp files left either
    ckpt = checkpoint.load(kept[-1])
    assert "optimizer" not in ckpt and "rng" not in ckpt and "task_state" not in ckpt
    assert ckpt["train_state"]["step"] == 30 and "recipe" in ckpt and "tokenizer" in ckpt
    last = checkpoint.load(kept_run / "last.pt")
    assert all(torch.equal(last["model"][k], v) for k, v in ckpt["model"].items())


def test_averaging_identical_checkpoints_gives_the_same_weights(kept_run):
    path = kept_run / "checkpoints" / "step-30.pt"
    avg = average_checkpoints([path, path])
    ckpt = checkpoint.load(path)
    assert avg["model"].keys() == ckpt["model"].keys()
    for key, tensor in ckpt["model"].items():
        assert avg["model"][key].dtype == tensor.dtype
        assert torch.equal(avg["model"][key], tensor), key
    assert avg["averaged_from"] == [str(path), str(path)]
    assert "optimizer" not in avg and avg["recipe"] == ckpt["recipe"]


def test_averaging_two_checkpoints_gives_the_mean(kept_run):
    a, b = checkpoint.kept_checkpoints(kept_run)
    avg = average_checkpoints([a, b])
    wa, wb = checkpoint.load(a)["model"], checkpoint.load(b)["model"]
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)
    for key in wa:
        if wa[key].is_floating_point():
            expected = ((wa[key].double() + wb[key].double()) / 2).to(wa[key].dtype)
            assert torch.equal(avg["model"][key], expected), key


def test_average_cli_output_translates(kept_run, tmp_path):
    out = tmp_path / "avg.pt"
    result = runner.invoke(app, ["average", str(kept_run), "--last", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "averaged 2 checkpoints" in result.stderr and out.is_file()
    assert checkpoint.load(out)["averaged_from"][-1].endswith("step-30.pt")
    result = runner.invoke(app, ["translate", "-m", str(out), "--beam", "1"],
                           input=b"The dog sees a cat.\nA cat.\n")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2


def test_average_errors_are_one_line(kept_run, trained_run, tmp_path):
    step30 = kept_run / "checkpoints" / "step-30.pt"
    out = tmp_path / "avg.pt"
    one_line_error(runner.invoke(app, ["average", str(step30), "-o", str(out)]),
                   "at least 2 checkpoints", "got 1")
    one_line_error(runner.invoke(app, ["average", str(kept_run), "--last", "3", "-o", str(out)]),
                   "has 2 kept checkpoints (step-20.pt, step-30.pt)", "--last 3 asks for more",
                   "train.keep_checkpoints")
    one_line_error(runner.invoke(app, ["average", str(trained_run), "--last", "2", "-o",
                                       str(out)]), "has 0 kept checkpoints")
    # the same model section but one tensor of another shape
    ckpt = checkpoint.load(step30)
    key = next(iter(ckpt["model"]))
    ckpt["model"][key] = torch.zeros(3, 3)
    odd = tmp_path / "odd.pt"
    checkpoint.save(odd, {k: v for k, v in ckpt.items() if k not in ("format", "version")})
    one_line_error(runner.invoke(app, ["average", str(step30), str(odd), "-o", str(out)]),
                   str(odd), key, "(3, 3)")
    with pytest.raises(CheckpointError, match="odd.pt"):
        average_checkpoints([step30, odd])
    assert not out.exists()

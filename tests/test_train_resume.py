"""Training end to end on a tiny corpus: run folder rules, checkpoints, resume, Ctrl-C."""

import json
import os
import re
import signal

import pytest
import torch

from lstm_nlp.errors import CheckpointError, ConfigError, TrainingInterrupted
from lstm_nlp.training import checkpoint
from lstm_nlp.training.run import train as train_run

from conftest import tiny_recipe, write_recipe


def test_run_folder_contents_and_report(trained_run):
    for name in ("recipe.yaml", "best.pt", "last.pt", "metrics.jsonl", "report.md",
                 "report.json", "tokenizer/joint.model"):
        assert (trained_run / name).is_file(), name
    rows = [line for line in (trained_run / "metrics.jsonl").read_text().splitlines() if line]
    assert len(rows) == 3  # validations at steps 10, 20, 30
    report = (trained_run / "report.md").read_text()
    assert "## Validation curve" in report and "BLEU" in report and "tok:13a" in report
    assert re.search(r"^Best validation bleu: \d+\.\d\d at step \d+ \(`best\.pt`\)", report,
                     re.MULTILINE)  # as the validation table shows BLEU


def test_existing_run_folder_is_never_overwritten_silently(tmp_path, corpus, trained_run):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus))
    with pytest.raises(ConfigError, match="already exists; use --resume"):
        train_run(recipe, [], run_dir=trained_run)
    with pytest.raises(ConfigError, match="no last.pt"):
        train_run(recipe, [], run_dir=tmp_path / "empty", resume=True)


def test_save_load_gives_identical_outputs(trained_run, tmp_path):
    model, tok, recipe = checkpoint.load_model(trained_run)
    ckpt = checkpoint.load(trained_run / "best.pt")
    copy = tmp_path / "copy.pt"
    checkpoint.save(copy, {k: v for k, v in ckpt.items() if k not in ("format", "version")})
    model2, tok2, _ = checkpoint.load_model(copy)
    src = torch.tensor([tok.src.encode(["The dog sees a cat."])[0]])
    tgt = torch.tensor([[tok.tgt.bos_id] + tok.tgt.encode(["Der Hund sieht eine Katze."])[0]])
    with torch.no_grad():
        a = model.forward_states(src, torch.tensor([src.size(1)]), tgt)
        b = model2.forward_states(src, torch.tensor([src.size(1)]), tgt)
    assert torch.equal(a, b)
    assert tok2.src.proto == tok.src.proto


def test_corrupt_and_mismatched_checkpoints(trained_run, tmp_path):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((trained_run / "best.pt").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="not a readable lstm-nlp checkpoint"):
        checkpoint.load_model(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not an lstm-nlp checkpoint"):
        checkpoint.load_model(foreign)
    ckpt = checkpoint.load(trained_run / "best.pt")
    ckpt["recipe"]["model"]["hidden_size"] = 128  # weights no longer fit the recipe
    mismatched = tmp_path / "mismatched.pt"
    checkpoint.save(mismatched, {k: v for k, v in ckpt.items() if k not in ("format", "version")})
    with pytest.raises(CheckpointError, match="model weights do not match|does not match"):
        checkpoint.load_model(mismatched)
    with pytest.raises(CheckpointError, match="no checkpoint in this folder"):
        checkpoint.load_model(tmp_path)


def test_best_pt_is_weights_tokenizer_and_recipe_only(trained_run):
    """best.pt is the file to share: no optimizer, RNG or task state (resume reads last.pt),
    so smaller than last.pt by at least Adam's two moments, twice the weights (this tiny
    model's tokenizer is as large as its weights: best.pt is half of last.pt here, a third
    for the demo model)."""
    best = checkpoint.load(trained_run / "best.pt")
    assert not {"optimizer", "rng", "task_state"} & best.keys()
    assert {"model", "recipe", "tokenizer", "train_state"} <= best.keys()
    weight_bytes = sum(t.numel() * t.element_size() for t in best["model"].values())
    sizes = {name: (trained_run / name).stat().st_size for name in ("best.pt", "last.pt")}
    assert sizes["last.pt"] - sizes["best.pt"] > 2 * weight_bytes


def test_checkpoint_files_are_replaced_atomically(trained_run):
    leftovers = [p.name for p in trained_run.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def _final_weights(run_dir):
    return checkpoint.load(run_dir / "last.pt")["model"]


def test_kill_and_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, corpus):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(
        corpus, train={"max_steps": 24, "valid_every": 8, "valid_bleu": False,
                       "early_stopping_metric": "loss"}, model={"dropout": 0.3}))
    train_run(recipe, [], run_dir=tmp_path / "straight")

    class Killed(Exception):
        pass

    def kill_at_13(step):
        if step == 13:  # after the checkpoint at step 8, before the one at 16
            raise Killed

    with pytest.raises(Killed):
        train_run(recipe, [], run_dir=tmp_path / "killed", on_step=kill_at_13)
    assert checkpoint.load(tmp_path / "killed" / "last.pt")["train_state"]["step"] == 8
    train_run(recipe, [], run_dir=tmp_path / "killed", resume=True)
    a, b = _final_weights(tmp_path / "straight"), _final_weights(tmp_path / "killed")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps = [line for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == 3  # 8, 16, 24: nothing duplicated by the replay


def test_resume_from_an_epochs_end_gives_the_same_weights(tmp_path, corpus):
    """valid_every 0 checkpoints at epochs' ends only: the resumed run begins the next epoch."""
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(
        corpus, train={"max_steps": 0, "max_epochs": 2, "valid_every": 0, "valid_bleu": False,
                       "early_stopping_metric": "loss"}, model={"dropout": 0.3}))
    train_run(recipe, [], run_dir=tmp_path / "straight")

    class Killed(Exception):
        pass

    def kill_after_the_first_epoch(step):
        if (tmp_path / "killed" / "last.pt").is_file():
            raise Killed

    with pytest.raises(Killed):
        train_run(recipe, [], run_dir=tmp_path / "killed", on_step=kill_after_the_first_epoch)
    state = checkpoint.load(tmp_path / "killed" / "last.pt")["train_state"]
    assert (state["epoch"], state["batch_in_epoch"]) == (0, state["epoch_len"])
    train_run(recipe, [], run_dir=tmp_path / "killed", resume=True)
    a, b = _final_weights(tmp_path / "straight"), _final_weights(tmp_path / "killed")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps = (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    assert len(steps) == 2  # one validation per epoch


@pytest.mark.parametrize("limits", [{"max_steps": 10, "valid_every": 5},
                                    {"max_steps": 0, "max_epochs": 1, "valid_every": 0}])
def test_resuming_a_finished_run_adds_no_validation(tmp_path, corpus, capsys, limits):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(
        corpus, train={**limits, "valid_bleu": False, "early_stopping_metric": "loss"}))
    run = train_run(recipe, [], run_dir=tmp_path / "run")
    metrics, last = (run / "metrics.jsonl").read_text(), (run / "last.pt").read_bytes()
    report = json.loads((run / "report.json").read_text())
    capsys.readouterr()
    train_run(recipe, [], run_dir=run, resume=True)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len({r["step"] for r in rows}) == len(rows)  # no step validated twice
    assert all(r["tokens_per_s"] > 0 and r["train_loss"] > 0 for r in rows)
    assert (run / "metrics.jsonl").read_text() == metrics
    assert (run / "last.pt").read_bytes() == last  # nothing trained, nothing saved
    again = json.loads((run / "report.json").read_text())  # the report is written again
    for key in ("steps", "epochs", "stop_reason", "best_step", "last_validation"):
        assert again[key] == report[key], key
    assert "nothing left to train" in capsys.readouterr().err


def test_resume_refuses_a_changed_experiment(tmp_path, corpus, trained_run):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus))
    with pytest.raises(ConfigError, match="differs from the run's at model.hidden_size"):
        train_run(recipe, ["model.hidden_size=32"], run_dir=trained_run, resume=True)


def test_ctrl_c_saves_a_checkpoint_and_stops(tmp_path, corpus):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus, train={"max_steps": 50}))
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN in a background job, else Python's

    def press_ctrl_c(step):
        if step == 4:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted, match=r"stopped by Ctrl-C \(SIGINT\) at step 4"):
        train_run(recipe, [], run_dir=tmp_path / "run", on_step=press_ctrl_c)
    assert checkpoint.load(tmp_path / "run" / "last.pt")["train_state"]["step"] == 4
    assert signal.getsignal(signal.SIGINT) is before  # the handler it found is restored


def test_learning_rate_schedules():
    from lstm_nlp.config.sections import TrainConfig
    from lstm_nlp.training.schedules import learning_rate
    from lstm_nlp.training.state import TrainState

    warm = TrainConfig(max_steps=100, lr=1.0, warmup_steps=10)
    assert learning_rate(warm, TrainState(step=4)) == pytest.approx(0.5)
    assert learning_rate(warm, TrainState(step=50)) == 1.0
    linear = TrainConfig(max_steps=100, lr=1.0, schedule="linear", min_lr=0.01)
    assert learning_rate(linear, TrainState(step=25)) == pytest.approx(0.75)
    assert learning_rate(linear, TrainState(step=100)) == pytest.approx(0.01)
    timed = TrainConfig(max_minutes=10, lr=1.0, schedule="linear", min_lr=0.0)
    assert learning_rate(timed, TrainState(elapsed_s=150)) == pytest.approx(0.75)
    plateau = TrainConfig(max_steps=100, lr=1.0, schedule="plateau", min_lr=0.1)
    assert learning_rate(plateau, TrainState(lr_scale=0.5)) == 0.5
    assert learning_rate(plateau, TrainState(lr_scale=0.01)) == 0.1


def test_weight_average_follows_the_formula_and_swaps_back():
    from lstm_nlp.training.averaging import WeightAverage

    model = torch.nn.Linear(3, 2)
    first = {k: v.detach().clone() for k, v in model.named_parameters()}
    avg = WeightAverage(model, decay=0.5)
    expected = {k: v.clone() for k, v in first.items()}
    for step in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        avg.update(step)
        d = min(0.5, (1 + step) / (10 + step))
        for k, p in model.named_parameters():
            expected[k] = d * expected[k] + (1 - d) * p.detach()
    for k in expected:
        assert torch.allclose(avg.avg[k], expected[k])
    raw = {k: v.detach().clone() for k, v in model.named_parameters()}
    avg.swap()
    assert all(torch.allclose(p, expected[k]) for k, p in model.named_parameters())
    avg.swap()
    assert all(torch.equal(p, raw[k]) for k, p in model.named_parameters())


def test_ctrl_c_on_the_last_step_then_resume_validates_it_once(tmp_path, corpus):
    """The uninterrupted run validates its last step (25, between validations every 10);
    stopped there before validating, the resumed run does it, without a row of zeros."""
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus, train={"max_steps": 25}))

    def press_ctrl_c(step):
        if step == 25:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted, match=r"stopped by Ctrl-C \(SIGINT\) at step 25"):
        train_run(recipe, [], run_dir=tmp_path / "run", on_step=press_ctrl_c)
    train_run(recipe, [], run_dir=tmp_path / "run", resume=True)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text(
        ).splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 25]
    assert "tokens_per_s" not in rows[-1] and "train_loss" not in rows[-1]
    assert json.loads((tmp_path / "run" / "report.json").read_text())["steps"] == 25

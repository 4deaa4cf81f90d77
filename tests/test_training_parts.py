"""The trainer's parts one at a time, on a one-weight linear model and a fake task: schedules,
limits, the window and the clock, a step, validation with the weight average, epochs."""

import json
import math

import pytest
import torch

from lstm_nlp.config.sections import TrainConfig
from lstm_nlp.errors import DivergenceError, LstmNlpError
from lstm_nlp.reporting.console import Reporter
from lstm_nlp.tasks.base import LossOutput
from lstm_nlp.training import checkpoint
from lstm_nlp.training.divergence import LossMonitor
from lstm_nlp.training.loop import Trainer
from lstm_nlp.training.state import Clock, TrainState, Window


class FakeTask:
    """y = 2x: each batch is a few points, the loss the summed squared error (one 'token' per
    point). Validation hands out scripted scores (lower is better) and notes the weight it saw."""

    def __init__(self, batches=((1.0, 2.0),), scores=()):
        self.batches = [torch.tensor(b).unsqueeze(1) for b in batches]  # (points, 1)
        self.scores = list(scores)
        self.seen: list[float] = []  # the weight at each validation

    def epoch_batches(self, epoch):
        return list(range(len(self.batches)))

    def collate(self, i):
        return self.batches[i]

    def loss(self, model, x):
        loss = ((model(x) - 2 * x) ** 2).sum()
        return LossOutput(loss, n_tokens=x.size(0), n_correct=0)

    def validate(self, model):
        self.seen.append(model.weight.item())
        return {"val_loss": self.scores.pop(0) if self.scores else 1.0}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def make_trainer(run_dir, task=None, **train):
    """SGD on y = w x with w = 1 at the start."""
    cfg = TrainConfig(**{"max_steps": 10, "lr": 0.1, "optimizer": "sgd", "clip_norm": 0.0,
                         **train})
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    return Trainer(model, task or FakeTask(), cfg, run_dir, Reporter(run_dir / "metrics.jsonl"),
                   {}, ("val_loss", False))


def rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_plateau_decay_follows_the_validation_outcomes(tmp_path):
    # decay_patience 1: the lr halves after every 2 validations in a row without improvement,
    # and never goes below min_lr
    table = [  # (validation loss, lr in its row)
        (5.0, 1.0), (6.0, 1.0), (6.0, 0.5),  # best, worse, worse: decay
        (4.0, 0.5), (7.0, 0.5), (7.0, 0.25),  # best again: the count restarts
        (7.0, 0.25), (7.0, 0.125), (7.0, 0.125), (7.0, 0.1)]  # 0.0625 is below min_lr
    task = FakeTask(scores=[score for score, _ in table])
    trainer = make_trainer(tmp_path, task, lr=1.0, schedule="plateau", decay_patience=1,
                           decay_factor=0.5, min_lr=0.1)
    for _, lr in table:
        trainer.validate()
    assert [r["lr"] for r in rows(tmp_path)] == [lr for _, lr in table]
    assert (trainer.state.best_score, trainer.state.bad_validations) == (4.0, 6)


def test_other_schedules_ignore_the_validation_outcomes(tmp_path):
    trainer = make_trainer(tmp_path, FakeTask(scores=[5.0, 6.0, 7.0]), lr=1.0,
                           decay_patience=0)
    for _ in range(3):
        trainer.validate()
    assert [r["lr"] for r in rows(tmp_path)] == [1.0, 1.0, 1.0]
    assert trainer.state.lr_scale == 1.0


@pytest.mark.parametrize("limits, position, reason", [
    ({"max_steps": 10}, {"step": 9}, ""),
    ({"max_steps": 10}, {"step": 10}, "reached max_steps 10"),
    ({"max_epochs": 2}, {"epoch": 1, "step": 99}, ""),
    ({"max_epochs": 2}, {"epoch": 2}, "reached max_epochs 2"),
    ({"max_minutes": 1.5}, {"elapsed_s": 89.9}, ""),
    ({"max_minutes": 1.5}, {"elapsed_s": 90.0, "step": 1200},
     "stopped by the time budget after 1,200 steps (max_minutes 1.5)"),
    ({"max_steps": 10, "max_epochs": 2}, {"step": 10, "epoch": 2}, "reached max_steps 10"),
    # the time budget before the other limit: how far toward it the run got
    ({"max_minutes": 1, "max_epochs": 10}, {"elapsed_s": 60, "epoch": 3, "step": 30},
     "stopped by the time budget after 3 of 10 epochs (max_minutes 1)"),
    ({"max_minutes": 1, "max_epochs": 10},
     {"elapsed_s": 60, "epoch": 3, "batch_in_epoch": 4, "epoch_len": 10, "step": 34},
     "stopped by the time budget after 3.4 of 10 epochs (max_minutes 1)"),
    ({"max_minutes": 1, "max_steps": 5000}, {"elapsed_s": 60, "step": 1200},
     "stopped by the time budget after 1,200 of 5,000 steps (max_minutes 1)"),
    ({"max_minutes": 1, "max_steps": 5000, "max_epochs": 10},  # the nearer of the two
     {"elapsed_s": 60, "epoch": 1, "step": 1200},
     "stopped by the time budget after 1,200 of 5,000 steps (max_minutes 1)"),
])
def test_limit_reached(tmp_path, limits, position, reason):
    trainer = make_trainer(tmp_path, **{"max_steps": 0, **limits})
    trainer.state = TrainState(**position)
    assert trainer.limit_reached() == reason


def test_window_mean_loss_accuracy_and_throughput():
    window = Window()
    assert (window.mean_loss(), window.accuracy(), window.throughput()) == (0.0, 0.0, 0.0)
    window.add(loss=6.0, tokens=3, correct=1, seconds=0.5)
    window.add(loss=2.0, tokens=1, correct=1, seconds=1.5)
    assert window.mean_loss() == 2.0     # 8 nats over 4 tokens
    assert window.accuracy() == 0.5      # 2 of 4
    assert window.throughput() == 2.0    # 4 tokens in 2 s


def test_clock_laps_count_from_the_start():
    times = iter([100.0, 102.5, 103.0])
    clock = Clock(now=lambda: next(times))
    clock.start()
    assert (clock.lap(), clock.lap()) == (2.5, 0.5)


@pytest.mark.parametrize("train, weight", [
    ({}, 1.5),                      # gradient of the mean loss: -5; w = 1 - 0.1 * -5
    ({"clip_norm": 1.0}, 1.1),      # the gradient clipped to norm 1
    ({"warmup_steps": 2}, 1.25),    # the first of 2 warmup steps: half the lr
])
def test_train_step_moves_the_weights_and_counts_the_step(tmp_path, train, weight):
    trainer = make_trainer(tmp_path, **train)
    trainer.begin_epoch()
    out = trainer.train_step(trainer.next_batch())
    assert out.loss.item() == 5.0  # (1 - 2)^2 + (2 - 4)^2 at w = 1
    assert out.n_tokens == 2
    assert trainer.model.weight.item() == pytest.approx(weight)
    assert (trainer.state.step, trainer.state.batch_in_epoch) == (1, 1)


def test_a_loss_that_is_not_finite_stops_the_run(tmp_path):
    trainer = make_trainer(tmp_path)
    out = LossOutput(torch.tensor(float("nan")), n_tokens=2, n_correct=0)
    trainer.state.step = 3
    with pytest.raises(LstmNlpError, match="diverged at step 3: the training loss is nan; "
                                          "lower train.lr"):
        trainer.record(out, seconds=0.1)


def test_the_divergence_bound_follows_the_running_median():
    monitor = LossMonitor(window=4, warmup=3, factor=10.0, floor=0.01)
    assert monitor.excess(1e30) == ""  # nothing to compare with yet
    monitor.add(4.0)
    # during the warm-up: against the first loss (a run that blows up at step 2 has only
    # huge losses after it, so their median would not stand out)
    assert monitor.excess(39.0) == ""
    assert "over 10 times the first step's 4" in monitor.excess(41.0)
    for loss in (1.0, 1.0):
        monitor.add(loss)
    assert "running median of the last 3 steps, 1" in monitor.excess(10.5)  # median of 4, 1, 1
    assert monitor.excess(9.5) == ""
    for loss in (0.2, 0.2, 0.2):  # the window keeps the last 4: 1, 0.2, 0.2, 0.2
        monitor.add(loss)
    assert monitor.excess(2.5) != "" and monitor.excess(1.5) == ""
    assert monitor.excess(float("nan")) == "is nan" and monitor.excess(float("inf")) == "is inf"


def test_a_near_perfect_fit_does_not_make_an_ordinary_loss_a_divergence():
    """The floor: with a median of 1e-6 nats, one misclassified text (0.3) is no blow-up."""
    monitor = LossMonitor()
    for _ in range(50):
        monitor.add(1e-6)
    assert monitor.excess(0.3) == "" and monitor.excess(1e3) != ""


class SpikingTask(FakeTask):
    """FakeTask whose loss jumps by 1e12 at step `at` (5e11 per point: a blow-up, as an lr far
    too high gives)."""

    def __init__(self, at, **kwargs):
        super().__init__(**kwargs)
        self.at, self.calls = at, 0

    def loss(self, model, x):
        self.calls += 1
        out = super().loss(model, x)
        return LossOutput(out.loss + 1e12, out.n_tokens, 0) if self.calls == self.at else out


def strict_rows(run_dir):
    """metrics.jsonl read by a parser that refuses NaN and Infinity, as strict JSON does."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return [json.loads(line, parse_constant=refuse)
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_training_loss_blow_up_stops_before_anything_is_saved(tmp_path):
    trainer = make_trainer(tmp_path, SpikingTask(at=25), max_steps=100, valid_every=10,
                           optimizer="adam", lr=0.01)
    with pytest.raises(DivergenceError) as e:
        trainer.fit()
    message = str(e.value)
    assert message.startswith("training diverged at step 25: the training loss is 5e+11, over "
                              "10000 times the running median of the last 24 steps,")
    assert "lower train.lr (now 0.01)" in message and "train.warmup_steps" in message
    assert f"({tmp_path / 'last.pt'} holds step 20, the last good one)" in message
    assert checkpoint.load(tmp_path / "last.pt")["train_state"]["step"] == 20
    assert [r["step"] for r in strict_rows(tmp_path)] == [10, 20]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_validation_score_that_is_not_finite_never_becomes_best_pt(tmp_path, bad):
    """Validation at step 4 gives a better-looking score (nan compares as neither); the run
    stops before it can replace last.pt or best.pt, which keep step 2."""
    trainer = make_trainer(tmp_path, FakeTask(scores=[1.0, bad]), max_steps=6, valid_every=2)
    with pytest.raises(DivergenceError, match=f"diverged at step 4: validation val_loss is {bad}"):
        trainer.fit()
    assert checkpoint.load(tmp_path / "last.pt")["train_state"]["step"] == 2
    assert checkpoint.load(tmp_path / "best.pt")["train_state"]["step"] == 2
    assert [r["step"] for r in strict_rows(tmp_path)] == [2]


def test_a_validation_loss_far_above_the_training_loss_is_a_divergence(tmp_path):
    trainer = make_trainer(tmp_path, FakeTask(scores=[1.0, 1e9]), max_steps=6, valid_every=2)
    with pytest.raises(DivergenceError, match="diverged at step 4: the validation loss is 1e"):
        trainer.fit()
    assert checkpoint.load(tmp_path / "best.pt")["train_state"]["step"] == 2


def test_metrics_and_reports_write_strict_json(tmp_path):
    from lstm_nlp.reporting.console import write_json

    reporter = Reporter(tmp_path / "metrics.jsonl")
    reporter.validation({"step": 1, "val_loss": float("inf"), "val_ppl": float("nan")},
                        best=False)
    assert strict_rows(tmp_path) == [{"step": 1, "val_loss": None, "val_ppl": None}]
    write_json(tmp_path / "report.json", {"best": float("-inf"), "rows": [{"x": math.nan}]})
    assert json.loads((tmp_path / "report.json").read_text(), parse_constant=float) == \
        {"best": None, "rows": [{"x": None}]}


def test_best_pt_holds_no_optimizer_rng_or_task_state(tmp_path):
    """best.pt is for inference and sharing; resume reads last.pt."""
    trainer = make_trainer(tmp_path, max_steps=2, valid_every=2, optimizer="adam")
    trainer.fit()
    best, last = checkpoint.load(tmp_path / "best.pt"), checkpoint.load(tmp_path / "last.pt")
    assert not {"optimizer", "rng", "task_state", "average"} & best.keys()
    assert {"optimizer", "rng", "task_state"} <= last.keys()
    assert best["train_state"]["step"] == 2 and torch.equal(best["model"]["weight"],
                                                            last["model"]["weight"])


def test_validation_scores_the_average_and_trains_on_from_the_raw_weights(tmp_path):
    task = FakeTask()
    trainer = make_trainer(tmp_path, task, average_decay=0.5)
    trainer.begin_epoch()
    trainer.train_step(trainer.next_batch())  # w 1 -> 1.5; avg 1 -> 1.45 (d = 1/10 at step 0)
    trainer.validate()
    assert task.seen == [pytest.approx(1.45)]
    assert trainer.model.weight.item() == 1.5 and trainer.model.training
    best = checkpoint.load(tmp_path / "best.pt")
    last = checkpoint.load(tmp_path / "last.pt")
    assert best["model"]["weight"].item() == pytest.approx(1.45)
    assert "optimizer" not in best  # best.pt is for inference; resume reads last.pt
    assert last["model"]["weight"].item() == 1.5
    assert last["average"]["weight"].item() == pytest.approx(1.45)


def test_a_failing_validation_leaves_the_raw_weights_in_place(tmp_path):
    task = FakeTask()
    task.validate = lambda model: 1 / 0
    trainer = make_trainer(tmp_path, task, average_decay=0.5)
    trainer.begin_epoch()
    trainer.train_step(trainer.next_batch())
    with pytest.raises(ZeroDivisionError):
        trainer.validate()
    assert trainer.model.weight.item() == 1.5


def test_the_final_row_of_the_last_epoch_carries_that_epochs_number(tmp_path):
    """With valid_every, the last step's validation comes after the position rolled over to
    the epoch after the last: its row still says the last epoch (2 of 2, not 3)."""
    task = FakeTask(batches=[(1.0,), (2.0,), (0.5,)])
    trainer = make_trainer(tmp_path, task, max_steps=0, max_epochs=2, valid_every=2)
    trainer.fit()
    assert [(r["step"], r["epoch"]) for r in rows(tmp_path)] == [(2, 1), (4, 2), (6, 2)]


@pytest.mark.parametrize("key, value, shown", [
    ("val_acc", 1.0, "100.0%"), ("val_acc", 0.97532, "97.5%"), ("val_loss", 2.34567, "2.346"),
    ("val_ppl", 12.3456, "12.35"), ("val_bleu", 23.456, "23.46"), ("val_other", 1 / 3, "0.3333"),
    ("val_loss", None, "-"),
])
def test_a_best_score_is_shown_as_the_validation_table_shows_it(key, value, shown):
    """The report's and the final line's best score: 'accuracy 1' hid whether it was 100%."""
    from lstm_nlp.reporting.console import format_metric

    assert format_metric(key, value) == shown


def test_epochs_roll_over_and_validate_at_their_ends(tmp_path):
    task = FakeTask(batches=[(1.0,), (2.0,), (0.5,)])
    trainer = make_trainer(tmp_path, task, max_steps=0, max_epochs=2, valid_every=0)
    result = trainer.fit()
    assert result.reason == "reached max_epochs 2"
    assert [(r["step"], r["epoch"]) for r in rows(tmp_path)] == [(3, 1), (6, 2)]
    assert (result.state.step, result.state.epoch, result.state.batch_in_epoch) == (6, 2, 0)
    assert result.last_validation == rows(tmp_path)[-1]


@pytest.mark.parametrize("limits, reason", [
    ({"max_steps": 2}, "reached max_steps 2"),
    ({"max_steps": 0, "max_epochs": 1}, "reached max_epochs 1"),  # ended at the epoch's end
    ({"max_steps": 0, "max_minutes": 1.0}, "stopped by the time budget after 2 steps"),
])
def test_a_resumed_run_with_its_limit_reached_trains_and_logs_nothing(tmp_path, limits, reason):
    batches = [(1.0,), (2.0,)]
    make_trainer(tmp_path, FakeTask(batches), max_steps=2, valid_every=0).fit()
    if "max_minutes" in limits:  # the first run took a minute
        ckpt = checkpoint.load(tmp_path / "last.pt")
        ckpt["train_state"]["elapsed_s"] = 60.0
        checkpoint.save(tmp_path / "last.pt", {k: v for k, v in ckpt.items()
                                               if k not in ("format", "version")})
    metrics, last = rows(tmp_path), (tmp_path / "last.pt").read_bytes()
    trainer = make_trainer(tmp_path, FakeTask(batches), valid_every=0, **limits)
    trainer.restore()
    result = trainer.fit()
    assert result.reason.startswith(reason)
    assert result.state.step == 2
    assert rows(tmp_path) == metrics and len(metrics) == 1
    assert result.last_validation == metrics[-1]
    assert (tmp_path / "last.pt").read_bytes() == last


# -- gradient accumulation (train.accum_steps) -------------------------------------------------

def test_accumulation_steps_count_optimizer_steps_and_never_cross_an_epoch(tmp_path):
    """accum_steps 3 over an epoch of 7 batches: 3 steps of 3, 3 and 1 batches; the position
    counts batches, the step optimizer steps, validation (valid_every 0) comes at the epoch's
    end and the progress total is in steps."""
    batches = [(1.0,), (2.0,), (0.5,), (1.5,), (3.0,), (0.2,), (1.0, 2.0)]
    trainer = make_trainer(tmp_path, FakeTask(batches), max_steps=0, max_epochs=2,
                           valid_every=0, accum_steps=3)
    trainer.begin_epoch()
    assert (trainer.steps_per_epoch(), trainer.planned_steps()) == (3, 6)
    positions = []
    for _ in range(3):
        out = trainer.train_step(*trainer.next_batches())
        positions.append((trainer.state.step, trainer.state.batch_in_epoch, out.n_tokens,
                          trainer.validation_due()))
    assert positions == [(1, 3, 3, False), (2, 6, 3, False), (3, 7, 2, True)]
    assert trainer.roll_over() == "" and trainer.state.epoch == 1

    (tmp_path / "fit").mkdir()
    result = make_trainer(tmp_path / "fit", FakeTask(batches), max_steps=0, max_epochs=2,
                          valid_every=0, accum_steps=3).fit()
    assert (result.state.step, result.state.epoch, result.state.batch_in_epoch) == (6, 2, 0)
    assert [(r["step"], r["epoch"]) for r in rows(tmp_path / "fit")] == [(3, 1), (6, 2)]


def test_an_accumulated_step_is_the_step_of_one_batch_of_all_the_points(tmp_path):
    """FakeTask: batches of 1 and 3 points make the gradient of their mean over 4 points, and
    the step's output sums the two."""
    points = [(1.0,), (2.0, 0.5, 3.0)]
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    a = make_trainer(tmp_path / "a", FakeTask(points), accum_steps=2)
    a.begin_epoch()
    out = a.train_step(*a.next_batches())
    b = make_trainer(tmp_path / "b", FakeTask([(1.0, 2.0, 0.5, 3.0)]))
    b.begin_epoch()
    b.train_step(b.next_batch())
    assert a.model.weight.item() == pytest.approx(b.model.weight.item(), rel=1e-6)
    assert (out.loss.item(), out.n_tokens) == (pytest.approx(1 + 4 + 0.25 + 9), 4)
    assert (a.state.step, a.state.batch_in_epoch) == (1, 2)


def _real_task(kind, tmp_path, data_dir):
    """A task and its model built the way `train` builds them, with every dropout off."""
    from lstm_nlp.config import load_recipe
    from lstm_nlp.tasks.classify import verbs as classify_verbs
    from lstm_nlp.tasks.translate import verbs as translate_verbs
    from conftest import tiny_recipe, write_recipe
    from test_classify import tiny_classify_recipe

    if kind == "translate":
        raw = tiny_recipe(data_dir, model={"dropout": 0.0})
        setup = translate_verbs.setup
    else:
        raw = tiny_classify_recipe(data_dir, model={
            "dropout": 0.0, "dropout_input": 0.0, "dropout_hidden": 0.0})
        setup = classify_verbs.setup
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", raw))
    (tmp_path / "run").mkdir()
    task, model, _ = setup(recipe, tmp_path / "run", False)
    return task, model


@pytest.fixture(scope="module")
def sentiment_data(tmp_path_factory):
    from test_classify import write_sentiment

    return write_sentiment(tmp_path_factory.mktemp("sentiment"), n_train=120, n_eval=20)


@pytest.mark.parametrize("kind", ["classify", "translate"])
def test_accumulating_two_batches_gives_the_gradient_of_one_batch_of_both(
        tmp_path, kind, corpus, sentiment_data):
    import copy

    task, model = _real_task(kind, tmp_path, corpus if kind == "translate" else sentiment_data)
    first, second = task.epoch_batches(0)[:2]
    trainers = []
    for name, accum in (("accum", 2), ("one", 1)):
        (tmp_path / name).mkdir()
        cfg = TrainConfig(max_steps=10, lr=0.1, optimizer="sgd", clip_norm=0.0,
                          accum_steps=accum)
        trainers.append(Trainer(copy.deepcopy(model), task, cfg, tmp_path / name,
                                Reporter(tmp_path / name / "metrics.jsonl"), {},
                                ("val_loss", False)))
    accumulated, one = trainers
    accumulated.begin_epoch()
    accumulated.batches[:2] = [first, second]
    out_a = accumulated.train_step(*accumulated.next_batches())
    out_b = one.train_step(task.collate(first + second))
    assert (accumulated.state.step, accumulated.state.batch_in_epoch) == (1, 2)
    assert (out_a.n_tokens, out_a.n_correct) == (out_b.n_tokens, out_b.n_correct)
    assert out_a.loss.item() == pytest.approx(out_b.loss.item(), rel=1e-5)
    for what in ("grad", "data"):
        a = {k: getattr(p, what) for k, p in accumulated.model.named_parameters()}
        b = {k: getattr(p, what) for k, p in one.model.named_parameters()}
        worst = max((a[k] - b[k]).abs().max().item() for k in a)
        scale = max(b[k].abs().max().item() for k in b)
        assert all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a), \
            f"{kind}: largest {what} difference {worst:.3g} (largest value {scale:.3g})"


@pytest.mark.parametrize("kind", ["translate", "lm"])
def test_kill_and_resume_with_accumulation_gives_the_same_weights(tmp_path, kind, corpus,
                                                                  text_corpus):
    """accum_steps 2: the checkpoint at step 4 holds batch 8 of the epoch, and the resumed
    run replays from there (the LM with its carried hidden state) bit for bit."""
    from conftest import tiny_lm_recipe, tiny_recipe, write_recipe
    from lstm_nlp.training.run import train as train_run

    limits = {"max_steps": 12, "max_epochs": 0, "valid_every": 4, "accum_steps": 2,
              "early_stopping_metric": "loss"}
    if kind == "translate":
        raw = tiny_recipe(corpus, train={**limits, "valid_bleu": False},
                          model={"dropout": 0.3})
    else:
        raw = tiny_lm_recipe(text_corpus, train=limits)
    recipe = write_recipe(tmp_path / "r.yaml", raw)
    train_run(recipe, [], run_dir=tmp_path / "straight")

    class Killed(Exception):
        pass

    def kill_at_7(step):
        if step == 7:  # after the checkpoint at step 4, before the one at 8
            raise Killed

    with pytest.raises(Killed):
        train_run(recipe, [], run_dir=tmp_path / "killed", on_step=kill_at_7)
    state = checkpoint.load(tmp_path / "killed" / "last.pt")["train_state"]
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (4, 0, 8)
    train_run(recipe, [], run_dir=tmp_path / "killed", resume=True)
    a = checkpoint.load(tmp_path / "straight" / "last.pt")["model"]
    b = checkpoint.load(tmp_path / "killed" / "last.pt")["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps = [json.loads(line)["step"] for line in
             (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [4, 8, 12]

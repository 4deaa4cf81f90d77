"""Classification: labels, batching, pooling, metrics, transfer from a language model, ULMFiT
schedules, the classify verb and its errors."""

import json
import sys

import pytest
import torch
import yaml
from typer.testing import CliRunner

from lstm_nlp.cli import app
from lstm_nlp.config.sections import TrainConfig
from lstm_nlp.data.batching import length_batches
from lstm_nlp.data.tokenizer import WordTokenizer
from lstm_nlp.errors import CheckpointError, ConfigError, DataError
from lstm_nlp.metrics import classification_scores
from lstm_nlp.tasks.classify.model import Classifier
from lstm_nlp.tasks.classify.task import class_names, encode_texts
from lstm_nlp.training import checkpoint
from lstm_nlp.training.optim import build_optimizer, unfreeze
from lstm_nlp.training.run import train as train_run
from lstm_nlp.training.schedules import learning_rate
from lstm_nlp.training.state import TrainState

from conftest import ROOT, tiny_lm_recipe, tiny_recipe, with_sections, write_recipe

sys.path.insert(0, str(ROOT / "data"))
import make_sentiment_demo  # noqa: E402

runner = CliRunner()


def write_sentiment(folder, n_train=600, n_eval=80, seed=4):
    import random

    rng = random.Random(seed)
    rows = [make_sentiment_demo.review(rng) for _ in range(n_train + 2 * n_eval)]
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", rows[:n_train]), ("valid", rows[n_train:n_train + n_eval]),
                       ("test", rows[n_train + n_eval:])):
        (folder / f"{name}.tsv").write_text(
            "label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in part),
            encoding="utf-8")
    return folder


def tiny_classify_recipe(data_dir, **sections):
    recipe = {
        "task": "classify", "seed": 1,
        "data": {"dir": str(data_dir)},
        "tokenizer": {"type": "word", "vocab_size": 0},
        "model": {"emb_size": 24, "hidden_size": 32, "dropout": 0.1, "max_tokens": 40},
        "train": {"lr": 0.01, "batch_size": 16, "max_epochs": 3},
        "eval": {"samples": 3},
    }
    return with_sections(recipe, sections)


@pytest.fixture(scope="session")
def sentiment(tmp_path_factory):
    return write_sentiment(tmp_path_factory.mktemp("sentiment"))


@pytest.fixture(scope="session")
def trained_classifier(tmp_path_factory, sentiment):
    folder = tmp_path_factory.mktemp("cls")
    recipe = write_recipe(folder / "tiny-cls.yaml", tiny_classify_recipe(sentiment))
    return train_run(recipe, [], run_dir=folder / "run")


def test_class_names_are_ordered_numerically_or_by_name():
    assert class_names(["1", "0", "10", "2", "0"]) == ["0", "1", "2", "10"]
    assert class_names(["pos", "neg", "neutral"]) == ["neg", "neutral", "pos"]


def test_truncation_keeps_head_or_tail_after_a_start_token():
    tok = WordTokenizer.train(["a b c d e f"], 0, 1)
    ids = {w: tok.index[w] for w in "abcdef"}
    head = encode_texts(tok, ["a b c d e f", ""], 3, "head")
    tail = encode_texts(tok, ["a b c d e f"], 3, "tail")
    whole = encode_texts(tok, ["a b c d e f"], 3, "chunk")
    assert head == [[tok.eos_id, ids["a"], ids["b"], ids["c"]], [tok.eos_id]]
    assert tail == [[tok.eos_id, ids["d"], ids["e"], ids["f"]]]
    assert len(whole[0]) == 7


def test_length_batches_cover_every_text_once_with_little_padding():
    lengths = [(i * 37) % 100 + 1 for i in range(500)]
    batches = length_batches(lengths, 16, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(500))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread / len(batches) < 10  # vs ~90 for random batches
    assert batches == length_batches(lengths, 16, seed=1, epoch=0)
    assert batches != length_batches(lengths, 16, seed=1, epoch=1)


def test_classification_scores_on_a_hand_computed_case():
    gold = [0, 0, 0, 1, 1, 2]
    pred = [0, 0, 1, 1, 2, 2]
    s = classification_scores(gold, pred, ["a", "b", "c"])
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert s["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3,
                                                 "f1": 0.8, "support": 3})
    assert s["per_class"]["b"]["f1"] == pytest.approx(0.5)
    assert s["per_class"]["c"]["f1"] == pytest.approx(2 / 3)
    assert s["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def _classifier(pooling, bidirectional=True, long_text="head", max_tokens=50, chunk=4):
    torch.manual_seed(0)
    return Classifier(30, ["x", "y"], 8, 10, 2, bidirectional, False, pooling, 0, 0.0, 0.0,
                      0.0, 0.0, 0.0, True, long_text, max_tokens, chunk).eval()


@pytest.mark.parametrize("pooling", ["last", "max", "mean", "attention", "concat"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_padding_does_not_change_a_texts_prediction(pooling, bidirectional):
    model = _classifier(pooling, bidirectional)
    text = torch.tensor([3, 7, 9, 4, 5])
    alone = model(text.unsqueeze(1), torch.tensor([5]))
    padded = torch.zeros(9, 2, dtype=torch.long)
    padded[:5, 0] = text
    padded[:, 1] = torch.arange(4, 13)
    together = model(padded, torch.tensor([5, 9]))
    assert torch.allclose(alone[0], together[0], atol=1e-5)


def test_chunked_reading_equals_reading_at_once_for_the_kept_window():
    whole = _classifier("max", False, "chunk", max_tokens=100, chunk=4)
    chunked = _classifier("max", False, "chunk", max_tokens=6, chunk=4)
    chunked.load_state_dict(whole.state_dict())
    ids = torch.randint(4, 30, (23, 3), generator=torch.Generator().manual_seed(2))
    lengths = torch.tensor([23, 17, 20])
    out, _ = whole.encode(ids, lengths)  # every position, state from the start
    with torch.no_grad():
        logits = chunked(ids, lengths)
    pooled = torch.stack([out[n - 6:n, j].max(0).values for j, n in enumerate(lengths.tolist())])
    assert torch.allclose(logits, chunked.head(pooled), atol=1e-5)


def test_discriminative_lr_gradual_unfreezing_and_slanted_schedule():
    model = _classifier("max")
    cfg = TrainConfig(max_epochs=4, lr=1.0, layer_lr_decay=2.0, gradual_unfreezing=True,
                      schedule="slanted", cut_frac=0.25, slanted_ratio=10.0)
    opt = build_optimizer(model, cfg)
    assert [g["lr_mult"] for g in opt.param_groups] == [1 / 8, 1 / 4, 1 / 2, 1.0]
    groups = model.layer_groups()
    unfreeze(model, cfg, epoch=0)
    assert [all(p.requires_grad for p in g) for g in groups] == [False, False, False, True]
    unfreeze(model, cfg, epoch=2)
    assert [all(p.requires_grad for p in g) for g in groups] == [False, True, True, True]
    unfreeze(model, cfg, epoch=3)
    assert all(p.requires_grad for p in model.parameters())
    lr = lambda epoch: learning_rate(cfg, TrainState(epoch=epoch, epoch_len=1))  # noqa: E731
    assert lr(0) == pytest.approx(0.1)            # starts at lr / ratio
    assert lr(1) == pytest.approx(1.0)            # peak at cut_frac of the budget
    assert lr(4) == pytest.approx(0.1)            # back down at the end
    assert 0.1 < lr(2) < 1.0


def test_trained_classifier_run_and_report(trained_classifier):
    ckpt = checkpoint.load(trained_classifier / "best.pt")
    assert ckpt["classes"] == ["negative", "neutral", "positive"]
    report = (trained_classifier / "report.md").read_text()
    assert "Confusion matrix" in report and "macro-F1" in report
    test = json.loads((trained_classifier / "report.json").read_text())["test"]
    assert test["accuracy"] > 0.6  # well above the majority class after 3 tiny epochs
    assert sum(map(sum, test["confusion"])) == test["texts"] == 80


def test_classify_keeps_one_line_per_input_line(trained_classifier):
    data = b"the film was good .\n\nthe plot is dull , but the music was great .\r\n"
    result = runner.invoke(app, ["classify", "-m", str(trained_classifier)], input=data)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""  # the empty line stays empty
    for line in (lines[0], lines[2]):
        label, prob = line.split("\t")
        assert label in ("negative", "neutral", "positive") and 0.0 < float(prob) <= 1.0
    js = runner.invoke(app, ["classify", "-m", str(trained_classifier), "--format", "jsonl"],
                       input=data)
    rows = [json.loads(line) for line in js.stdout.splitlines()]
    assert len(rows) == 3 and rows[1] == {"label": None, "probability": None, "probs": None}
    assert [rows[0]["label"], rows[2]["label"]] == [lines[0].split("\t")[0],
                                                    lines[2].split("\t")[0]]
    assert all(sum(r["probs"].values()) == pytest.approx(1.0, abs=1e-4) for r in rows[::2])
    assert "classified 2 texts" in result.stderr and "1 empty line" in result.stderr


def test_eval_classifier_on_a_split_and_a_file(trained_classifier, sentiment, tmp_path):
    by_split = runner.invoke(app, ["eval", "-m", str(trained_classifier), "--split", "valid",
                                   "--out-dir", str(tmp_path)])
    assert by_split.exit_code == 0, by_split.stderr
    a = json.loads((tmp_path / "eval-valid.json").read_text())
    by_file = runner.invoke(app, ["eval", "-m", str(trained_classifier), "-i",
                                  str(sentiment / "valid.tsv"), "--out-dir", str(tmp_path)])
    assert by_file.exit_code == 0, by_file.stderr
    b = json.loads((tmp_path / "eval-valid.tsv.json").read_text())  # not the split's report
    assert a["accuracy"] == b["accuracy"] and a["confusion"] == b["confusion"]
    assert json.loads((tmp_path / "eval-valid.json").read_text()) == a
    assert "confusion matrix" in by_split.stderr
    piped = runner.invoke(app, ["eval", "-m", str(trained_classifier), "--out-dir",
                                str(tmp_path)], input=(sentiment / "valid.tsv").read_bytes())
    assert piped.exit_code == 0, piped.stderr  # labeled rows on stdin, in the recipe's format
    c = json.loads((tmp_path / "eval-stdin.json").read_text())
    assert c["accuracy"] == a["accuracy"] and c["confusion"] == a["confusion"]


def test_eval_classifier_stdin_errors_name_stdin(trained_classifier, tmp_path):
    args = ["eval", "-m", str(trained_classifier), "--out-dir", str(tmp_path)]
    headless = runner.invoke(app, args, input=b"a fine film\tpositive\n")
    assert headless.exit_code == 1 and "stdin (tsv)" in headless.stderr
    assert "Traceback" not in headless.stderr and "/tmp" not in headless.stderr


def test_classifier_data_errors(tmp_path, sentiment):
    def train(folder, **sections):
        recipe = write_recipe(tmp_path / "r.yaml", tiny_classify_recipe(folder, **sections))
        return train_run(recipe, [], run_dir=tmp_path / "run", overwrite=True)

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.tsv").write_text("label\ttext\npos\tgood\npos\tfine\n")
    (bad / "valid.tsv").write_text("label\ttext\npos\tok\n")
    with pytest.raises(DataError, match="one label only"):
        train(bad)
    (bad / "train.tsv").write_text("label\ttext\npos\tgood\nneg\tbad\n")
    (bad / "valid.tsv").write_text("label\ttext\npos\tok\nmeh\tso so\n")
    with pytest.raises(DataError, match=r"valid.tsv: row 2: label 'meh' is not one of the "
                                         r"training labels \(neg, pos\)"):
        train(bad)
    with pytest.raises(DataError, match="no column 'review'"):
        train(sentiment, data={"text_column": "review"})


def test_held_out_validation_when_the_data_has_no_valid_split(tmp_path, sentiment):
    import shutil

    folder = tmp_path / "novalid"
    folder.mkdir()
    shutil.copy(sentiment / "train.tsv", folder / "train.tsv")
    import gzip
    (folder / "test.tsv.gz").write_bytes(gzip.compress((sentiment / "test.tsv").read_bytes()))
    recipe = write_recipe(tmp_path / "r.yaml", tiny_classify_recipe(
        folder, data={"valid": "", "valid_fraction": 0.2}, train={"max_epochs": 1}))
    run = train_run(recipe, [], run_dir=tmp_path / "run")
    test = json.loads((run / "report.json").read_text())["test"]
    assert test["texts"] == 80 and test["data"].endswith("test.tsv.gz")
    result = runner.invoke(app, ["eval", "-m", str(run), "--split", "valid",
                                 "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert json.loads(next(tmp_path.glob("eval-valid*.json")).read_text())["texts"] == 120


def test_max_train_examples_is_a_seeded_random_subset(tmp_path):
    """Data sorted by label (as IMDB ships): the first N rows would be one class only."""
    from lstm_nlp.config import load_recipe
    from lstm_nlp.tasks.classify import verbs as classify_pipeline

    folder = tmp_path / "sorted"
    folder.mkdir()
    rows = [("neg", f"bad film {i}") for i in range(50)] + [("pos", f"good film {i}")
                                                              for i in range(50)]
    for name in ("train", "valid"):
        (folder / f"{name}.tsv").write_text("label\ttext\n" + "".join(
            f"{label}\t{text}\n" for label, text in rows), encoding="utf-8")
    path = write_recipe(tmp_path / "r.yaml", tiny_classify_recipe(
        folder, data={"max_train_examples": 20}))
    train, _ = classify_pipeline._splits(load_recipe(path))
    assert len(train) == 20 and set(train.labels) == {"neg", "pos"}
    assert len(set(train.texts)) == 20
    assert classify_pipeline._splits(load_recipe(path))[0].texts == train.texts


@pytest.fixture(scope="session")
def tiny_lm_for_transfer(tmp_path_factory, sentiment):
    """A language model on the demo reviews' text, to start classifiers from."""
    folder = tmp_path_factory.mktemp("lm-src")
    text = folder / "text"
    text.mkdir()
    for split in ("train", "valid", "test"):
        rows = (sentiment / f"{split}.tsv").read_text().splitlines()[1:]
        (text / f"{split}.txt").write_text("".join(r.split("\t", 1)[1] + "\n" for r in rows))
    recipe = write_recipe(folder / "lm.yaml", tiny_lm_recipe(
        text, model={"emb_size": 24, "hidden_size": 32, "layers": 2}, train={"max_epochs": 1}))
    return train_run(recipe, [], run_dir=folder / "run")


def test_init_from_a_language_model_copies_the_encoder(tmp_path, sentiment, tiny_lm_for_transfer):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_classify_recipe(
        sentiment, tokenizer={},
        model={"init_from": str(tiny_lm_for_transfer), "bidirectional": False, "emb_size": 24,
               "hidden_size": 32, "layers": 2, "tie_weights": True, "pooling": "concat"},
        train={"max_steps": 1, "max_epochs": 0, "valid_every": 1, "lr": 1e-9}))
    run = train_run(recipe, [], run_dir=tmp_path / "run")
    lm = checkpoint.load(tiny_lm_for_transfer / "best.pt")["model"]
    cls = checkpoint.load(run / "last.pt")["model"]
    for key in ("embedding.weight", "lstms.0.weight_ih_l0", "lstms.1.weight_hh_l0"):
        assert torch.allclose(lm[key], cls[key], atol=1e-6), key
    assert (run / "tokenizer" / "classify.model").read_bytes() == \
        (tiny_lm_for_transfer / "tokenizer" / "lm.model").read_bytes()


@pytest.mark.parametrize("model, message", [
    ({"hidden_size": 48}, "model.hidden_size: 48 here but 32 in the language model"),
    ({"tie_weights": False}, "model.tie_weights: False here but True in the language model"),
    ({"bidirectional": True}, "model.bidirectional: must be false with model.init_from"),
])
def test_init_from_refuses_a_different_architecture(tmp_path, sentiment, tiny_lm_for_transfer,
                                                   model, message):
    base = {"init_from": str(tiny_lm_for_transfer), "bidirectional": False, "emb_size": 24,
            "hidden_size": 32, "layers": 2, "tie_weights": True}
    recipe = write_recipe(tmp_path / "r.yaml", tiny_classify_recipe(
        sentiment, tokenizer={}, model={**base, **model}))
    with pytest.raises(ConfigError, match=message):
        train_run(recipe, [], run_dir=tmp_path / "run")


def test_init_from_needs_a_language_model(tmp_path, sentiment, trained_classifier):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_classify_recipe(
        sentiment, model={"init_from": str(trained_classifier), "bidirectional": False}))
    with pytest.raises(ConfigError, match="is a 'classify' model; it must be a language model"):
        train_run(recipe, [], run_dir=tmp_path / "run")
    recipe = write_recipe(tmp_path / "r.yaml", tiny_classify_recipe(
        sentiment, model={"init_from": str(tmp_path / "nothing"), "bidirectional": False}))
    with pytest.raises(CheckpointError, match="model not found"):
        train_run(recipe, [], run_dir=tmp_path / "run")


def test_a_chain_trains_its_stages_in_order_and_answers_with_the_last(tmp_path, sentiment,
                                                                      tiny_lm_for_transfer):
    text = tiny_lm_for_transfer.parent / "text"
    write_recipe(tmp_path / "lm.yaml", {**tiny_lm_recipe(
        text, model={"emb_size": 24, "hidden_size": 32, "layers": 2},
        train={"max_epochs": 1}), "name": "general-lm"})
    write_recipe(tmp_path / "tuned.yaml", {**tiny_lm_recipe(
        text, model={"emb_size": 24, "hidden_size": 32, "layers": 2, "init_from": "x"},
        tokenizer={}, train={"max_epochs": 1}), "name": "domain-lm"})
    write_recipe(tmp_path / "cls.yaml", {**tiny_classify_recipe(
        sentiment, tokenizer={},
        model={"init_from": "x", "bidirectional": False, "emb_size": 24, "hidden_size": 32,
               "layers": 2, "tie_weights": True},
        train={"max_epochs": 2, "gradual_unfreezing": True, "layer_lr_decay": 2.6,
               "schedule": "slanted"}), "name": "classifier"})
    chain = write_recipe(tmp_path / "chain.yaml",
                         {"task": "chain", "stages": ["lm.yaml", "tuned.yaml", "cls.yaml"]})
    with pytest.raises(ConfigError, match="did you mean 'domain-lm'"):
        train_run(chain, ["domain-l.train.lr=0.1"], run_dir=tmp_path / "run")
    with pytest.raises(ConfigError, match="STAGE.KEY=VALUE"):
        train_run(chain, ["train.lr=0.1"], run_dir=tmp_path / "run")
    write_recipe(tmp_path / "mt.yaml", tiny_recipe(tmp_path))  # a translation stage: no init_from
    bad = write_recipe(tmp_path / "bad.yaml", {"task": "chain", "stages": ["lm.yaml", "mt.yaml"]})
    with pytest.raises(ConfigError, match="must be able to start from a language model"):
        train_run(bad, [], run_dir=tmp_path / "bad-run")
    run = train_run(chain, ["domain-lm.train.lr=0.003"], run_dir=tmp_path / "run")
    assert [p.name for p in sorted(run.iterdir()) if p.is_dir()] == \
        ["classifier", "domain-lm", "general-lm"]
    saved = yaml.safe_load((run / "domain-lm" / "recipe.yaml").read_text())
    assert saved["model"]["init_from"] == str(run / "general-lm")  # the previous stage
    assert saved["train"]["lr"] == 0.003  # the stage's override
    assert yaml.safe_load((run / "general-lm" / "recipe.yaml").read_text())["train"]["lr"] == 0.01
    result = runner.invoke(app, ["classify", "-m", str(run)], input=b"the film was good .\n")
    assert result.exit_code == 0 and result.stdout.count("\n") == 1
    again = train_run(chain, [], run_dir=run, resume=True)  # all stages done: kept
    assert again == run


def test_a_bad_test_split_keeps_the_trained_run(tmp_path, sentiment):
    import shutil

    folder = tmp_path / "badtest"
    folder.mkdir()
    for split in ("train", "valid"):
        shutil.copy(sentiment / f"{split}.tsv", folder / f"{split}.tsv")
    (folder / "test.tsv").write_text("label\ttext\nmeh\tso so\n")
    recipe = write_recipe(tmp_path / "r.yaml", tiny_classify_recipe(folder, train={"max_epochs": 1}))
    run = train_run(recipe, [], run_dir=tmp_path / "run")
    assert (run / "best.pt").is_file() and (run / "report.md").is_file()
    assert json.loads((run / "report.json").read_text())["test"] is None


def test_subword_sampling_resegments_each_epoch_and_resumes_exactly(tmp_path, sentiment):
    """train.subword_alpha: each epoch reads new sentencepiece segmentations of the same text,
    drawn from (seed, epoch) only, so a killed run resumes to the same weights."""
    from lstm_nlp.config import load_recipe
    from lstm_nlp.data.corpora import load_labeled_split
    from lstm_nlp.tasks.classify.task import ClassificationTask

    recipe = write_recipe(tmp_path / "r.yaml", tiny_classify_recipe(
        sentiment, tokenizer={"type": "unigram", "vocab_size": 120}, model={"max_tokens": 400},
        train={"subword_alpha": 0.2, "max_epochs": 2, "valid_every": 25,
               "threads": 1}))  # pinned: the load-following count may differ between two runs
    train_run(recipe, [], run_dir=tmp_path / "straight")

    tok = checkpoint.load_for(tmp_path / "straight", "classify", "classify")[1]
    r = load_recipe(recipe)
    train = load_labeled_split(r.data, "train")
    task = ClassificationTask(r, tok, train, train, sorted(set(train.labels)))
    best = [ids[:] for ids in task.train_ids]
    task.epoch_batches(1)
    first = [ids[:] for ids in task.train_ids]
    task.epoch_batches(2)
    assert task.train_ids != first and first != best  # new segmentations each epoch ...
    assert tok.decode([s[1:] for s in first]) == tok.decode([s[1:] for s in best])  # same text
    task.epoch_batches(1)
    assert task.train_ids == first  # ... drawn from (seed, epoch) alone

    class Killed(Exception):
        pass

    def kill_at_60(step):  # epoch 2 (38 batches an epoch), last checkpoint at step 50
        if step == 60:
            raise Killed

    with pytest.raises(Killed):
        train_run(recipe, [], run_dir=tmp_path / "killed", on_step=kill_at_60)
    assert checkpoint.load(tmp_path / "killed" / "last.pt")["train_state"]["step"] == 50
    train_run(recipe, [], run_dir=tmp_path / "killed", resume=True)
    a = checkpoint.load(tmp_path / "straight" / "last.pt")["model"]
    b = checkpoint.load(tmp_path / "killed" / "last.pt")["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_subword_sampling_needs_a_sentencepiece_tokenizer(tmp_path, sentiment):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_classify_recipe(
        sentiment, train={"subword_alpha": 0.1}))
    result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "train.subword_alpha: samples sentencepiece segmentations; this run's tokenizer " \
           "is 'word'" in result.stderr


@pytest.fixture(scope="session")
def second_classifier(tmp_path_factory, sentiment):
    """Another seed, one epoch: a second member for ensembles."""
    folder = tmp_path_factory.mktemp("cls2")
    recipe = tiny_classify_recipe(sentiment, train={"max_epochs": 1})
    recipe["seed"] = 2
    return train_run(write_recipe(folder / "tiny-cls2.yaml", recipe), [],
                          run_dir=folder / "run")


def test_an_ensemble_averages_its_members_probabilities(trained_classifier, second_classifier,
                                                       tmp_path):
    texts = b"the film was good .\na dull film\nthe plot is dull , the music great .\n"

    def probs(*runs):
        args = ["classify", "--format", "jsonl"] + [a for r in runs for a in ("-m", str(r))]
        result = runner.invoke(app, args, input=texts)
        assert result.exit_code == 0, result.stderr
        return [json.loads(line)["probs"] for line in result.stdout.splitlines()]

    a, b = probs(trained_classifier), probs(second_classifier)
    both = probs(trained_classifier, second_classifier)
    assert len(both) == 3 and a != b
    for pa, pb, pe in zip(a, b, both):
        assert pe == {c: pytest.approx((pa[c] + pb[c]) / 2, abs=1e-5) for c in pa}
    result = runner.invoke(app, ["eval", "-m", str(trained_classifier), "-m",
                                 str(second_classifier), "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    report = json.loads((tmp_path / "eval-test-ensemble2.json").read_text())
    assert report["texts"] == 80 and len(report["ensemble"]) == 2
    assert "ensemble (mean probabilities)" in (tmp_path / "eval-test-ensemble2.md").read_text()


def test_an_ensemble_needs_classifiers_with_the_same_classes(tmp_path, trained_classifier,
                                                            tiny_lm_for_transfer):
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("train", "valid", "test"):
        (folder / f"{name}.tsv").write_text("label\ttext\n" + "".join(
            f"{label}\t{label} film {i}\n" for i in range(20) for label in ("bad", "good")))
    other = train_run(write_recipe(tmp_path / "r.yaml", tiny_classify_recipe(
        folder, train={"max_epochs": 1})), [], run_dir=tmp_path / "run")
    result = runner.invoke(app, ["classify", "-m", str(trained_classifier), "-m", str(other)],
                           input="a film\n")
    assert result.exit_code == 1
    assert "classes bad, good differ from those of" in result.stderr
    assert "an ensemble needs the same classes" in result.stderr
    result = runner.invoke(app, ["eval", "-m", str(tiny_lm_for_transfer), "-m",
                                 str(tiny_lm_for_transfer)])
    assert result.exit_code == 1
    assert "several --model: ensembles are for classifiers and translation models" in \
        result.stderr

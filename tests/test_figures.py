"""Figures in reports (valid PNGs written atomically; curves, confusion matrices, attention
heatmaps), TensorBoard event files read back by tensorboard's own reader, what a missing extra
does, and `classify --explain`."""

import copy
import json
import subprocess
import sys
import threading

import pytest
import torch
from typer.testing import CliRunner

from lstm_nlp.cli import app
from lstm_nlp.errors import FileSystemError
from lstm_nlp.reporting import figures
from lstm_nlp.tasks.classify import explain
from lstm_nlp.tasks.classify.model import Classifier
from lstm_nlp.tasks.translate.heatmaps import attention_matrix
from lstm_nlp.training import checkpoint
from lstm_nlp.training.run import train as train_run

from conftest import tiny_lm_recipe, write_recipe, write_text_corpus
from test_classify import tiny_classify_recipe, write_sentiment

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    """A complete PNG that both PIL and matplotlib read."""
    from matplotlib.image import imread
    from PIL import Image

    assert path.read_bytes()[:8] == PNG
    with Image.open(path) as image:
        image.verify()
    assert imread(path).shape[2] in (3, 4)


@pytest.fixture(scope="module")
def attention_classifier(tmp_path_factory):
    """A tiny classifier with attention pooling, trained with train.tensorboard."""
    folder = tmp_path_factory.mktemp("board")
    data = write_sentiment(folder / "data", n_train=300, n_eval=40)
    recipe = write_recipe(folder / "cls.yaml", tiny_classify_recipe(
        data, model={"pooling": "attention"}, train={"tensorboard": True, "log_every": 5}))
    return train_run(recipe, [], run_dir=folder / "run")


def test_a_run_report_embeds_its_curves_and_gate_statistics(trained_run):
    report = (trained_run / "report.md").read_text()
    assert "![training curves](curves.png)" in report
    assert report.rstrip().splitlines()[0].startswith("# Run report")
    gates = report[report.index("## Gate statistics"):]  # the report's last section
    for layer in ("encoder layer 0 forward", "encoder layer 0 backward", "decoder layer 0"):
        assert f"| {layer} |" in gates
    assert_png(trained_run / "curves.png")
    assert not list(trained_run.glob(".*.tmp"))


def test_every_task_reports_gate_statistics(trained_lm, attention_classifier):
    lm = (trained_lm / "report.md").read_text()
    assert "| lm layer 0 |" in lm and "| lm layer 1 |" in lm
    classifier = (attention_classifier / "report.md").read_text()
    assert "| classifier layer 0 forward |" in classifier
    assert "![test confusion matrix](confusion.png)" in classifier
    for name in ("curves.png", "confusion.png"):
        assert_png(attention_classifier / name)


def test_tensorboard_event_files_read_back(attention_classifier):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(attention_classifier / "tensorboard"),
                             size_guidance={"scalars": 0, "images": 0, "histograms": 0})
    board.Reload()
    tags = board.Tags()
    assert {"train/loss", "train/texts_per_s", "train/lr", "valid/loss", "valid/acc",
            "valid/f1"} <= set(tags["scalars"])
    rows = [json.loads(line) for line in
            (attention_classifier / "metrics.jsonl").read_text().splitlines()]
    acc = board.Scalars("valid/acc")
    assert [e.step for e in acc] == [r["step"] for r in rows]  # one point per validation
    assert [e.value for e in acc] == pytest.approx([r["val_acc"] for r in rows])
    assert [e.step for e in board.Scalars("train/loss")][:2] == [1, 5]  # per log step
    assert {"figures/curves", "figures/confusion"} <= set(tags["images"])
    for gate in ("input", "forget", "output", "tanh_cell"):
        histogram = board.Histograms(f"gates/classifier_layer_0_forward/{gate}")
        assert len(histogram) == len(rows)  # at each validation
        assert 0 < histogram[-1].histogram_value.num


def test_tensorboard_without_the_extra_fails_before_training(monkeypatch, tmp_path,
                                                             text_corpus):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    recipe = write_recipe(tmp_path / "lm.yaml", tiny_lm_recipe(
        text_corpus, train={"tensorboard": True, "max_epochs": 1}))
    result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: train.tensorboard needs tensorboard, which is not installed: "
        "pip install 'lstm-nlp[tensorboard]'"]
    assert not (tmp_path / "run").exists()  # nothing was built


def test_a_run_without_matplotlib_finishes_with_a_warning(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    corpus = write_text_corpus(tmp_path / "text", n_train=60, n_eval=10)
    recipe = write_recipe(tmp_path / "lm.yaml", tiny_lm_recipe(corpus, train={"max_epochs": 1}))
    result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == ["warning: training curves left out: plots in reports needs matplotlib, "
                        "which is not installed: pip install 'lstm-nlp[plots]'"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "curves.png" not in report and "## Gate statistics" in report
    assert not (tmp_path / "run" / "curves.png").exists()


def test_matplotlib_loads_in_the_background_while_a_run_scores_its_test_split():
    """`warm_up` (called when training ends) imports matplotlib on a thread, so the report's
    figures later cost their drawing only."""
    code = ("import sys, threading\n"
            "from lstm_nlp.reporting import figures\n"
            "assert 'matplotlib' not in sys.modules\n"
            "figures.warm_up()\n"
            "loading = [t for t in threading.enumerate() if t.name == 'matplotlib import']\n"
            "[t.join() for t in loading]\n"
            "print(len(loading), 'matplotlib.figure' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "True"]


def test_warm_up_without_matplotlib_starts_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    before = threading.active_count()
    figures.warm_up()
    assert threading.active_count() == before


def test_figures_are_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "fig.png"
    fig = figures.confusion(["a", "b"], [[3, 1], [0, 4]], "t")
    figures.save(fig, path)
    assert_png(path)
    before = path.read_bytes()

    def half_written(target, **kwargs):
        with open(target, "wb") as f:
            f.write(PNG[:4])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fig, "savefig", half_written)
    with pytest.raises(FileSystemError, match="cannot write figure .*fig.png: disk full"):
        figures.save(fig, path)
    assert path.read_bytes() == before  # the old figure stands, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]  # no temp file left


def test_curves_mark_the_best_checkpoint(tmp_path):
    rows = [{"step": s, "train_loss": 3.0 / s, "val_loss": 2.0 / s, "val_ppl": 9.0 / s,
             "lr": 0.001, "tokens_per_s": 900.0 + s} for s in (1, 2, 3)]
    fig = figures.curves(rows, "val_ppl", 2, "tokens", "t")
    loss, score, lr, speed = fig.axes
    assert score.get_ylabel() == "validation perplexity"
    assert loss.get_ylabel() == "loss (nats per token)"
    assert lr.get_xlabel() == speed.get_xlabel() == "step (optimizer updates)"
    for ax in fig.axes:  # the best step's line in every panel
        assert any(list(line.get_xdata()) == [2, 2] for line in ax.get_lines())
    star = [line for line in score.get_lines() if line.get_marker() == "*"]
    assert len(star) == 1 and list(star[0].get_ydata()) == [4.5]


def test_eval_writes_attention_heatmaps_of_its_samples(trained_run, tmp_path):
    result = runner.invoke(app, ["eval", "-m", str(trained_run), "--split", "valid", "--beam",
                                 "1", "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    report = (tmp_path / "eval-valid-beam1.md").read_text()
    for i in range(1, 6):  # eval.samples: 5
        assert f"![attention, sample {i}](eval-valid-beam1-attention-{i}.png)" in report
        assert_png(tmp_path / f"eval-valid-beam1-attention-{i}.png")


def test_attention_rows_are_distributions_over_the_source(trained_run):
    model, tok, _ = checkpoint.load_model(trained_run)
    src, tgt = tok.src.encode(["The dog sees a cat."])[0], tok.tgt.encode(["Der Hund."])[0]
    weights = attention_matrix(model, tok, src, tgt)
    assert weights.shape == (len(tgt) + 1, len(src))  # one row per output piece and EOS
    assert torch.allclose(weights.sum(1), torch.ones(len(tgt) + 1), atol=1e-5)


def test_classifier_eval_writes_its_confusion_matrix(attention_classifier, tmp_path):
    result = runner.invoke(app, ["eval", "-m", str(attention_classifier), "--split", "valid",
                                 "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert "![confusion matrix](eval-valid-confusion.png)" in \
        (tmp_path / "eval-valid.md").read_text()
    assert_png(tmp_path / "eval-valid-confusion.png")


def classify(run, data: bytes, *args):
    return runner.invoke(app, ["classify", "-m", str(run), "--format", "jsonl", *args],
                         input=data)


def test_classify_explain_gives_attention_weights_per_token(attention_classifier):
    data = b"the acting was not boring .\n\nthe plot is dull .\n"
    plain = classify(attention_classifier, data)
    explained = classify(attention_classifier, data, "--explain")
    assert explained.exit_code == 0, explained.stderr
    rows = [json.loads(line) for line in explained.stdout.splitlines()]
    assert len(rows) == 3  # one line per input line, the empty one too
    assert rows[1] == {"label": None, "probability": None, "probs": None, "tokens": None,
                       "weights": None, "explanation": None}
    for row, before in zip(rows[::2], plain.stdout.splitlines()[::2]):
        assert {k: row[k] for k in ("label", "probability", "probs")} == json.loads(before)
        assert row["explanation"] == "attention"
        assert len(row["weights"]) == len(row["tokens"])
        assert all(w >= 0 for w in row["weights"]) and sum(row["weights"]) <= 1.0 + 1e-3
    assert rows[0]["tokens"] == ["the", "acting", "was", "not", "boring", "."]


def test_classify_explain_needs_jsonl_and_one_model(attention_classifier):
    tsv = runner.invoke(app, ["classify", "-m", str(attention_classifier), "--explain"],
                        input=b"a film .\n")
    assert tsv.exit_code == 1
    assert "error: --explain adds per-token weights to JSON lines: give --format jsonl" \
        in tsv.stderr
    two = classify(attention_classifier, b"a film .\n", "-m", str(attention_classifier),
                   "--explain")
    assert two.exit_code == 1 and "--explain explains one model" in two.stderr


def max_pooling_classifier() -> Classifier:
    torch.manual_seed(0)
    return Classifier(30, ["a", "b", "c"], 8, 6, 1, True, False, "max", 0, 0.3, 0.1, 0.1, 0.1,
                      0.3, True, "head", 50, 10).eval()


def test_saliency_is_each_texts_own_gradient_times_input():
    """First-order check: scaling one position's embedding by (1 - eps) lowers the predicted
    class's log-probability by about eps * its saliency; and a text's saliency is the same
    alone or in a batch with a longer one."""
    model = max_pooling_classifier()
    long, short = [3, 5, 9, 4, 17, 8, 12], [3, 7, 11]
    ids = torch.tensor([long, short + [0] * 4]).t()                             # (T, 2)
    lengths = torch.tensor([len(long), len(short)])
    batched = explain.saliency(model, ids, lengths)
    alone = explain.saliency(model, torch.tensor([short]).t(), torch.tensor([len(short)]))
    assert torch.allclose(batched[:3, 1], alone[:, 0], atol=1e-6)
    exact = copy.deepcopy(model).double()
    x = exact.embedding.weight.detach()[torch.tensor(long)]                     # (T, E)

    def logp(rows):
        with torch.no_grad():
            out = torch.func.functional_call(exact, {"embedding.weight": rows},
                                             (torch.arange(len(long)).unsqueeze(1),
                                              torch.tensor([len(long)])))
        return out.log_softmax(1)[0]

    predicted = int(logp(x).argmax())
    eps = 1e-4
    for t in range(len(long)):
        scaled = x.clone()
        scaled[t] *= 1 - eps
        change = float(logp(x)[predicted] - logp(scaled)[predicted]) / eps
        assert change == pytest.approx(float(batched[t, 0]), rel=1e-2, abs=1e-5)


def test_the_report_cost_benchmark_runs(trained_run):
    from conftest import ROOT

    done = subprocess.run([sys.executable, str(ROOT / "tests" / "benchmarks" /
                                               "bench_report_cost.py"), str(trained_run),
                           "--rounds", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    median = next(line for line in done.stdout.splitlines() if line.startswith("median"))
    assert median.startswith(f"median {trained_run}: test scoring ")
    assert "; figures " in median and ", gate statistics " in median

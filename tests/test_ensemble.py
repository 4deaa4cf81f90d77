"""Translation ensembles: the mean of the members' probabilities at every step; one model, or
copies of one model, decode exactly as that model; members must share their tokenizers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from lstm_nlp.cli import app
from lstm_nlp.data.batching import seq2seq_batch
from lstm_nlp.data.corpora import read_lines
from lstm_nlp.errors import ConfigError
from lstm_nlp.tasks.translate.ensemble import Ensemble, check_members, mean_probability
from lstm_nlp.tasks.translate.task import DecodeOptions, translate_lines
from lstm_nlp.training.checkpoint import load_model

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "v0.1.0"
TEST_EN = ROOT / "data" / "demo" / "test.en"
runner = CliRunner()


def test_mean_probability_is_the_log_of_the_mean():
    a = torch.tensor([[0.5, 0.25, 0.25]]).log()
    b = torch.tensor([[0.1, 0.1, 0.8]]).log()
    expected = torch.tensor([[0.3, 0.175, 0.525]]).log()
    torch.testing.assert_close(mean_probability([a, b]), expected)
    assert math.isclose(float(mean_probability([a, b]).exp().sum()), 1.0, rel_tol=1e-6)
    ruled_out = torch.tensor([[0.0, float("-inf")]])  # a token no member allows stays -inf
    assert mean_probability([ruled_out, ruled_out])[0, 1] == float("-inf")


def test_mean_probability_of_one_or_equal_distributions_is_exact():
    torch.manual_seed(0)
    logp = torch.log_softmax(torch.randn(6, 50) * 4, -1)
    assert torch.equal(mean_probability([logp]), logp)
    assert torch.equal(mean_probability([logp, logp, logp]), logp)


@pytest.fixture(scope="module")
def fixture_model():
    model, tok, recipe = load_model(FIXTURE / "translate.pt")
    return model, tok, read_lines(TEST_EN)[:40]


@pytest.mark.parametrize("beam, precision", [(1, "fp32"), (5, "fp32"), (5, "bf16"), (1, "bf16")])
@pytest.mark.parametrize("copies", [1, 2])
def test_ensemble_of_one_model_translates_as_that_model(fixture_model, beam, precision, copies):
    model, tok, lines = fixture_model
    opts = DecodeOptions(beam, 1.0, 2.0, 16, precision)
    alone = translate_lines(model, tok, lines, opts)
    assert translate_lines(Ensemble([model] * copies), tok, lines, opts) == alone


def test_ensemble_perplexity_of_copies_is_the_models(fixture_model):
    model, tok, lines = fixture_model
    src, tgt = tok.src.encode(lines[:8]), tok.tgt.encode(read_lines(TEST_EN.with_suffix(".de"))[:8])
    batch = seq2seq_batch(src, tgt, tok.tgt.pad_id, tok.tgt.bos_id, tok.tgt.eos_id)
    with torch.inference_mode():
        single, pair = model.loss(batch), Ensemble([model, model]).loss(batch)
    assert pair.n_tokens == single.n_tokens and pair.n_correct == single.n_correct
    assert math.isclose(float(pair.loss), float(single.loss), rel_tol=1e-5)


def test_translate_with_two_copies_gives_the_single_models_output(tmp_path):
    out = tmp_path / "hyp.txt"
    model = str(FIXTURE / "translate.pt")
    result = runner.invoke(app, ["translate", "-m", model, "-m", model, "--beam", "5",
                                 "-i", str(TEST_EN), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 models" in result.stderr
    assert out.read_text(encoding="utf-8") == (FIXTURE / "translate-beam5.txt").read_text(
        encoding="utf-8")


def test_eval_of_an_ensemble_names_its_members(tmp_path):
    model = str(FIXTURE / "translate.pt")
    args = ["--src", str(TEST_EN), "--ref", str(TEST_EN.with_suffix(".de")), "--beam", "2",
            "--out-dir", str(tmp_path)]
    assert runner.invoke(app, ["eval", "-m", model, *args]).exit_code == 0
    result = runner.invoke(app, ["eval", "-m", model, "-m", model, *args])
    assert result.exit_code == 0, result.output
    single = json.loads((tmp_path / "eval-test.en-beam2.json").read_text())
    pair = json.loads((tmp_path / "eval-test.en-beam2-ensemble2.json").read_text())
    assert pair["bleu"] == single["bleu"] and len(pair["ensemble"]) == 2
    assert abs(pair["ppl"] - single["ppl"]) < 1e-3
    assert "ensemble (mean next-token probabilities) of" in \
        (tmp_path / "eval-test.en-beam2-ensemble2.md").read_text()


def test_models_with_other_tokenizers_are_refused(trained_run):
    model = str(FIXTURE / "translate.pt")
    result = runner.invoke(app, ["translate", "-m", model, "-m", str(trained_run)],
                           input="A dog.\n")
    assert result.exit_code == 1
    assert f"{model} and {trained_run} have different target tokenizers" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("side", ["source", "target"])
def test_check_members_names_the_side_that_differs(side):
    def tok(proto: bytes):
        return SimpleNamespace(kind="sentencepiece", proto=proto)

    shared, other = tok(b"one"), tok(b"two")
    pair = SimpleNamespace(src=other if side == "source" else shared,
                           tgt=other if side == "target" else shared)
    check_members([Path("a"), Path("b")], [SimpleNamespace(src=shared, tgt=shared)] * 2)
    with pytest.raises(ConfigError, match=f"a and b have different {side} tokenizers"):
        check_members([Path("a"), Path("b")], [SimpleNamespace(src=shared, tgt=shared), pair])

"""Checkpoints written by earlier releases keep loading and give the outputs they gave then
(fixtures in tests/fixtures/, each folder named by the release that wrote it; see its README)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_nlp.cli import app

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "tests" / "fixtures" / "v0.1.0"
TEST_EN = ROOT / "data" / "demo" / "test.en"


def run(*args: str) -> None:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("beam, expected", [(1, "translate-greedy.txt"),
                                            (5, "translate-beam5.txt")])
def test_old_translation_checkpoint_translates_identically(tmp_path, beam, expected):
    out = tmp_path / "hyp.txt"
    run("translate", "-m", RELEASE / "translate.pt", "--beam", beam, "-i", TEST_EN, "-o", out)
    assert out.read_text(encoding="utf-8") == (RELEASE / expected).read_text(encoding="utf-8")


def test_old_language_model_scores_the_same_perplexity(tmp_path):
    expected = json.loads((RELEASE / "lm-eval.json").read_text())
    run("eval", "-m", RELEASE / "lm.pt", "-i", TEST_EN, "--out-dir", tmp_path)
    report = json.loads((tmp_path / f"eval-{TEST_EN.name}.json").read_text())
    assert report["tokens"] == expected["tokens"]
    assert abs(report["ppl"] - expected["ppl"]) <= 1e-3


def test_old_language_model_continues_prompts_identically(tmp_path):
    out = tmp_path / "out.txt"
    run("generate", "-m", RELEASE / "lm.pt", "--temperature", 0, "--max-tokens", 12,
        "-i", RELEASE / "lm-prompts.txt", "-o", out)
    assert out.read_text(encoding="utf-8") == (RELEASE / "lm-greedy.txt").read_text(
        encoding="utf-8")


def test_old_classifier_gives_the_same_labels_and_probabilities(tmp_path):
    rows = (ROOT / "data" / "demo" / "sentiment" / "test.tsv").read_text(
        encoding="utf-8").splitlines()[1:]
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(r.split("\t")[1] + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    run("classify", "-m", RELEASE / "classify.pt", "--format", "jsonl", "-i", texts, "-o", out)
    got = [json.loads(line) for line in out.read_text().splitlines()]
    want = [json.loads(line) for line in (RELEASE / "classify.jsonl").read_text().splitlines()]
    assert len(got) == len(want) == len(rows)
    for g, w in zip(got, want):
        assert g["label"] == w["label"]
        for name, p in w["probs"].items():
            assert abs(g["probs"][name] - p) <= 1e-4

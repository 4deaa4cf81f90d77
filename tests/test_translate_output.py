"""translate's n-best lists, scores, alignments and attention (one block per input line), the
alignment error rate, and the demo corpus's gold alignments."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lstm_nlp.cli import app
from lstm_nlp.data.batching import seq2seq_batch
from lstm_nlp.data.corpora import read_lines
from lstm_nlp.tasks.translate.alignment import (alignment_error_rate, parse_pharaoh,
                                                word_of_piece)
from lstm_nlp.tasks.translate.task import DecodeOptions, translate_hypotheses
from lstm_nlp.training.checkpoint import load_model

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "fixtures" / "v0.1.0" / "translate.pt"
DEMO = ROOT / "data" / "demo"
runner = CliRunner()
# empty lines and a blank one among demo sentences: each gets its block
LINES = ["A big teacher likes the young horse.", "", "The bird paints a white flower.", "  ",
         *read_lines(DEMO / "test.en")[3:15]]


def run(*args: str, lines: list[str] = LINES) -> list[str]:
    result = runner.invoke(app, ["translate", "-m", str(MODEL), *args],
                           input="".join(line + "\n" for line in lines))
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_n_best_lists_are_distinct_descending_and_start_with_the_translation():
    plain = run("--beam", "4")
    blocks: dict[int, list[tuple[str, float]]] = {}
    for row in run("--beam", "4", "--n-best", "3"):
        n, hyp, score = row.split(" ||| ")
        blocks.setdefault(int(n), []).append((hyp, float(score)))
    assert sorted(blocks) == list(range(len(LINES)))  # one block per line, empty ones too
    for n, block in blocks.items():
        hyps, scores = [h for h, _ in block], [s for _, s in block]
        assert hyps[0] == plain[n]
        assert len(set(hyps)) == len(hyps) and scores == sorted(scores, reverse=True)
        assert len(block) == (3 if LINES[n].strip() else 1)


def test_scores_are_the_teacher_forced_log_probability_of_the_output():
    model, tok, _ = load_model(MODEL)
    lines = read_lines(DEMO / "test.en")[:20]
    src = tok.src.encode(lines)
    found = translate_hypotheses(model, tok, src, DecodeOptions(3, 1.0, 2.0, 8, "fp32"))
    for ids, (best,) in zip(src, found):
        batch = seq2seq_batch([ids], [best.tokens], tok.tgt.pad_id, tok.tgt.bos_id,
                              tok.tgt.eos_id)
        with torch.inference_mode():
            assert best.score == pytest.approx(-float(model.loss(batch).loss), abs=1e-4)
        length_penalty = ((5 + len(best.tokens) + 1) / 6) ** 1.0
        assert best.normalized == pytest.approx(best.score / length_penalty, abs=1e-5)
    rows = [row.split("\t") for row in run("--beam", "3", "--scores", lines=lines)]
    assert [r[0] for r in rows] == run("--beam", "3", lines=lines)
    assert [float(r[1]) for r in rows] == [round(b[0].score, 4) for b in found]


def test_alignments_link_every_target_word_within_range():
    rows = run("--beam", "2", "--alignments")
    assert len(rows) == len(LINES)
    for line, row in zip(LINES, rows):
        text, links = row.split("\t")
        pairs = parse_pharaoh(links)
        if not line.strip():
            assert text == "" and not pairs
            continue
        assert all(0 <= i < len(line.split()) for i, _ in pairs)
        assert {j for _, j in pairs} == set(range(len(text.split())))


def test_attention_json_has_a_row_per_target_piece(tmp_path):
    out = tmp_path / "att.jsonl"
    rows = run("--beam", "2", "--scores", "--attention", str(out))
    records = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["sentence"] for r in records] == list(range(len(LINES)))
    assert len(rows) == len(LINES)
    for line, r in zip(LINES, records):
        assert bool(r["src"]) == bool(line.strip())
        assert len(r["attention"]) == len(r["tgt"])
        for weights in r["attention"]:
            assert len(weights) == len(r["src"]) and sum(weights) == pytest.approx(1, abs=1e-3)


@pytest.mark.parametrize("args, message", [
    (["--beam", "2", "--n-best", "3"], "--n-best 3 needs a beam of 3 or more"),
    (["--n-best", "6"], "the beam is 5"),   # the recipe's beam
    (["--n-best", "2", "--scores"], "--n-best lines carry their score already"),
])
def test_impossible_requests_are_one_line_errors(args, message):
    result = runner.invoke(app, ["translate", "-m", str(MODEL), *args], input="A dog.\n")
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output


def test_word_of_piece_follows_the_detokenized_words():
    _, tok, _ = load_model(MODEL)
    line = "A big teacher likes the young horse."
    ids = tok.src.encode([line])[0]     # ▁A ▁bi g ▁teacher ▁ li ke s ▁t he ▁ y o ung ▁horse .
    assert word_of_piece(tok.src, ids, line) == [0, 1, 1, 2, 3, 3, 3, 3, 4, 4, 5, 5, 5, 5, 6, 6]


def test_alignment_error_rate_known_values():
    gold = [{(0, 0), (1, 1)}, {(0, 1)}]
    assert alignment_error_rate(gold, gold) == 0.0
    assert alignment_error_rate([{(0, 0)}, set()], gold) == pytest.approx(1 - 2 * 1 / 4)
    assert alignment_error_rate([{(1, 0)}, {(1, 1)}], gold) == 1.0


def test_demo_gold_alignments_are_the_generators_and_cover_every_word(tmp_path):
    sys.path.insert(0, str(ROOT / "data"))
    import make_demo

    make_demo.main(tmp_path)
    assert (tmp_path / "test.align").read_text() == (DEMO / "test.align").read_text()
    assert (tmp_path / "test.en").read_text() == (DEMO / "test.en").read_text()
    rng = random.Random(0)
    for _ in range(200):
        en, de, links = make_demo.aligned_sentence(rng)
        assert {i for i, _ in links} == set(range(len(en.split())))
        assert {j for _, j in links} == set(range(len(de.split())))

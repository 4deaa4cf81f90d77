import math

import pytest

from lstm_nlp import metrics
from lstm_nlp.config.sections import TokenizerConfig
from lstm_nlp.data.tokenizer import (BOS_ID, EOS_ID, PAD_ID, UNK_ID, SentencePieceTokenizer,
                                     TokenizerPair, UnknownText, WordTokenizer, train_or_load)
from lstm_nlp.errors import CheckpointError, ConfigError

TEXTS = ["Ein kleines Mädchen klettert in ein Spielhaus.", "A little girl climbs.",
         "Zwei Männer stehen am Herd und bereiten Essen zu."] * 30


@pytest.mark.parametrize("kind", ["unigram", "bpe"])
@pytest.mark.parametrize("joint", [True, False])
def test_sentencepiece_round_trip_and_special_ids(tmp_path, kind, joint):
    cfg = TokenizerConfig(type=kind, vocab_size=60, joint=joint)
    pair = train_or_load(tmp_path, cfg, TEXTS[:60], TEXTS[30:], seed=1)
    assert pair.joint == joint
    for tok in (pair.src, pair.tgt):
        assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (PAD_ID, UNK_ID, BOS_ID, EOS_ID)
        ids = tok.encode(["Ein kleines Mädchen."])[0]
        assert min(ids) > EOS_ID and tok.decode([ids]) == ["Ein kleines Mädchen."]
    again = TokenizerPair.from_state(pair.to_state())  # what a checkpoint carries
    assert again.src.encode(TEXTS[:3]) == pair.src.encode(TEXTS[:3])
    # stored in the run folder: a second call loads instead of training
    assert train_or_load(tmp_path, cfg, ["other"], ["text"], seed=2).src.proto == pair.src.proto


def test_unknown_text_is_found_as_written(tmp_path):
    sp = train_or_load(tmp_path, TokenizerConfig(vocab_size=60), TEXTS, TEXTS, seed=1).src
    assert sp.unknown("Ein kleines Mädchen.") == []
    assert sp.unknown("Ein Quokka ☃ isst.") == ["Q", "o", "☃"]  # characters never seen
    word = WordTokenizer.train(["a little girl", "a man"], 0, 1, lowercase=True)
    assert word.unknown("A Little dog") == ["dog"]
    tally = UnknownText(sp)
    tally.check(["Ein Mädchen.", "Zwei ☃."], first_line=1)
    tally.check(["☃ Quokka"], first_line=3)
    assert tally.lines == 2 and tally.example == (2, ["☃"])
    assert tally.summary(3).startswith("2 lines of 3 had text the model's vocabulary lacks "
                                       "(first: line 2, '☃')")


def test_vocabulary_size_is_an_upper_bound_and_no_text_is_an_error(tmp_path):
    pair = train_or_load(tmp_path / "a", TokenizerConfig(vocab_size=5000), ["a b"] * 3, ["c"] * 3,
                         seed=1)
    assert pair.src.vocab_size < 5000
    with pytest.raises(ConfigError, match="sentencepiece could not train"):
        train_or_load(tmp_path / "b", TokenizerConfig(vocab_size=500), ["", " "], [""], seed=1)


def test_corrupt_tokenizer_model():
    with pytest.raises(CheckpointError, match="tokenizer model is corrupt"):
        SentencePieceTokenizer(b"not a model")


@pytest.mark.parametrize("hyp, ref, expected", [
    ("The cat sat on the mat.", "The cat sat on the mat.", 100.0),
    ("", "The cat sat on the mat.", 0.0),
    ("the cat sat on the mat.", "The cat sat on the mat.", 80.911),  # cased by default
])
def test_bleu_known_values(hyp, ref, expected):
    score = metrics.bleu([hyp], [ref])
    assert score.score == pytest.approx(expected, abs=1e-3)
    assert "tok:13a" in score.signature and "case:mixed" in score.signature


def test_chrf_and_lowercase():
    assert metrics.chrf(["abc"], ["abc"]).score == pytest.approx(100.0)
    assert metrics.bleu(["the cat sat on the mat."], ["The cat sat on the mat."],
                        lowercase=True).score == pytest.approx(100.0)


def test_perplexity_is_exp_of_mean_nll():
    # two tokens with probabilities 1/2 and 1/8: mean NLL = (ln 2 + ln 8) / 2 = 2 ln 2 -> ppl 4
    assert metrics.perplexity(math.log(2) + math.log(8), 2) == pytest.approx(4.0)
    assert math.isnan(metrics.perplexity(0.0, 0))
    assert metrics.accuracy(3, 4) == 0.75

"""Greedy and beam search: the batched searches give what a one-sentence-at-a-time reference of
the same rules gives, on the 0.1.0 translation fixture; their block maxima equal torch's topk
and argmax."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lstm_nlp.data.batching import pad
from lstm_nlp.data.corpora import read_lines
from lstm_nlp.tasks.translate import search
from lstm_nlp.training import runtime
from lstm_nlp.training.checkpoint import load_model
from lstm_nlp.training.devices import CPU

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "v0.1.0" / "translate.pt"


@pytest.fixture(scope="module")
def fixture_model():
    model, tok, _ = load_model(FIXTURE)
    sources = tok.src.encode(read_lines(ROOT / "data" / "demo" / "test.en")[:60])
    return model, tok.tgt, sources


def reference_greedy(model, src: list[int], bos: int, eos: int, ratio: float) -> list[int]:
    limit = int(search.max_lengths(torch.tensor([len(src)]), ratio))
    enc = model.encode(torch.tensor([src]), torch.tensor([len(src)]))
    out, prev = [], bos
    for _ in range(limit):
        logp, enc, _ = model.decode_step(torch.tensor([prev]), enc)
        prev = int(logp[0].argmax())
        if prev == eos:
            break
        out.append(prev)
    return out


def reference_beam(model, src: list[int], bos: int, eos: int, K: int, alpha: float,
                   ratio: float) -> list[int]:
    """One sentence, hypotheses in Python lists: take the 2K best continuations (torch's topk
    over all of them, whose order among equal scores the search keeps); those among the K best
    that end (EOS, or the length limit) are finished, the best finished one by GNMT-normalised
    score is kept (a later one only if strictly better); the K best that did not end go on;
    stop after K finished."""
    limit = int(search.max_lengths(torch.tensor([len(src)]), ratio))
    enc = model.encode(torch.tensor([src]), torch.tensor([len(src)]))
    hyps = [(torch.tensor(0.0), [])]                                    # (score, tokens)
    prev, best, best_norm, n_finished = [bos], [], float("-inf"), 0
    for t in range(limit):
        logp, enc, _ = model.decode_step(torch.tensor(prev), enc)       # (k, V)
        V = logp.size(1)
        cand = torch.cat([score + logp[i] for i, (score, _) in enumerate(hyps)])   # (k*V,)
        values, where = cand.topk(min(2 * K, cand.numel()))
        top = [(float(value), int(j) // V, int(j) % V) for value, j in zip(values, where)]
        last = t + 1 >= limit
        penalty = ((5.0 + t + 1) / 6.0) ** alpha
        for value, i, v in top[:K]:
            if v == eos or last:
                n_finished += 1
                norm = float(torch.tensor(value) / penalty)
                if norm > best_norm:
                    best_norm, best = norm, hyps[i][1] + [v]
        if n_finished >= K or last:
            break
        live = [c for c in top if c[2] != eos][:K]
        hyps = [(torch.tensor(value), hyps[i][1] + [v]) for value, i, v in live]
        enc = enc.select(None, torch.tensor([i for _, i, _ in live]))
        prev = [v for _, _, v in live]
    return best[: best.index(eos)] if eos in best else best[:limit]


def batched(fixture_model, precision: str, beam: int, alpha: float = 1.0) -> list[list[int]]:
    model, tgt, sources = fixture_model
    src, lengths = pad(sources, tgt.pad_id)
    with torch.inference_mode(), runtime.autocast(precision, CPU):
        if beam == 1:
            return search.greedy_decode(model, src, lengths, tgt.bos_id, tgt.eos_id, 2.0)
        return search.beam_search(model, src, lengths, tgt.bos_id, tgt.eos_id, beam, alpha, 2.0)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_greedy_equals_one_sentence_at_a_time(fixture_model, precision):
    model, tgt, sources = fixture_model
    with torch.inference_mode(), runtime.autocast(precision, CPU):
        expected = [reference_greedy(model, s, tgt.bos_id, tgt.eos_id, 2.0) for s in sources]
    assert batched(fixture_model, precision, 1) == expected


@pytest.mark.parametrize("precision, beam, alpha", [("fp32", 5, 1.0), ("fp32", 3, 0.0),
                                                    ("bf16", 5, 1.0), ("fp32", 2, 0.6)])
def test_beam_search_equals_one_sentence_at_a_time(fixture_model, precision, beam, alpha):
    model, tgt, sources = fixture_model
    with torch.inference_mode(), runtime.autocast(precision, CPU):
        expected = [reference_beam(model, s, tgt.bos_id, tgt.eos_id, beam, alpha, 2.0)
                    for s in sources]
    got = batched(fixture_model, precision, beam, alpha)
    assert got == expected
    assert any(g != b for g, b in zip(got, batched(fixture_model, precision, 1)))  # not greedy


@pytest.mark.parametrize("V", [8000, 100, 64, 63, 5])
def test_block_argmax_equals_argmax(V):
    torch.manual_seed(V)
    x = torch.randn(7, V)
    x[3] = float("-inf")                       # a dead row
    x[4, : min(V, 9)] = x[4].max() + 1         # equal maxima: the first one wins
    assert torch.equal(search.argmax(x), x.argmax(-1))


@pytest.mark.parametrize("V, k, n", [(8000, 5, 10), (1000, 1, 10), (130, 3, 6), (30, 4, 8),
                                     (3, 2, 6), (3, 1, 6)])
@pytest.mark.parametrize("ties", [False, True])
def test_best_continuations_equal_topk_over_all(V, k, n, ties):
    """What torch's topk over all k*V continuations gives, the order of equal scores included
    (bf16-rounded log-probabilities tie often)."""
    torch.manual_seed(V + k)
    B = 4
    logp = torch.log_softmax(torch.randn(B * k, V) * 3, -1)
    if ties:
        logp = logp.bfloat16().float()
    scores = -torch.rand(B, k) * 5
    scores[1, 1:] = float("-inf")                                      # dead hypotheses
    scores[2] = 0.0 if ties else scores[2]
    values, origin, token = search.best_continuations(scores, logp, n)
    cand = (scores.unsqueeze(-1) + logp.view(B, k, V)).view(B, k * V)
    expected, idx = cand.topk(min(n, k * V), dim=-1)
    assert torch.equal(values, expected)
    assert torch.equal(origin, idx // V)
    assert torch.equal(token, idx % V)

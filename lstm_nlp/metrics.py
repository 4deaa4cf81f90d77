"""Pure metric functions. BLEU and chrF come from sacrebleu, with its reproducibility signature."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    name: str
    score: float
    signature: str
    detail: str


def bleu(hyps: list[str], refs: list[str], tokenize: str = "13a", lowercase: bool = False) -> Score:
    from sacrebleu.metrics import BLEU

    metric = BLEU(tokenize=tokenize, lowercase=lowercase)
    result = metric.corpus_score(hyps, [refs])
    return Score("BLEU", result.score, str(metric.get_signature()), str(result))


def chrf(hyps: list[str], refs: list[str]) -> Score:
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    result = metric.corpus_score(hyps, [refs])
    return Score("chrF", result.score, str(metric.get_signature()), str(result))


def perplexity(nll_sum: float, n_tokens: int) -> float:
    """exp(mean negative log-likelihood per token)."""
    if n_tokens == 0:
        return float("nan")
    return math.exp(min(nll_sum / n_tokens, 700.0))


def accuracy(n_correct: int, n_total: int) -> float:
    return n_correct / n_total if n_total else float("nan")

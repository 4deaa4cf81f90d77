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


def classification_scores(gold: list[int], pred: list[int], classes: list[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix
    (rows: gold class, columns: predicted class). A class never predicted has precision 0;
    macro-F1 averages over the classes that occur in gold or predictions (as scikit-learn)."""
    n = len(classes)
    confusion = [[0] * n for _ in range(n)]
    for g, p in zip(gold, pred):
        confusion[g][p] += 1
    per_class, present = {}, []
    for c, name in enumerate(classes):
        tp = confusion[c][c]
        predicted = sum(confusion[r][c] for r in range(n))
        support = sum(confusion[c])
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1,
                           "support": support}
        if support or predicted:
            present.append(f1)
    return {"accuracy": accuracy(sum(confusion[c][c] for c in range(n)), len(gold)),
            "macro_f1": sum(present) / len(present) if present else float("nan"),
            "per_class": per_class, "confusion": confusion}

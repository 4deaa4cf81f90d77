"""Several translation models decoded as one: an object with the two methods of search.py's
protocol (`encode`, `decode_step`) and the teacher-forced `loss` that eval's perplexity reads.

Each member encodes the source and advances its own decoder state; at every step the ensemble's
next-token distribution is the mean of the members' probabilities (fairseq's ensembles do the
same), returned as its log: log (1/M) sum_m p_m(y). A mean of probabilities is a distribution
(it sums to 1), so beam scores stay log-probabilities and the length penalty means what it
means for one model; the mean of log-probabilities would be an unnormalised product of the
members. Computed around the members' maximum, so that one model, or M copies of one model,
give exactly that model's log-probabilities (exp(0) = 1, log(1) = 0).

The members share the source and target tokenizers (`check_members` refuses others): they read
the same source ids, and their distributions are over the same target pieces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lstm_nlp.data.batching import Seq2SeqBatch
from lstm_nlp.data.tokenizer import Tokenizer, TokenizerPair
from lstm_nlp.errors import ConfigError
from lstm_nlp.tasks.base import LossOutput
from lstm_nlp.tasks.translate.model import Encoded, Seq2SeqModel


@dataclass
class EnsembleEncoded:
    """Each member's own `Encoded`, selected alike."""
    parts: list[Encoded]

    def select(self, sentences: torch.Tensor | None, rows: torch.Tensor) -> "EnsembleEncoded":
        return EnsembleEncoded([part.select(sentences, rows) for part in self.parts])


class Ensemble(nn.Module):
    def __init__(self, members: list[Seq2SeqModel]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.train(members[0].training)  # the members' mode (eval, as loaded), not a new one's

    def encode(self, src: torch.Tensor, lengths: torch.Tensor) -> EnsembleEncoded:
        return EnsembleEncoded([m.encode(src, lengths) for m in self.members])

    def decode_step(self, prev: torch.Tensor, enc: EnsembleEncoded
                    ) -> tuple[torch.Tensor, EnsembleEncoded, torch.Tensor]:
        """prev (N,) -> the mean distribution's log-probabilities (N, V), the advanced states,
        the members' mean attention weights (N, S)."""
        steps = [m.decode_step(prev, part) for m, part in zip(self.members, enc.parts)]
        logp = mean_probability([s[0] for s in steps])                         # (N, V)
        weights = torch.stack([s[2] for s in steps]).mean(0)                    # (N, S)
        return logp, EnsembleEncoded([s[1] for s in steps]), weights

    def loss(self, batch: Seq2SeqBatch) -> LossOutput:
        """Teacher-forced NLL (summed) of the gold targets under the mean distribution, and how
        many the mean distribution's argmax gets right."""
        keep = batch.tgt_out != self.members[0].pad_id                          # (B, T)
        logps = []
        for m in self.members:
            states = m.forward_states(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, H)
            logps.append(torch.log_softmax(m.output(states[keep]).float(), dim=-1))  # (n, V)
        logp = mean_probability(logps)                                          # (n, V)
        gold = batch.tgt_out[keep]                                              # (n,)
        nll = -logp.gather(1, gold.unsqueeze(1)).sum()
        return LossOutput(nll, int(gold.numel()), int((logp.argmax(-1) == gold).sum()))


def mean_probability(logps: list[torch.Tensor]) -> torch.Tensor:
    """Log-probabilities (..., V) of M distributions -> log of their mean probability, exact
    for one distribution or M equal ones."""
    stacked = torch.stack(logps)                                                # (M, ..., V)
    top = stacked.amax(0)                                                       # (..., V)
    shift = top.masked_fill(top == float("-inf"), 0.0)  # a token every member rules out
    return shift + torch.log(torch.exp(stacked - shift).sum(0) / len(logps))


def check_members(paths: list[Path], toks: list[TokenizerPair]) -> None:
    """The members of an ensemble read and write the same pieces: the same source and target
    tokenizers as the first model, else a one-line error naming both models."""
    for path, tok in zip(paths[1:], toks[1:]):
        for side, first, other in (("target", toks[0].tgt, tok.tgt),
                                   ("source", toks[0].src, tok.src)):
            if not _same(first, other):
                raise ConfigError(f"{paths[0]} and {path} have different {side} tokenizers; "
                                  f"an ensemble needs models trained with the same {side} "
                                  "vocabulary")


def _same(a: Tokenizer, b: Tokenizer) -> bool:
    return a.kind == b.kind and bytes(a.proto) == bytes(b.proto)


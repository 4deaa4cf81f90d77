"""Batched greedy decoding and batched beam search, under inference mode, for any model that
follows the decoding protocol below: a `Seq2SeqModel`, an ensemble of them (`ensemble.py`), an
exported model run by another backend.

The protocol. Shapes: B sentences, K hypotheses per sentence (1 in greedy search, the beam size
in beam search), N = B*K rows, where rows b*K ... b*K+K-1 are sentence b's; S source length,
V target vocabulary.

    model.encode(src (B, S) long, lengths (B,) long) -> enc: one hypothesis per sentence
    model.decode_step(prev (N,) long, enc) -> (logp (N, V) float32 log-probabilities of the
        next token, the advanced enc, attention weights (N, S))
    enc.select(sentences (B',) long | None, rows (B'*K',) long) -> enc that keeps those
        sentences (None: all of them, as they are) and those hypothesis rows, in that order

Apart from `select`, `enc` is the model's own business. A `Seq2SeqModel` keeps the source memory
once per sentence and the K hypotheses of a sentence attend to it together, so the searches
never copy it per beam: only the decoder state follows the beams, and the memory moves only
when sentences finish and leave the batch.

Both searches return token ids without BOS/EOS; their bookkeeping tensors live on the source's
device and they synchronise with it once per step (to know whether sentences finished). Beam
search scores finished hypotheses with the GNMT length penalty ((5 + len) / 6) ** alpha (Wu et
al. 2016); alpha 0 is the raw log-probability. With beam size 1 it returns what greedy decoding
returns (exactly in fp32; where bf16 rounds the two best tokens' scores equal, torch's topk may
take the other one than argmax's first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as nn_functional

# Vocabulary columns per block for the searches' maxima: a row's best tokens lie in the blocks
# with the best maxima, and maxima over blocks are one fast vectorised pass, where torch's topk
# and argmax over 8k columns cost 5-10x as much.
BLOCK = 64


def max_lengths(src_lengths: torch.Tensor, ratio: float) -> torch.Tensor:
    """Hypothesis length limit per sentence: ratio * source length + 5 (room for short sources)."""
    return (src_lengths.float() * ratio).long() + 5


@torch.inference_mode()
def greedy_decode(model: Any, src: torch.Tensor, src_lengths: torch.Tensor,
                  bos_id: int, eos_id: int, max_len_ratio: float) -> list[list[int]]:
    """Finished sentences leave the batch, so the last steps only pay for the long ones."""
    B, device = src.size(0), src.device
    limits0 = max_lengths(src_lengths, max_len_ratio)                           # (B,)
    out = torch.full((B, int(limits0.max())), eos_id, dtype=torch.long, device=device)  # (B, L)
    enc = model.encode(src, src_lengths)
    prev = torch.full((B,), bos_id, dtype=torch.long, device=device)
    rows, limits = torch.arange(B, device=device), limits0                      # active sentences
    for t in range(out.size(1)):
        logp, enc, _ = model.decode_step(prev, enc)                             # (b, V)
        prev = argmax(logp)                                                     # (b,)
        out[rows, t] = prev
        done = (prev == eos_id) | (t + 1 >= limits)
        n_done = int(done.sum())
        if n_done == done.numel():
            break
        if n_done:
            keep = (~done).nonzero().squeeze(1)
            enc, rows, limits, prev = enc.select(keep, keep), rows[keep], limits[keep], prev[keep]
    return [_cut(seq, eos_id, n) for seq, n in zip(out.tolist(), limits0.tolist())]


@dataclass
class Hypothesis:
    """A finished translation: its tokens (no BOS/EOS); its log-probability (over its tokens,
    and its EOS when it ended with one); that score divided by the GNMT length penalty (what
    ranks hypotheses); and, when asked, each token's attention weights over the source tokens
    (T, S)."""
    tokens: list[int]
    score: float
    normalized: float
    attention: torch.Tensor | None = None


@torch.inference_mode()
def beam_search(model: Any, src: torch.Tensor, src_lengths: torch.Tensor,
                bos_id: int, eos_id: int, beam_size: int, length_penalty: float,
                max_len_ratio: float) -> list[list[int]]:
    """The best hypothesis of each sentence's beam search (`beam_hypotheses`), as token ids."""
    return [hyps[0].tokens for hyps in beam_hypotheses(
        model, src, src_lengths, bos_id, eos_id, beam_size, length_penalty, max_len_ratio)]


@torch.inference_mode()
def beam_hypotheses(model: Any, src: torch.Tensor, src_lengths: torch.Tensor,
                    bos_id: int, eos_id: int, beam_size: int, length_penalty: float,
                    max_len_ratio: float, n_best: int = 1, attention: bool = False
                    ) -> list[list[Hypothesis]]:
    """Batched beam search, bookkeeping in tensors: each sentence's `n_best` (at most the beam
    size) best finished hypotheses, best first, with their attention if asked. A sentence is
    done when K hypotheses have finished (a hypothesis may only finish while among the K best,
    as in fairseq) or at its length limit, where the live hypotheses are finished as they are.
    Done sentences leave the batch."""
    B0, K, S, device = src.size(0), beam_size, src.size(1), src.device
    if not 1 <= n_best <= K:
        raise ValueError(f"n_best {n_best} must be within 1..beam size {K}")
    limits0 = max_lengths(src_lengths, max_len_ratio)                           # (B,)
    L = int(limits0.max())
    ids = dict(dtype=torch.long, device=device)
    # K rows a sentence from the start, one of them live: the products of the first step then
    # have the row count of the others (bf16 products round by row count), as they always had
    enc = model.encode(src, src_lengths).select(
        None, torch.arange(B0, device=device).repeat_interleave(K))             # rows (B*K)
    prev = torch.full((B0 * K,), bos_id, **ids)
    scores = torch.full((B0, K), float("-inf"), device=device)
    scores[:, 0] = 0.0                                  # one live hypothesis per sentence at t=0
    history = torch.empty(B0, K, 0, **ids)                                      # (B, K, t)
    seen = torch.empty(B0, K, 0, S, device=device) if attention else None     # (B, K, t, S)
    finished = _Finished.empty(B0, n_best, L, S if attention else 0, eos_id, device)
    result = _Finished.empty(B0, n_best, L, S if attention else 0, eos_id, device)
    n_finished = torch.zeros(B0, **ids)
    sent, limits = torch.arange(B0, device=device), limits0  # original index of active ones
    for t in range(L):
        logp, enc, weights = model.decode_step(prev, enc)                       # (B*K, V)
        top_scores, origin, token = best_continuations(scores, logp, 2 * K)     # (B, 2K)
        last = (t + 1) >= limits                                                # (B,)
        ends = ((token == eos_id) | last.unsqueeze(1)) & (top_scores > float("-inf"))
        penalty = ((5.0 + t + 1) / 6.0) ** length_penalty  # length t tokens + EOS
        B = history.size(0)
        steps = weights.view(B, K, 1, -1) if attention else None               # (B, K, 1, S)
        finished = finished.add(top_scores[:, :K], penalty, ends[:, :K],
                                _extended(history, origin[:, :K], token[:, :K]),
                                _extended(seen, origin[:, :K], steps) if attention else None)
        n_finished += ends[:, :K].sum(1)
        done = (n_finished >= K) | last                                         # (B,)
        n_done = int(done.sum())
        if n_done:
            result.put(sent[done], finished.rows(done.nonzero().squeeze(1)))
            if n_done == done.numel():
                break
        live = top_scores.masked_fill(ends, float("-inf"))                      # (B, 2K)
        scores, pick = live.topk(K, dim=-1)                                     # (B, K) best live
        origin, token = origin.gather(1, pick), token.gather(1, pick)           # (B, K)
        keep = (~done).nonzero().squeeze(1) if n_done else None                 # (B',)
        if keep is not None:  # sentences left: their rows go
            scores, origin, token, sent, limits = (x[keep] for x in
                                                   (scores, origin, token, sent, limits))
            finished, n_finished = finished.rows(keep), n_finished[keep]
        kept = torch.arange(B, device=device) if keep is None else keep         # (B',)
        rows = (kept.unsqueeze(1) * K + origin).view(-1)                        # (B'*K,) of B*K
        history = torch.cat([history.view(B * K, t)[rows].view(*token.shape, t),
                             token.unsqueeze(-1)], dim=-1)                      # (B', K, t+1)
        if attention:
            seen = torch.cat([seen.view(B * K, t, S)[rows],
                              weights[rows].unsqueeze(1)], dim=1).view(*token.shape, t + 1, S)
        enc = enc.select(keep, rows)
        prev = token.view(-1)
    return result.hypotheses(limits0, src_lengths)


def _extended(past: torch.Tensor, origin: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """Each candidate's past (B, K, t, ...) taken from the hypothesis it continues, `origin`
    (B, K), with this step's entry after it: `step` (B, K) is the candidates' own (tokens),
    (B, K, 1, ...) the hypotheses' (attention) -> (B, K, t+1, ...)."""
    def by_origin(x: torch.Tensor) -> torch.Tensor:
        index = origin.view(*origin.shape, *[1] * (x.dim() - 2)).expand(-1, -1, *x.shape[2:])
        return x.gather(1, index)

    own = step.unsqueeze(-1) if step.dim() == 2 else by_origin(step)
    return torch.cat([by_origin(past), own], dim=2)


@dataclass
class _Finished:
    """The F best finished hypotheses of each of B sentences, best first: normalised scores
    (B, F) (-inf: none yet), log-probabilities (B, F), tokens (B, F, L) (EOS after the end),
    attention (B, F, L, S) (S = 0 when not kept)."""
    norm: torch.Tensor
    score: torch.Tensor
    tokens: torch.Tensor
    attention: torch.Tensor
    eos_id: int

    @classmethod
    def empty(cls, B: int, F: int, L: int, S: int, eos_id: int, device: torch.device
              ) -> "_Finished":
        return cls(torch.full((B, F), float("-inf"), device=device),
                   torch.zeros(B, F, device=device),
                   torch.full((B, F, L), eos_id, dtype=torch.long, device=device),
                   torch.zeros(B, F, L, S, device=device), eos_id)

    def add(self, score: torch.Tensor, penalty: float, ends: torch.Tensor, tokens: torch.Tensor,
            attention: torch.Tensor | None) -> "_Finished":
        """Candidates (B, K), best first, of which `ends` finish, with their tokens (B, K, t+1)
        and attention (B, K, t+1, S) -> the F best of the kept and the new. Ties keep the
        earlier (a stable sort): the best is the first hypothesis that reached the best score."""
        F, L = self.tokens.shape[1:]
        norm = (score / penalty).masked_fill(~ends, float("-inf"))              # (B, K)
        order = torch.cat([self.norm, norm], 1).sort(dim=1, descending=True,
                                                     stable=True).indices[:, :F]  # (B, F)
        pad = L - tokens.size(2)
        tokens = torch.cat([self.tokens, nn_functional.pad(tokens, (0, pad), value=self.eos_id)],
                           1)                                                   # (B, F+K, L)
        kept = _Finished(torch.cat([self.norm, norm], 1).gather(1, order),
                         torch.cat([self.score, score], 1).gather(1, order),
                         tokens.gather(1, order.unsqueeze(-1).expand(-1, -1, L)), self.attention,
                         self.eos_id)
        if attention is not None:
            attention = torch.cat([self.attention, nn_functional.pad(
                attention, (0, 0, 0, pad))], 1)                                 # (B, F+K, L, S)
            kept.attention = attention.gather(1, order.view(*order.shape, 1, 1).expand(
                -1, -1, *attention.shape[2:]))
        return kept

    def rows(self, index: torch.Tensor) -> "_Finished":
        return _Finished(self.norm[index], self.score[index], self.tokens[index],
                         self.attention[index], self.eos_id)

    def put(self, index: torch.Tensor, other: "_Finished") -> None:
        """Write `other`'s sentences into rows `index` of this one."""
        self.norm[index], self.score[index] = other.norm, other.score
        self.tokens[index], self.attention[index] = other.tokens, other.attention

    def hypotheses(self, limits: torch.Tensor, src_lengths: torch.Tensor
                   ) -> list[list[Hypothesis]]:
        """Per sentence, its finished hypotheses (tokens cut at EOS and at its `limits`)."""
        keep_attention = self.attention.size(-1) > 0
        out = []
        for b, (norms, scores, seqs, limit) in enumerate(zip(
                self.norm.tolist(), self.score.tolist(), self.tokens.tolist(), limits.tolist())):
            hyps = []
            for f, (norm, score, seq) in enumerate(zip(norms, scores, seqs)):
                if norm == float("-inf"):
                    continue
                tokens = _cut(seq, self.eos_id, limit)
                weights = self.attention[b, f, : len(tokens), : int(src_lengths[b])] \
                    if keep_attention else None
                hyps.append(Hypothesis(tokens, score, norm, weights))
            out.append(hyps)
        return out


def best_continuations(scores: torch.Tensor, logp: torch.Tensor, n: int
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The n best one-token continuations of each sentence's k hypotheses: scores (B, k), logp
    (B*k, V) -> their scores (score + log-probability) (B, n), best first, which hypothesis
    each continues (B, n) and its token (B, n): what torch's topk over all k*V of them gives.

    Found through block maxima: only the blocks with the n best maxima can hold the n best.
    Where that gives n + 1 distinct values, the n best and their order are settled; a sentence
    whose n + 1 best hold equal values (bf16 logits tie often: a fifth of sentence-steps;
    fp32 ones almost never) takes torch's topk over all k*V instead, whose order among equal
    values is the order the search has always had."""
    B, k = scores.shape
    V = logp.size(1)
    top, hyp, token = _best_by_blocks(scores, logp, min(n + 1, k * V))          # (B, n+1)
    tied = (top[:, 1:] == top[:, :-1]).any(1)                                   # (B,)
    top, hyp, token = top[:, :n], hyp[:, :n], token[:, :n]
    if bool(tied.any()):
        rows = tied.nonzero().squeeze(1)                                        # (b,)
        cand = scores[rows].unsqueeze(-1) + logp.view(B, k, V)[rows]            # (b, k, V)
        top_t, idx = cand.view(rows.numel(), k * V).topk(min(n, k * V), dim=-1)  # (b, n)
        top, hyp, token = top.clone(), hyp.clone(), token.clone()
        top[rows], hyp[rows], token[rows] = top_t, idx // V, idx % V
    return top, hyp, token


def _best_by_blocks(scores: torch.Tensor, logp: torch.Tensor, n: int
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`best_continuations` through the blocks with the n best maxima (exact up to the order
    of equal values)."""
    B, k = scores.shape
    V = logp.size(1)
    block_best = _block_max(logp).view(B, k, -1) + scores.unsqueeze(-1)        # (B, k, nb)
    nb = block_best.size(-1)
    _, blocks = block_best.view(B, k * nb).topk(min(n, k * nb), dim=-1)        # (B, n')
    hyp = blocks // nb                                                          # (B, n')
    cols, valid = _block_columns(blocks % nb, V)                                # (B, n', BLOCK)
    rows = torch.arange(B, device=logp.device).unsqueeze(1) * k + hyp           # (B, n')
    values = logp[rows.unsqueeze(-1), cols] + scores.gather(1, hyp).unsqueeze(-1)
    values = values.masked_fill(~valid, float("-inf")).view(B, -1)              # (B, n'*BLOCK)
    top, where = values.topk(n, dim=-1)                                         # (B, n)
    return top, hyp.gather(1, where // BLOCK), cols.view(B, -1).gather(1, where)


def argmax(x: torch.Tensor) -> torch.Tensor:
    """x (N, V) -> (N,): x.argmax(-1) (the first of equal maxima), through block maxima."""
    block = _block_max(x).argmax(-1, keepdim=True)                              # (N, 1)
    cols, valid = _block_columns(block, x.size(1))                              # (N, 1, BLOCK)
    inside = x.gather(1, cols[:, 0]).masked_fill(~valid[:, 0], float("-inf"))   # (N, BLOCK)
    return cols[:, 0].gather(1, inside.argmax(-1, keepdim=True)).squeeze(1)


def _block_max(x: torch.Tensor) -> torch.Tensor:
    """x (N, V) -> the maximum of each block of BLOCK columns (N, ceil(V / BLOCK))."""
    N, V = x.shape
    full = V // BLOCK
    maxima = x[:, : full * BLOCK].view(N, full, BLOCK).amax(-1)                 # (N, full)
    if full * BLOCK < V:
        maxima = torch.cat([maxima, x[:, full * BLOCK:].amax(-1, keepdim=True)], dim=1)
    return maxima


def _block_columns(blocks: torch.Tensor, V: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Block numbers (..., n) -> their columns (..., n, BLOCK), and which are < V (the last
    block may be short; its missing columns point at V - 1)."""
    cols = blocks.unsqueeze(-1) * BLOCK + torch.arange(BLOCK, device=blocks.device)
    return cols.clamp(max=V - 1), cols < V


def _cut(seq: list[int], eos_id: int, limit: int) -> list[int]:
    """Tokens before the first EOS, at most `limit` of them."""
    if eos_id in seq:
        seq = seq[: seq.index(eos_id)]
    return seq[:limit]

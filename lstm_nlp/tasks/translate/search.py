"""Batched greedy decoding and batched beam search, under inference mode, for any model that
follows the decoding protocol below: a `Seq2SeqModel`, an ensemble of them (`ensemble.py`), an
exported model run by another backend.

The protocol. Shapes: B sentences, K hypotheses per sentence (1 in greedy search and at the
first step of beam search, then the beam size), N = B*K rows, where rows b*K ... b*K+K-1 are
sentence b's; S source length, V target vocabulary.

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
al. 2016); alpha 0 is the raw log-probability. With beam size 1 it returns exactly what greedy
decoding returns.
"""

from __future__ import annotations

from typing import Any

import torch

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


@torch.inference_mode()
def beam_search(model: Any, src: torch.Tensor, src_lengths: torch.Tensor,
                bos_id: int, eos_id: int, beam_size: int, length_penalty: float,
                max_len_ratio: float) -> list[list[int]]:
    """Batched beam search, bookkeeping in tensors. A sentence is done when K hypotheses have
    finished (a hypothesis may only finish while among the K best, as in fairseq) or at its
    length limit, where the live hypotheses are finished as they are. Done sentences leave the
    batch."""
    B0, K, device = src.size(0), beam_size, src.device
    limits0 = max_lengths(src_lengths, max_len_ratio)                           # (B,)
    L = int(limits0.max())
    ids = dict(dtype=torch.long, device=device)
    result = torch.full((B0, L), eos_id, **ids)
    # K rows a sentence from the start, one of them live: the products of the first step then
    # have the row count of the others (bf16 products round by row count), as they always had
    enc = model.encode(src, src_lengths).select(
        None, torch.arange(B0, device=device).repeat_interleave(K))             # rows (B*K)
    prev = torch.full((B0 * K,), bos_id, **ids)
    scores = torch.full((B0, K), float("-inf"), device=device)
    scores[:, 0] = 0.0                                  # one live hypothesis per sentence at t=0
    history = torch.empty(B0, K, 0, **ids)                                      # (B, K, t)
    best_score = torch.full((B0,), float("-inf"), device=device)
    best_tokens = torch.full((B0, L), eos_id, **ids)                            # (B, L)
    n_finished = torch.zeros(B0, **ids)
    sent, limits = torch.arange(B0, device=device), limits0  # original index of active ones
    for t in range(L):
        logp, enc, _ = model.decode_step(prev, enc)                             # (B*K, V)
        top_scores, origin, token = best_continuations(scores, logp, 2 * K)     # (B, 2K)
        last = (t + 1) >= limits                                                # (B,)
        ends = ((token == eos_id) | last.unsqueeze(1)) & (top_scores > float("-inf"))
        penalty = ((5.0 + t + 1) / 6.0) ** length_penalty  # length t tokens + EOS
        best_score = _finish(top_scores[:, :K] / penalty, ends[:, :K], history, origin, token,
                             best_score, best_tokens, n_finished)
        done = (n_finished >= K) | last                                         # (B,)
        n_done = int(done.sum())
        if n_done:
            result[sent[done]] = best_tokens[done]
            if n_done == done.numel():
                break
        live = top_scores.masked_fill(ends, float("-inf"))                      # (B, 2K)
        scores, pick = live.topk(K, dim=-1)                                     # (B, K) best live
        origin, token = origin.gather(1, pick), token.gather(1, pick)           # (B, K)
        B = history.size(0)
        keep = (~done).nonzero().squeeze(1) if n_done else None                 # (B',)
        if keep is not None:  # sentences left: their rows go
            scores, origin, token, sent, limits = (x[keep] for x in
                                                   (scores, origin, token, sent, limits))
            best_score, best_tokens, n_finished = (x[keep] for x in
                                                   (best_score, best_tokens, n_finished))
        kept = torch.arange(B, device=device) if keep is None else keep         # (B',)
        rows = (kept.unsqueeze(1) * K + origin).view(-1)                        # (B'*K,) of B*K
        history = torch.cat([history.view(B * K, t)[rows].view(*token.shape, t),
                             token.unsqueeze(-1)], dim=-1)                      # (B', K, t+1)
        enc = enc.select(keep, rows)
        prev = token.view(-1)
    return [_cut(seq, eos_id, n) for seq, n in zip(result.tolist(), limits0.tolist())]


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


def _finish(norm: torch.Tensor, ends: torch.Tensor, history: torch.Tensor, origin: torch.Tensor,
            token: torch.Tensor, best_score: torch.Tensor, best_tokens: torch.Tensor,
            n_finished: torch.Tensor) -> torch.Tensor:
    """Hypotheses that end among the K best candidates (`ends`, (B, K); `norm`: their
    length-normalised scores, best first) count as finished; each sentence keeps its best one
    in `best_tokens` (B, L) (updated in place, as is `n_finished` (B,)). Candidates come best
    first, so a sentence's best new finished hypothesis is its first one; it replaces the kept
    one only if strictly better. -> the new best scores."""
    B, t = norm.size(0), history.size(-1)
    first = ends.int().argmax(1, keepdim=True)                                  # (B, 1)
    score = norm.gather(1, first).squeeze(1)                                    # (B,)
    better = ends.any(1) & (score > best_score)                                 # (B,)
    seq = torch.cat([history[torch.arange(B, device=norm.device), origin.gather(1, first)[:, 0]],
                     token.gather(1, first)], dim=1)                            # (B, t+1)
    best_tokens[:, : t + 1] = torch.where(better.unsqueeze(1), seq, best_tokens[:, : t + 1])
    n_finished += ends.sum(1)
    return torch.where(better, score, best_score)


def _cut(seq: list[int], eos_id: int, limit: int) -> list[int]:
    """Tokens before the first EOS, at most `limit` of them."""
    if eos_id in seq:
        seq = seq[: seq.index(eos_id)]
    return seq[:limit]

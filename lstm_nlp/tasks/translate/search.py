"""Batched greedy decoding and batched beam search for `Seq2SeqModel`, under inference mode.

Both return token ids without BOS/EOS; their bookkeeping tensors live on the source's device.
Beam search scores finished hypotheses with the GNMT length penalty ((5 + len) / 6) ** alpha (Wu
et al. 2016); alpha 0 is the raw log-probability. With beam size 1 it returns exactly what greedy
decoding returns.
"""

from __future__ import annotations

import torch

from lstm_nlp.tasks.translate.model import Seq2SeqModel


def max_lengths(src_lengths: torch.Tensor, ratio: float) -> torch.Tensor:
    """Hypothesis length limit per sentence: ratio * source length + 5 (room for short sources)."""
    return (src_lengths.float() * ratio).long() + 5


@torch.inference_mode()
def greedy_decode(model: Seq2SeqModel, src: torch.Tensor, src_lengths: torch.Tensor,
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
        prev = logp.argmax(-1)                                                  # (b,)
        out[rows, t] = prev
        done = (prev == eos_id) | (t + 1 >= limits)
        if bool(done.all()):
            break
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)
            enc, rows, limits, prev = enc.select(keep), rows[keep], limits[keep], prev[keep]
    return [_cut(seq, eos_id, n) for seq, n in zip(out.tolist(), limits0.tolist())]


@torch.inference_mode()
def beam_search(model: Seq2SeqModel, src: torch.Tensor, src_lengths: torch.Tensor,
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
    enc = model.encode(src, src_lengths).select(
        torch.arange(B0, device=device).repeat_interleave(K))                   # rows (B*K)
    prev = torch.full((B0 * K,), bos_id, **ids)
    scores = torch.full((B0, K), float("-inf"), device=device)
    scores[:, 0] = 0.0                                  # one live hypothesis per sentence at t=0
    history = torch.empty(B0, K, 0, **ids)                                      # (B, K, t)
    best_score = torch.full((B0,), float("-inf"), device=device)
    best_tokens = torch.full((B0, L), eos_id, **ids)                            # (B, L)
    n_finished = torch.zeros(B0, **ids)
    sent, limits = torch.arange(B0, device=device), limits0  # original index of active ones
    for t in range(L):
        B = sent.numel()
        logp, enc, _ = model.decode_step(prev, enc)                             # (B*K, V)
        V = logp.size(-1)
        cand = (scores.unsqueeze(-1) + logp.view(B, K, V)).view(B, K * V)       # (B, K*V)
        top_scores, top_idx = cand.topk(min(2 * K, K * V), dim=-1)              # (B, 2K)
        origin, token = top_idx // V, top_idx % V                               # (B, 2K)
        last = (t + 1) >= limits                                                # (B,)
        ends = ((token == eos_id) | last.unsqueeze(1)) & (top_scores > float("-inf"))
        penalty = ((5.0 + t + 1) / 6.0) ** length_penalty  # length t tokens + EOS
        best_score = _finish(top_scores[:, :K] / penalty, ends[:, :K], history, origin, token,
                             best_score, best_tokens, n_finished)
        done = (n_finished >= K) | last                                         # (B,)
        if bool(done.any()):
            result[sent[done]] = best_tokens[done]
            if bool(done.all()):
                break
        live = top_scores.masked_fill(ends, float("-inf"))                      # (B, 2K)
        scores, pick = live.topk(K, dim=-1)                                     # (B, K) first K live
        new_origin, new_token = origin.gather(1, pick), token.gather(1, pick)   # (B, K)
        keep = (~done).nonzero().squeeze(1)                                     # (B',)
        origin_kept = new_origin[keep]                                          # (B', K)
        rows = (keep.unsqueeze(1) * K + origin_kept).view(-1)                   # (B'*K,) of B*K
        history = torch.cat([history.view(B * K, -1)[rows].view(keep.numel(), K, -1),
                             new_token[keep].unsqueeze(-1)], dim=-1)            # (B', K, t+1)
        if keep.numel() < B:  # sentences left: their memory rows go too
            enc = enc.select((keep.unsqueeze(1) * K + torch.arange(K, device=device)).view(-1))
            scores, sent, limits = scores[keep], sent[keep], limits[keep]
            best_score, best_tokens = best_score[keep], best_tokens[keep]
            n_finished = n_finished[keep]
        # Beams of a sentence share its memory: only the decoder state follows the beams.
        kept_rows = (torch.arange(keep.numel(), device=device).unsqueeze(1) * K
                     + origin_kept).view(-1)
        enc = enc.select_state(kept_rows)                                       # rows of B'*K
        prev = new_token[keep].view(-1)
    return [_cut(seq, eos_id, n) for seq, n in zip(result.tolist(), limits0.tolist())]


def _finish(norm: torch.Tensor, ends: torch.Tensor, history: torch.Tensor, origin: torch.Tensor,
            token: torch.Tensor, best_score: torch.Tensor, best_tokens: torch.Tensor,
            n_finished: torch.Tensor) -> torch.Tensor:
    """Hypotheses that end among the K best candidates (`ends`, (B, K); `norm`: their
    length-normalised scores) count as finished; each sentence keeps its best one in
    `best_tokens` (B, L) (updated in place, as is `n_finished` (B,)). -> the new best scores."""
    rows = torch.arange(norm.size(0), device=norm.device)
    t = history.size(-1)
    for j in range(norm.size(1)):  # candidate rank j, best first
        fin = ends[:, j]
        if not bool(fin.any()):
            continue
        better = fin & (norm[:, j] > best_score)
        if bool(better.any()):
            seq = torch.cat([history[rows, origin[:, j]], token[:, j:j + 1]], 1)  # (B, t+1)
            best_tokens[better, : t + 1] = seq[better]
            best_score = torch.where(better, norm[:, j], best_score)
        n_finished += fin.long()
    return best_score


def _cut(seq: list[int], eos_id: int, limit: int) -> list[int]:
    """Tokens before the first EOS, at most `limit` of them."""
    if eos_id in seq:
        seq = seq[: seq.index(eos_id)]
    return seq[:limit]

"""Token ids -> padded batches. Token-based batches bucketed by length, in an order that depends
only on (seed, epoch), so that a position in the data is just (epoch, batch index) and resuming
replays exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class Seq2SeqBatch:
    src: torch.Tensor          # (B, S) source ids, right-padded
    src_lengths: torch.Tensor  # (B,) true source lengths
    tgt_in: torch.Tensor       # (B, T) BOS y1 .. yn, padded
    tgt_out: torch.Tensor      # (B, T) y1 .. yn EOS, padded
    n_tokens: int              # non-pad target tokens (the loss normaliser)


def pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence: (B, L) ids and (B,) lengths."""
    lengths = [len(s) for s in seqs]
    width = max(lengths) if lengths else 0
    out = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out, torch.as_tensor(lengths, dtype=torch.long)


def seq2seq_batch(src: list[list[int]], tgt: list[list[int]], pad_id: int, bos_id: int,
                  eos_id: int) -> Seq2SeqBatch:
    src_t, src_len = pad(src, pad_id)
    tgt_in, _ = pad([[bos_id] + t for t in tgt], pad_id)
    tgt_out, _ = pad([t + [eos_id] for t in tgt], pad_id)
    return Seq2SeqBatch(src_t, src_len, tgt_in, tgt_out, sum(len(t) + 1 for t in tgt))


def bucketed(keys: list, cut: Callable[[list[int]], list[list[int]]], seed: int, epoch: int,
             pool: int = 0) -> list[list[int]]:
    """Batches of similar lengths in a random order that depends only on (seed, epoch).

    A permutation of the rows, sorted by `keys[i]` (a length, or a tuple of lengths; the sort is
    stable, so ties keep the random order) as a whole or in pools of `pool` rows; `cut` turns
    each sorted run into batches; then the batch order is shuffled with the same generator.
    """
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(len(keys), generator=g).tolist()
    size = pool or max(len(order), 1)
    batches = []
    for start in range(0, len(order), size):
        batches += cut(sorted(order[start: start + size], key=keys.__getitem__))
    perm = torch.randperm(len(batches), generator=g).tolist()
    return [batches[j] for j in perm]


def token_batches(src_lens: list[int], tgt_lens: list[int], batch_tokens: int, seed: int,
                  epoch: int) -> list[list[int]]:
    """Sentence pairs in batches of at most `batch_tokens` padded tokens (source or target,
    whichever is longer), similar lengths together."""
    def cut(order: list[int]) -> list[list[int]]:
        batches, current, width = [], [], 0
        for i in order:
            w = max(width, src_lens[i], tgt_lens[i] + 1)
            if current and w * (len(current) + 1) > batch_tokens:
                batches.append(current)
                current, w = [], max(src_lens[i], tgt_lens[i] + 1)
            current.append(i)
            width = w
        return batches + [current] if current else batches

    return bucketed(list(zip(tgt_lens, src_lens)), cut, seed, epoch)


def length_batches(lengths: list[int], batch_size: int, seed: int, epoch: int
                   ) -> list[list[int]]:
    """Texts in batches of `batch_size`, sorted by length within pools of 50 batches (little
    padding, yet every epoch mixes lengths differently)."""
    def cut(order: list[int]) -> list[list[int]]:
        return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]

    return bucketed(lengths, cut, seed, epoch, pool=batch_size * 50)


def sorted_chunks(lengths: list[int], size: int) -> list[list[int]]:
    """Indices in chunks of `size`, longest first (for inference: little padding)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i: i + size] for i in range(0, len(order), size)]

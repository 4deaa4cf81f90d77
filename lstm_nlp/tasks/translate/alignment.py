"""Hard word alignments from attention, in the Pharaoh format (`0-0 1-2 ...`: source word -
target word, indices of the whitespace-separated words of the source line and of the
detokenized translation), and the alignment error rate against gold links (Och & Ney 2003).

Each target piece links the source word of the piece it attends to most; a word's links are
its pieces' links, so every target word is aligned.
"""

from __future__ import annotations

import torch

from lstm_nlp.data.tokenizer import Tokenizer

WORD_START = "\u2581"  # sentencepiece's mark of a piece that begins a word ("▁")


def word_of_piece(tok: Tokenizer, ids: list[int], text: str) -> list[int]:
    """The word of `text` (whitespace-separated, text being the pieces' detokenized form) each
    token belongs to. A piece begins a new word when it starts with ▁ (a lone ▁ begins the
    word its next pieces spell); indices stay within text's words."""
    last = max(len(text.split()) - 1, 0)
    if tok.kind == "word":
        return [min(i, last) for i in range(len(ids))]
    words, starts = [], 0
    for piece in tok.id_to_piece(ids):
        starts += piece.startswith(WORD_START)
        words.append(min(max(starts - 1, 0), last))
    return words


def hard_links(attention: torch.Tensor, src_words: list[int], tgt_words: list[int]
               ) -> list[tuple[int, int]]:
    """attention (T, S) of T target pieces over S source pieces -> sorted (source word, target
    word) links: each target piece to the word of its most attended source piece."""
    if attention.numel() == 0:
        return []
    best = attention.argmax(-1).tolist()                                        # (T,)
    return sorted({(src_words[s], tgt_words[t]) for t, s in enumerate(best)})


def pharaoh(links: list[tuple[int, int]]) -> str:
    return " ".join(f"{i}-{j}" for i, j in links)


def parse_pharaoh(line: str) -> set[tuple[int, int]]:
    return {tuple(int(x) for x in link.split("-")) for link in line.split()}


def alignment_error_rate(hyp: list[set[tuple[int, int]]], gold: list[set[tuple[int, int]]]
                         ) -> float:
    """AER = 1 - (|A & S| + |A & P|) / (|A| + |S|), with every gold link sure (S = P)."""
    agree = sum(len(a & g) for a, g in zip(hyp, gold))
    total = sum(len(a) for a in hyp) + sum(len(g) for g in gold)
    return 1.0 - 2.0 * agree / total if total else 0.0

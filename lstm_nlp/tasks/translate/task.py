"""Everything specific to the translate task: batches of sentence pairs, the validation metrics,
and turning raw source lines into raw target lines with greedy or beam search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

import numpy as np

from lstm_nlp import metrics
from lstm_nlp.data.batching import Seq2SeqBatch, pad, seq2seq_batch, sorted_chunks, token_batches
from lstm_nlp.data.corpora import ParallelText
from lstm_nlp.data.token_store import TokenStore
from lstm_nlp.data.tokenizer import TokenizerPair
from lstm_nlp.errors import DataError
from lstm_nlp.tasks.base import LossOutput, inference
from lstm_nlp.tasks.translate.config import TranslateRecipe as Recipe
from lstm_nlp.tasks.translate.model import Seq2SeqModel
from lstm_nlp.tasks.translate.search import (Hypothesis, beam_hypotheses, beam_search,
                                             greedy_decode)
from lstm_nlp.training import runtime
from lstm_nlp.training.devices import device_of, to_device


@dataclass
class DecodeOptions:
    beam_size: int = 1
    length_penalty: float = 1.0
    max_len_ratio: float = 2.0
    batch_size: int = 128
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast)


@dataclass
class TokenizedPairs:
    """The training pairs as token ids: a store per side, line i of one aligned with line i of
    the other."""

    src: TokenStore
    tgt: TokenStore
    origin: str

    @classmethod
    def encode(cls, tok: TokenizerPair, pairs: ParallelText) -> TokenizedPairs:
        """Pairs tokenized here, held in memory."""
        return cls(TokenStore.from_rows(tok.src.encode(pairs.src), tok.src.vocab_size),
                   TokenStore.from_rows(tok.tgt.encode(pairs.tgt), tok.tgt.vocab_size),
                   pairs.origin)


class TranslationTask:
    """The trainer's view of translation: batches, loss and validation. The training pairs are
    text (tokenized here) or token stores; the length buckets come from the stores' indexes,
    and a batch reads its rows from them."""

    def __init__(self, recipe: Recipe, tok: TokenizerPair, train: ParallelText | TokenizedPairs,
                 valid: ParallelText):
        self.recipe, self.tok, self.valid = recipe, tok, valid
        pairs = train if isinstance(train, TokenizedPairs) else TokenizedPairs.encode(tok, train)
        src_lens, tgt_lens = pairs.src.lengths(), pairs.tgt.lengths()
        d = recipe.data
        keep = np.flatnonzero((src_lens > 0) & (src_lens <= d.max_src_len)
                              & (tgt_lens > 0) & (tgt_lens <= d.max_tgt_len))
        if d.max_train_examples:
            keep = keep[: d.max_train_examples]
        if not len(keep):
            raise DataError(f"{pairs.origin}: no training pair left after length filtering "
                            f"(max_src_len {d.max_src_len}, max_tgt_len {d.max_tgt_len})")
        self.dropped = len(src_lens) - len(keep)
        self.pairs, self.rows = pairs, keep  # batch index i -> line rows[i] of the stores
        self.src_lens = src_lens[keep].tolist()
        self.tgt_lens = tgt_lens[keep].tolist()
        self.valid_src = tok.src.encode(valid.src)
        self.valid_tgt = tok.tgt.encode(valid.tgt)

    @property
    def n_target_tokens(self) -> int:
        return sum(self.tgt_lens) + len(self.tgt_lens)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        return token_batches(self.src_lens, self.tgt_lens, self.recipe.train.batch_tokens,
                             self.recipe.seed, epoch)

    def collate(self, indices: list[int]) -> Seq2SeqBatch:
        t, rows = self.tok.tgt, self.rows[indices].tolist()
        return seq2seq_batch(self.pairs.src.rows(rows), self.pairs.tgt.rows(rows), t.pad_id,
                             t.bos_id, t.eos_id)

    def loss(self, model: Seq2SeqModel, batch: Seq2SeqBatch) -> LossOutput:
        tr = self.recipe.train
        return model.loss(batch, tr.label_smoothing, tr.scheduled_sampling)

    def state_dict(self) -> dict:
        return {}  # nothing carried between batches

    def load_state_dict(self, state: dict) -> None:
        pass

    def validate(self, model: Seq2SeqModel) -> dict[str, float]:
        stats = teacher_forced(model, self.tok, self.valid_src, self.valid_tgt,
                               self.recipe.train.batch_tokens)
        scores = {"val_loss": stats["loss"], "val_ppl": stats["ppl"], "val_acc": stats["acc"]}
        if self.recipe.train.valid_bleu:
            d = self.recipe.decode
            hyps = translate_ids(model, self.tok, self.valid_src, DecodeOptions(
                1, d.length_penalty, d.max_len_ratio, d.batch_size, self.recipe.train.precision))
            e = self.recipe.eval
            scores["val_bleu"] = metrics.bleu(hyps, self.valid.tgt, e.tokenize, e.lowercase).score
        return scores


def teacher_forced(model: Seq2SeqModel, tok: TokenizerPair, src: list[list[int]],
                   tgt: list[list[int]], batch_tokens: int) -> dict[str, float]:
    """Loss (mean NLL per target token, EOS included), perplexity and token accuracy."""
    nll, n, correct = 0.0, 0, 0
    lens = [len(t) for t in tgt]
    device = device_of(model)
    with inference(model):
        for idx in token_batches([max(len(s), 1) for s in src], lens, batch_tokens, 0, 0):
            batch = seq2seq_batch([src[i] or [tok.src.unk_id] for i in idx],
                                  [tgt[i] for i in idx], tok.tgt.pad_id, tok.tgt.bos_id,
                                  tok.tgt.eos_id)
            out = model.loss(to_device(batch, device))
            nll, n, correct = nll + float(out.loss), n + out.n_tokens, correct + out.n_correct
    return {"loss": nll / max(n, 1), "ppl": metrics.perplexity(nll, n),
            "acc": metrics.accuracy(correct, n), "tokens": n}


def translate_ids(model: Seq2SeqModel, tok: TokenizerPair, src: list[list[int]],
                  opts: DecodeOptions) -> list[str]:
    """Source ids -> detokenized target strings, in input order; empty sources give ''."""
    t = tok.tgt

    def decode(src_t: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        if opts.beam_size == 1:
            ids = greedy_decode(model, src_t, lengths, t.bos_id, t.eos_id, opts.max_len_ratio)
        else:
            ids = beam_search(model, src_t, lengths, t.bos_id, t.eos_id, opts.beam_size,
                              opts.length_penalty, opts.max_len_ratio)
        return t.decode(ids)

    return [hyp or "" for hyp in _by_length(model, tok, src, opts, decode)]


def translate_hypotheses(model: Seq2SeqModel, tok: TokenizerPair, src: list[list[int]],
                         opts: DecodeOptions, n_best: int = 1, attention: bool = False
                         ) -> list[list[Hypothesis]]:
    """Source ids -> each sentence's `n_best` best hypotheses (beam search, at beam size 1 too;
    token ids, scores, attention when asked), in input order; empty sources get none."""
    t = tok.tgt

    def decode(src_t: torch.Tensor, lengths: torch.Tensor) -> list[list[Hypothesis]]:
        return beam_hypotheses(model, src_t, lengths, t.bos_id, t.eos_id, opts.beam_size,
                               opts.length_penalty, opts.max_len_ratio, n_best, attention)

    return [hyps or [] for hyps in _by_length(model, tok, src, opts, decode)]


def _by_length(model: Seq2SeqModel, tok: TokenizerPair, src: list[list[int]],
               opts: DecodeOptions, decode: Callable[[torch.Tensor, torch.Tensor], list]
               ) -> list:
    """`decode` (padded source ids (B, S), lengths (B,) -> one result per sentence) over the
    non-empty sources in batches of similar lengths -> results in input order (None for the
    empty ones)."""
    out = [None] * len(src)
    todo = [i for i, s in enumerate(src) if s]
    device = device_of(model)
    with inference(model), runtime.autocast(opts.precision, device):
        for chunk in sorted_chunks([len(src[i]) for i in todo], opts.batch_size):
            rows = [todo[j] for j in chunk]
            src_t, lengths = to_device(pad([src[i] for i in rows], tok.tgt.pad_id), device)
            for i, result in zip(rows, decode(src_t, lengths)):
                out[i] = result
    return out


def translate_lines(model: Seq2SeqModel, tok: TokenizerPair, lines: list[str],
                    opts: DecodeOptions) -> list[str]:
    return translate_ids(model, tok, tok.src.encode(lines), opts)


def score(model: Seq2SeqModel, tok: TokenizerPair, pairs: ParallelText, opts: DecodeOptions,
          recipe: Recipe) -> tuple[dict, list[str]]:
    """BLEU/chrF (sacrebleu, with signatures) of decoded output, plus teacher-forced perplexity."""
    hyps = translate_lines(model, tok, pairs.src, opts)
    e = recipe.eval
    bleu = metrics.bleu(hyps, pairs.tgt, e.tokenize, e.lowercase)
    chrf = metrics.chrf(hyps, pairs.tgt)
    tf = teacher_forced(model, tok, tok.src.encode(pairs.src), tok.tgt.encode(pairs.tgt),
                        recipe.train.batch_tokens)
    result = {
        "data": pairs.origin, "sentences": len(pairs), "beam_size": opts.beam_size,
        "precision": opts.precision,
        "length_penalty": opts.length_penalty, "max_len_ratio": opts.max_len_ratio,
        "bleu": round(bleu.score, 2), "chrf": round(chrf.score, 2), "ppl": round(tf["ppl"], 3),
        "token_accuracy": round(tf["acc"], 4), "bleu_signature": bleu.signature,
        "bleu_detail": bleu.detail, "chrf_signature": chrf.signature,
    }
    return result, hyps

"""Task models with explicit methods (`loss`, `encode`, `decode_step`), and `build_model`, the one
place that maps a recipe's model section to constructors."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lstm_nlp.data.batching import Seq2SeqBatch
from lstm_nlp.nn.decoder import AttentionDecoder, DecoderState, StepWeights, computed
from lstm_nlp.nn.encoder import LSTMEncoder
from lstm_nlp.nn.kernels.matmul import Linear, linear
from lstm_nlp.nn.kernels.output_loss import output_loss
from lstm_nlp.tasks.base import LossOutput
from lstm_nlp.tasks.translate.config import TranslateModelConfig


@dataclass
class Encoded:
    """What decoding carries from step to step (search.py's protocol): the source memory, one
    copy per sentence, and the decoder state, one row per hypothesis: K rows per sentence in
    beam search (rows b*K ... b*K+K-1 are sentence b's), 1 in greedy search."""
    memory: torch.Tensor   # (B, S, M)
    keys: torch.Tensor     # (B, S, Q) attention keys, projected once
    mask: torch.Tensor     # (B, S) True on real source tokens
    state: DecoderState    # rows (B*K, H)
    weights: StepWeights   # the decoder's weights, prepared once per batch (StepWeights)
    output: tuple[torch.Tensor, torch.Tensor]  # the output layer's (V, H), (V,), likewise

    def select(self, sentences: torch.Tensor | None, rows: torch.Tensor) -> "Encoded":
        """Keep `sentences` (B',) of the memory (None: all of them, as they are) and the
        decoder-state `rows` (B'*K',), in their new order."""
        memory, keys, mask = self.memory, self.keys, self.mask
        if sentences is not None:
            memory, keys = memory.index_select(0, sentences), keys.index_select(0, sentences)
            mask = mask.index_select(0, sentences)
        return Encoded(memory, keys, mask, self.state.select(rows), self.weights, self.output)


class Seq2SeqModel(nn.Module):
    """Bidirectional LSTM encoder + attentional LSTM decoder + output layer."""

    def __init__(self, src_vocab: int, tgt_vocab: int, pad_id: int, emb_size: int,
                 hidden_size: int, enc_layers: int, dec_layers: int, bidirectional: bool,
                 attention: str, input_feeding: bool, dropout: float, tie_output: bool,
                 share_embeddings: bool):
        super().__init__()
        self.pad_id = pad_id
        src_embed = nn.Embedding(src_vocab, emb_size, padding_idx=pad_id)
        tgt_embed = src_embed if share_embeddings else \
            nn.Embedding(tgt_vocab, emb_size, padding_idx=pad_id)
        self.encoder = LSTMEncoder(src_embed, hidden_size, enc_layers, bidirectional, dropout)
        self.decoder = AttentionDecoder(tgt_embed, hidden_size, hidden_size, dec_layers,
                                        attention, input_feeding, dropout)
        self.output = Linear(hidden_size, tgt_vocab)
        if tie_output:  # Press & Wolf 2016: one matrix for target embeddings and output layer
            self.output.weight = tgt_embed.weight

    def encode(self, src: torch.Tensor, lengths: torch.Tensor) -> Encoded:
        """src (B, S), lengths (B,) -> the start of decoding: one hypothesis per sentence."""
        memory, keys, mask, state = self._source(src, lengths)
        return Encoded(memory, keys, mask, state, self.decoder.step_weights(),
                       (computed(self.output.weight), computed(self.output.bias)))

    def _source(self, src: torch.Tensor, lengths: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, DecoderState]:
        """Memory (B, S, M), keys (B, S, Q), mask (B, S) and the decoder's initial state."""
        memory, final = self.encoder(src, lengths)
        keys = self.decoder.attention.project_keys(memory)
        where = memory.device.type
        if torch.is_autocast_enabled(where):  # cast once, not at every decoder step
            low = torch.get_autocast_dtype(where)
            memory, keys = memory.to(low), keys.to(low)
        return memory, keys, src != self.pad_id, self.decoder.init_state(final)

    def decode_step(self, prev: torch.Tensor, enc: Encoded) -> tuple[torch.Tensor, Encoded,
                                                                     torch.Tensor]:
        """prev (N,), one token per hypothesis -> log-probabilities (N, V) (float32), the
        advanced state, attention weights (N, S)."""
        out, state, weights = self.decoder.step(prev, enc.state, enc.keys, enc.memory, enc.mask,
                                                enc.weights)
        logits = linear(out, *enc.output).float()                               # (N, V)
        if torch.jit.is_tracing():  # the ONNX export: its exporter has no form for out=
            logp = torch.log_softmax(logits, dim=-1)
        else:
            logp = torch.log_softmax(logits, dim=-1, out=logits)  # in place: one (N, V) pass less
        return logp, Encoded(enc.memory, enc.keys, enc.mask, state, enc.weights,
                             enc.output), weights

    def forward_states(self, src: torch.Tensor, lengths: torch.Tensor,
                       tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: attentional states (B, T, H)."""
        memory, keys, mask, state = self._source(src, lengths)
        return self.decoder(tgt_in, state, keys, memory, mask)

    def loss(self, batch: Seq2SeqBatch, label_smoothing: float = 0.0,
             sampling_ratio: float = 0.0) -> LossOutput:
        tgt_in = batch.tgt_in
        if sampling_ratio > 0.0:
            tgt_in = self._sampled_inputs(batch, sampling_ratio)
        states = self.forward_states(batch.src, batch.src_lengths, tgt_in)     # (B, T, H)
        keep = batch.tgt_out != self.pad_id                                     # (B, T)
        gold = batch.tgt_out[keep]                                              # (N,) no pad rows
        loss, n_correct = output_loss(states[keep], self.output.weight, self.output.bias, gold,
                                      label_smoothing)
        return LossOutput(loss, int(gold.numel()), n_correct)

    @torch.no_grad()
    def _sampled_inputs(self, batch: Seq2SeqBatch, ratio: float) -> torch.Tensor:
        """Parallel scheduled sampling (Duckworth et al. 2019): replace each gold input token with
        the model's own teacher-forced prediction of it, with probability `ratio`."""
        states = self.forward_states(batch.src, batch.src_lengths, batch.tgt_in)
        pred = self.output(states).argmax(-1)                                   # (B, T)
        tgt_in = batch.tgt_in.clone()
        swap = torch.rand(tgt_in[:, 1:].shape, device=tgt_in.device) < ratio
        swap &= batch.tgt_in[:, 1:] != self.pad_id
        tgt_in[:, 1:][swap] = pred[:, :-1][swap]
        return tgt_in


def build_model(cfg: TranslateModelConfig, src_vocab: int, tgt_vocab: int, pad_id: int) -> Seq2SeqModel:
    return Seq2SeqModel(
        src_vocab=src_vocab, tgt_vocab=tgt_vocab, pad_id=pad_id, emb_size=cfg.emb_size,
        hidden_size=cfg.hidden_size, enc_layers=cfg.enc_layers, dec_layers=cfg.dec_layers,
        bidirectional=cfg.bidirectional, attention=cfg.attention,
        input_feeding=cfg.input_feeding, dropout=cfg.dropout, tie_output=cfg.tie_output,
        share_embeddings=cfg.share_embeddings)

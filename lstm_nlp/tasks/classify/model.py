"""Text classifier: embedding -> (bi)LSTM layers -> pooling over time -> head.

The embedding and the LSTM layers are named and shaped as in `LanguageModel` (`embedding`,
`lstms.i`), so that a language model's weights load into them (ULMFiT, Howard & Ruder 2018).
Sequences are time-major and right-padded: ids (T, B) with true lengths (B,).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstm_nlp.nn.kernels.matmul import Linear
from lstm_nlp.nn.regularization import (embedding_dropout, lstm_layer_sizes, sequence_dropout,
                                        weight_dropped_lstm)
from lstm_nlp.tasks.classify.config import ClassifyModelConfig


class Classifier(nn.Module):
    def __init__(self, vocab_size: int, classes: list[str], emb_size: int, hidden_size: int,
                 layers: int, bidirectional: bool, tie_weights: bool, pooling: str,
                 head_hidden: int, dropout: float, dropout_input: float, dropout_hidden: float,
                 dropout_embedding: float, weight_drop: float, locked_dropout: bool,
                 long_text: str, max_tokens: int, chunk_tokens: int):
        super().__init__()
        self.classes = list(classes)  # names, in the order of the outputs
        n_classes = len(classes)
        dirs = 2 if bidirectional else 1
        self.embedding = nn.Embedding(vocab_size, emb_size)
        # The language model's layer sizes: with tying, its last layer has emb_size units.
        sizes = lstm_layer_sizes(emb_size, hidden_size, layers, tie_weights)
        self.lstms = nn.ModuleList(
            nn.LSTM(sizes[i] * (dirs if i else 1), sizes[i + 1], bidirectional=bidirectional)
            for i in range(layers))
        features = sizes[-1] * dirs
        self.attention = Linear(features, 1) if pooling == "attention" else None
        pooled = features * 3 if pooling == "concat" else features
        if head_hidden:  # ULMFiT's head: one hidden layer with batch norm
            self.head = nn.Sequential(nn.Dropout(dropout), Linear(pooled, head_hidden),
                                      nn.ReLU(), nn.BatchNorm1d(head_hidden),
                                      nn.Dropout(dropout / 2), Linear(head_hidden, n_classes))
        else:
            self.head = nn.Sequential(nn.Dropout(dropout), Linear(pooled, n_classes))
        self.bidirectional, self.pooling, self.locked = bidirectional, pooling, locked_dropout
        self.p_in, self.p_hidden = dropout_input, dropout_hidden
        self.p_embedding, self.p_weight = dropout_embedding, weight_drop
        self.long_text, self.max_tokens, self.chunk_tokens = long_text, max_tokens, chunk_tokens

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Input side to output side: embedding, each LSTM layer, pooling + head."""
        top = list(self.head.parameters())
        if self.attention is not None:
            top += list(self.attention.parameters())
        return [list(self.embedding.parameters())] + \
            [list(lstm.parameters()) for lstm in self.lstms] + [top]

    def _drop(self, x: torch.Tensor, p: float) -> torch.Tensor:
        return sequence_dropout(x, p, self.training, self.locked)

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor, state=None
               ) -> tuple[torch.Tensor, list]:
        """ids (T, B) -> last layer outputs (T, B, F) (garbage after each length), final states.
        Unidirectional layers run on the padded batch (padding only follows the text, so it
        cannot reach the outputs that count); bidirectional ones need packing."""
        weight = embedding_dropout(self.embedding.weight, self.p_embedding, self.training)
        x = self._drop(nn.functional.embedding(ids, weight), self.p_in)         # (T, B, E)
        states = []
        for i, lstm in enumerate(self.lstms):
            layer_state = state[i] if state is not None else None
            if self.bidirectional:
                packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
                out, layer_state = weight_dropped_lstm(lstm, packed, None, self.p_weight,
                                                       self.training)
                x, _ = pad_packed_sequence(out, total_length=ids.size(0))        # (T, B, 2H)
            else:
                x, layer_state = weight_dropped_lstm(lstm, x, layer_state, self.p_weight,
                                                     self.training)              # (T, B, H)
            states.append(layer_state)
            if i < len(self.lstms) - 1:
                x = self._drop(x, self.p_hidden)
        return x, states

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (T, B), lengths (B,) -> logits (B, C)."""
        return self.head(self._pool(*self.read(ids, lengths)))

    def read(self, ids: torch.Tensor, lengths: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What the pooling sees: the LSTM outputs out (T', B, F) of the last T' positions
        (chunked reading of a long text leaves out the chunks before its last max_tokens), the
        mask of the positions to pool (T', B) and each text's last position in out (B,)."""
        if self.long_text == "chunk" and ids.size(0) > self.max_tokens:
            out, start = self._encode_chunks(ids, lengths)
        else:
            out, _ = self.encode(ids, lengths)
            start = 0
        T = out.size(0)
        pos = torch.arange(start, start + T, device=ids.device).unsqueeze(1)       # (T, 1)
        first = (lengths - self.max_tokens).clamp(min=0).unsqueeze(0)             # (1, B)
        mask = (pos < lengths.unsqueeze(0)) & (pos >= first)                       # (T, B)
        return out, mask, lengths - 1 - start

    def attention_weights(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Attention pooling's weights (T, B) over the positions of ids (T, B): the share of
        each position in the pooled features (0 where nothing is pooled)."""
        out, mask, _ = self.read(ids, lengths)
        weights = self._attend(out, mask)                                           # (T', B)
        return nn.functional.pad(weights, (0, 0, ids.size(0) - weights.size(0), 0))  # (T, B)

    def _attend(self, out: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """out (T, B, F), mask (T, B) -> attention weights (T, B), summing to 1 per text."""
        scores = self.attention(out).squeeze(2).masked_fill(~mask, float("-inf"))  # (T, B)
        return scores.softmax(0)

    def _encode_chunks(self, ids: torch.Tensor, lengths: torch.Tensor
                       ) -> tuple[torch.Tensor, int]:
        """BPT3C (Howard & Ruder 2018): read the text in chunks, carrying the state; chunks that
        end before the last max_tokens tokens of every text run without gradient."""
        keep_from = int((lengths - self.max_tokens).clamp(min=0).min())
        start = keep_from - keep_from % self.chunk_tokens
        state = None
        if start:
            with torch.no_grad():
                for s in range(0, start, self.chunk_tokens):
                    _, state = self.encode(ids[s: s + self.chunk_tokens], lengths, state)
            state = [(h.detach(), c.detach()) for h, c in state]
        outs = []
        for s in range(start, ids.size(0), self.chunk_tokens):
            out, state = self.encode(ids[s: s + self.chunk_tokens], lengths, state)
            outs.append(out)
        return torch.cat(outs), start

    def _pool(self, out: torch.Tensor, mask: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """out (T, B, F), mask (T, B) of the positions to pool, last (B,) index of each text's
        last token in `out` -> (B, F) or (B, 3F) for concat."""
        rows = torch.arange(out.size(1), device=out.device)                        # (B,)

        def final() -> torch.Tensor:                                               # (B, F)
            if self.bidirectional:  # the forward direction's end, the backward one's start
                half = out.size(2) // 2
                return torch.cat([out[last, rows, :half], out[0, :, half:]], 1)
            return out[last, rows]

        def maxed() -> torch.Tensor:                                               # (B, F)
            return out.masked_fill(~mask.unsqueeze(2), float("-inf")).max(0).values

        def mean() -> torch.Tensor:                                                # (B, F)
            m = mask.unsqueeze(2).to(out.dtype)                                    # (T, B, 1)
            return (out * m).sum(0) / m.sum(0).clamp(min=1)

        if self.pooling == "attention":
            return (self._attend(out, mask).unsqueeze(2) * out).sum(0)
        if self.pooling == "concat":  # ULMFiT: [last, max, mean]
            return torch.cat([final(), maxed(), mean()], 1)
        return {"last": final, "max": maxed, "mean": mean}[self.pooling]()


def build_classifier(cfg: ClassifyModelConfig, vocab_size: int, classes: list[str]
                     ) -> Classifier:
    return Classifier(
        vocab_size=vocab_size, classes=classes, emb_size=cfg.emb_size,
        hidden_size=cfg.hidden_size, layers=cfg.layers, bidirectional=cfg.bidirectional,
        tie_weights=cfg.tie_weights, pooling=cfg.pooling, head_hidden=cfg.head_hidden,
        dropout=cfg.dropout, dropout_input=cfg.dropout_input, dropout_hidden=cfg.dropout_hidden,
        dropout_embedding=cfg.dropout_embedding, weight_drop=cfg.weight_drop,
        locked_dropout=cfg.locked_dropout, long_text=cfg.long_text, max_tokens=cfg.max_tokens,
        chunk_tokens=cfg.chunk_tokens)

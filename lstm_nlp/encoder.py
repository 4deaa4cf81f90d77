"""LSTM encoder: embeddings -> multi-layer (bi)LSTM over packed sequences (no compute on padding)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class LSTMEncoder(nn.Module):
    """Shapes: B batch, S source length, E embedding size, H hidden size (both directions)."""

    def __init__(self, embed: nn.Embedding, hidden_size: int, num_layers: int,
                 bidirectional: bool, dropout: float):
        super().__init__()
        self.embed = embed
        self.dropout = nn.Dropout(dropout)
        self.num_dirs = 2 if bidirectional else 1
        self.rnn = nn.LSTM(embed.embedding_dim, hidden_size // self.num_dirs, num_layers,
                           batch_first=True, bidirectional=bidirectional,
                           dropout=dropout if num_layers > 1 else 0.0)
        self.hidden_size = hidden_size

    def forward(self, src: torch.Tensor, lengths: torch.Tensor
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """src (B, S), lengths (B,) -> memory (B, S, H), final (h, c) of the top layer, each (B, H)."""
        emb = self.dropout(self.embed(src))                                     # (B, S, E)
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h, c) = self.rnn(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        return memory, (self._top(h), self._top(c))                             # (B, S, H)

    def _top(self, state: torch.Tensor) -> torch.Tensor:
        """(layers * dirs, B, H/dirs) -> (B, H): the top layer, directions side by side."""
        top = state[-self.num_dirs:]                                            # (dirs, B, H/dirs)
        return top.transpose(0, 1).reshape(state.size(1), self.hidden_size)     # (B, H)

"""Stateless attention: the caller passes the (projected) keys in; nothing is cached on the module.

    Luong et al. 2015 "dot":      score(q, m) = q . m
    Luong et al. 2015 "general":  score(q, m) = q . (W m)             keys = W m
    Bahdanau et al. 2015 (additive, "concat"/"mlp"):
                                  score(q, m) = v . tanh(U q + W m)    keys = W m

The query is the current decoder state (Luong-style decoder), as in OpenNMT's "mlp" attention.
Weights are softmax(score) over the real source positions: exactly 0 on padding.
"""

from __future__ import annotations

import torch
from torch import nn

from lstm_nlp.nn.kernels.matmul import Linear


class Attention(nn.Module):
    def __init__(self, kind: str, query_size: int, memory_size: int):
        super().__init__()
        if kind not in ("dot", "general", "bahdanau"):
            raise ValueError(f"unknown attention {kind!r}")
        if kind == "dot" and query_size != memory_size:
            raise ValueError("dot attention needs query_size == memory_size")
        self.kind = kind
        if kind == "general":
            self.key_proj = Linear(memory_size, query_size, bias=False)
        elif kind == "bahdanau":
            self.key_proj = Linear(memory_size, query_size, bias=False)
            self.query_proj = Linear(query_size, query_size, bias=True)
            self.v = Linear(query_size, 1, bias=False)

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        """memory (B, S, M) -> keys (B, S, Q); computed once per source batch."""
        return memory if self.kind == "dot" else self.key_proj(memory)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, T, Q) or (B, Q); keys (B, S, Q); memory (B, S, M); mask (B, S) True on real
        tokens -> context (B, T, M) or (B, M), weights (B, T, S) or (B, S)."""
        single = query.dim() == 2
        if single:
            query = query.unsqueeze(1)                                          # (B, 1, Q)
        if self.kind == "bahdanau":
            q = self.query_proj(query)                                          # (B, T, Q)
            scores = self.v(torch.tanh(q.unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)  # (B,T,S)
        else:
            scores = torch.bmm(query, keys.transpose(1, 2))                     # (B, T, S)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)                                 # (B, T, S)
        context = torch.bmm(weights.to(memory.dtype), memory)                   # (B, T, M)
        if single:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights

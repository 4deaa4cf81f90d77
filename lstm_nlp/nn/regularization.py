"""The AWD-LSTM regularisers (Merity et al. 2017, "Regularizing and Optimizing LSTM Language
Models"), each a no-op in eval mode or with p = 0:

- locked (variational) dropout: one mask per sequence, shared by all time steps (Gal &
  Ghahramani 2016);
- embedding dropout: drops whole words, i.e. rows of the embedding matrix;
- weight drop (DropConnect) on the hidden-to-hidden matrix of an `nn.LSTM`, applied to the weight
  before the call, so the fused LSTM kernel still runs;
- activation regularisation (AR) and temporal activation regularisation (TAR).

Masks come from random bytes on the CPU (`keep_mask`), from torch's own dropout elsewhere.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lstm_nlp.nn.kernels import use_cpu_kernels


def keep_mask(shape: tuple[int, ...], p: float, dtype: torch.dtype = torch.float32
              ) -> torch.Tensor:
    """Inverted-dropout mask: 0 with probability p, else 1 / (1 - p).

    Drawn from random bytes (7 per int64 draw), so p is rounded to a multiple of 1/256; about
    10x faster than `bernoulli_` here, which matters for masks the size of a weight matrix."""
    n = math.prod(shape)
    words = torch.empty((n + 6) // 7, dtype=torch.int64).random_()           # 63 random bits
    random_bytes = words.view(torch.uint8).view(-1, 8)[:, :7].reshape(-1)[:n]  # uniform 0..255
    threshold = round(p * 256)
    scale = 256.0 / (256 - threshold)
    return (random_bytes >= threshold).view(shape).to(dtype) * scale


def dropout_mask(shape: tuple[int, ...], p: float, like: torch.Tensor) -> torch.Tensor:
    """An inverted-dropout mask of `like`'s type on its device: `keep_mask` on the CPU, torch's
    bernoulli elsewhere."""
    if use_cpu_kernels(like):
        return keep_mask(shape, p, like.dtype)
    return torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(1 - p).div_(1 - p)


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """x (T, B, H): one mask (1, B, H) for every time step of each sequence."""
    if not training or p == 0.0:
        return x
    return x * dropout_mask((1, x.size(1), x.size(2)), p, x)


def embedding_dropout(weight: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Drop whole words: rows of the (V, E) embedding matrix, the same for every occurrence."""
    if not training or p == 0.0:
        return weight
    return weight * dropout_mask((weight.size(0), 1), p, weight)


def weight_dropped_lstm(lstm: nn.LSTM, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor],
                        p: float, training: bool):
    """Run a one-layer `nn.LSTM` with DropConnect on weight_hh_l0: the dropped matrix is passed in
    place of the parameter (gradients reach the parameter through the mask)."""
    if not training or p == 0.0:
        return lstm(x, state)
    weight = lstm.weight_hh_l0
    dropped = weight * dropout_mask(tuple(weight.shape), p, weight)
    return functional_call(lstm, {"weight_hh_l0": dropped}, (x, state))


def activation_penalty(dropped_out: torch.Tensor, raw_out: torch.Tensor, alpha: float,
                       beta: float) -> torch.Tensor | None:
    """AR: alpha * mean(h_t^2) on the dropped output of the last layer; TAR: beta *
    mean((h_t - h_{t-1})^2) on its output before dropout. Both (T, B, H)."""
    penalty = None
    if alpha:
        penalty = alpha * dropped_out.float().pow(2).mean()
    if beta and raw_out.size(0) > 1:
        tar = beta * (raw_out[1:] - raw_out[:-1]).float().pow(2).mean()
        penalty = tar if penalty is None else penalty + tar
    return penalty


def sequence_dropout(x: torch.Tensor, p: float, training: bool, locked: bool) -> torch.Tensor:
    """Dropout on (T, B, F) activations: one mask per sequence (locked) or per element."""
    if locked:
        return locked_dropout(x, p, training)
    return standard_dropout(x, p, training)


def lstm_layer_sizes(emb_size: int, hidden_size: int, layers: int, tie_weights: bool
                     ) -> list[int]:
    """Input size of the first layer, then each layer's output size. With weight tying the
    last layer has emb_size units so that its output meets the embeddings (Press & Wolf
    2016); a classifier that takes a language model's layers mirrors them."""
    return [emb_size] + [hidden_size] * (layers - 1) + [emb_size if tie_weights else hidden_size]


def standard_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout with a fresh mask per element (Zaremba et al. 2014), from the same fast masks on
    the CPU; torch's fused dropout elsewhere."""
    if not training or p == 0.0:
        return x
    if not use_cpu_kernels(x):
        return F.dropout(x, p, training=True)
    return x * keep_mask(tuple(x.shape), p, x.dtype)


class Dropout(nn.Dropout):
    """`nn.Dropout` with masks from `keep_mask` on the CPU (p rounded to a multiple of 1/256),
    5-10x faster there for activation-sized tensors; torch's own dropout elsewhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return standard_dropout(x, self.p, self.training)

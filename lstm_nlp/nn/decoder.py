"""LSTM decoder with attention (Luong et al. 2015), optionally with input feeding.

Per target step t (H hidden size, M memory size):
    h_t        = LSTM([emb(y_{t-1}); ~h_{t-1}], h_{t-1})     # ~h_{t-1} only with input feeding
    c_t, a_t   = attention(h_t, keys, memory, mask)
    ~h_t       = dropout(tanh(W_c [c_t; h_t]))                # the "attentional" state, fed to the
                                                              # output layer (and to step t+1)
Without input feeding the LSTM runs over the whole target at once (nn.LSTM) and attention is one
batched product. With it, step t needs ~h_{t-1}, so training loops over time; the embedding part
of the first layer's gates is still computed for all steps in one matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lstm_nlp.nn.attention import Attention
from lstm_nlp.nn.kernels import use_cpu_kernels
from lstm_nlp.nn.kernels.fused_decoder import input_feeding_recurrence
from lstm_nlp.nn.kernels.matmul import Linear, linear
from lstm_nlp.nn.regularization import Dropout


@dataclass
class DecoderState:
    h: list[torch.Tensor]   # per layer (B, H)
    c: list[torch.Tensor]   # per layer (B, H)
    feed: torch.Tensor      # (B, H) previous attentional state (zeros at t=0)

    def select(self, index: torch.Tensor) -> "DecoderState":
        """Reorder/repeat rows (beam search)."""
        return DecoderState([x.index_select(0, index) for x in self.h],
                            [x.index_select(0, index) for x in self.c],
                            self.feed.index_select(0, index))


LayerWeights = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # w_in (4H, H), w_hh (4H, H), bias


@dataclass
class StepWeights:
    """The weights of an inference step, made once per search in the dtype of its arithmetic.
    Why: under inference mode autocast casts a weight again at every use (its cache of casts
    serves autograd only), and layer 0's weights are split and joined for input feeding; at 200
    sentences a step those copies took a quarter of greedy decoding's time. Layer weights are
    None without input feeding (nn.LSTM holds its own)."""
    w_comb: torch.Tensor                 # (H, M + H) the attentional layer
    w_emb: torch.Tensor | None           # (4H, E) the embedding's share of layer 0's gates
    b_emb: torch.Tensor | None           # (4H,) layer 0's bias
    w_rec0: torch.Tensor | None          # (4H, 2H) layer 0's share over [feed; h]
    upper: list[LayerWeights] | None     # layers 1.. of the decoder


def computed(weight: torch.Tensor) -> torch.Tensor:
    """`weight` in the dtype autocast computes products in here (as it is outside autocast)."""
    where = weight.device.type
    if torch.is_autocast_enabled(where):
        return weight.to(torch.get_autocast_dtype(where))
    return weight


class AttentionDecoder(nn.Module):
    def __init__(self, embed: nn.Embedding, hidden_size: int, memory_size: int, num_layers: int,
                 attention: str, input_feeding: bool, dropout: float):
        super().__init__()
        self.embed = embed
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.input_feeding = input_feeding
        E, H = embed.embedding_dim, hidden_size
        if input_feeding:
            # Gate order [i, f, o, g]: one sigmoid over 3H, one tanh over H.
            sizes = [E + H] + [H] * (num_layers - 1)
            self.w_in = nn.ParameterList([nn.Parameter(torch.empty(4 * H, n)) for n in sizes])
            self.w_hh = nn.ParameterList([nn.Parameter(torch.empty(4 * H, H))
                                          for _ in range(num_layers)])
            self.bias = nn.ParameterList([nn.Parameter(torch.empty(4 * H))
                                          for _ in range(num_layers)])
            bound = H ** -0.5  # as nn.LSTM
            for p in [*self.w_in, *self.w_hh, *self.bias]:
                nn.init.uniform_(p, -bound, bound)
        else:
            self.rnn = nn.LSTM(E, H, num_layers, batch_first=True,
                               dropout=dropout if num_layers > 1 else 0.0)
        self.attention = Attention(attention, H, memory_size)
        self.combine = Linear(memory_size + H, H, bias=False)
        self.dropout = Dropout(dropout)
        # the input-feeding loop with a hand-written backward (fused_decoder.py), on the CPU
        self.fused = True

    def init_state(self, final: tuple[torch.Tensor, torch.Tensor]) -> DecoderState:
        """Every decoder layer starts from the encoder's final top-layer state (B, H)."""
        h, c = final
        return DecoderState([h] * self.num_layers, [c] * self.num_layers, torch.zeros_like(h))

    def forward(self, tgt_in: torch.Tensor, state: DecoderState, keys: torch.Tensor,
                memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: tgt_in (B, T) -> attentional states (B, T, H)."""
        emb = self.dropout(self.embed(tgt_in))                                  # (B, T, E)
        if not self.input_feeding:
            out, _ = self.rnn(emb, (torch.stack(state.h), torch.stack(state.c)))  # (B, T, H)
            context, _ = self.attention(out, keys, memory, mask)                # (B, T, M)
            return self.dropout(torch.tanh(self.combine(torch.cat([context, out], -1))))
        E = emb.size(-1)
        w_emb, w_feed = self.w_in[0].split([E, self.hidden_size], dim=1)
        w_rec0 = torch.cat([w_feed, self.w_hh[0]], dim=1)                       # (4H, 2H)
        fusable = self.num_layers == 1 and self.attention.kind != "bahdanau"
        if self.fused and fusable and use_cpu_kernels(emb):
            x_gates = linear(emb.transpose(0, 1), w_emb, self.bias[0])          # (T, B, 4H)
            return input_feeding_recurrence(x_gates, state.h[0], state.c[0], w_rec0, keys, memory,
                                            self.combine.weight, mask,
                                            self.dropout.p if self.training else 0.0)
        x_gates = linear(emb, w_emb, self.bias[0])                              # (B, T, 4H)
        where = x_gates.device.type
        if torch.is_autocast_enabled(where):  # cast once here, not in every step: autocast
            w_rec0 = w_rec0.to(torch.get_autocast_dtype(where))  # caches leaf casts only
        upper = [(self.w_in[n], self.w_hh[n], self.bias[n]) for n in range(1, self.num_layers)]
        outs = []
        for x_t in x_gates.unbind(1):  # unbind, not x_gates[:, t]: one gradient copy, not T
            state, _ = self._step(x_t, state, w_rec0, upper, self.combine.weight, keys, memory,
                                  mask)
            outs.append(state.feed)
        return torch.stack(outs, dim=1)                                         # (B, T, H)

    def step_weights(self) -> StepWeights:
        """The weights of `step`, for a whole search (see StepWeights)."""
        w_comb = computed(self.combine.weight)
        if not self.input_feeding:
            return StepWeights(w_comb, None, None, None, None)
        w_emb, w_feed = self.w_in[0].split([self.embed.embedding_dim, self.hidden_size], dim=1)
        upper = [(computed(self.w_in[n]), computed(self.w_hh[n]), computed(self.bias[n]))
                 for n in range(1, self.num_layers)]
        return StepWeights(w_comb, computed(w_emb.contiguous()), computed(self.bias[0]),
                           computed(torch.cat([w_feed, self.w_hh[0]], dim=1)), upper)

    def step(self, prev: torch.Tensor, state: DecoderState, keys: torch.Tensor,
             memory: torch.Tensor, mask: torch.Tensor, weights: StepWeights
             ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One step of inference for N = B*K hypotheses, K per sentence (rows b*K ... b*K+K-1
        are sentence b's): prev (N,), state rows (N, H), keys (B, S, Q), memory (B, S, M), mask
        (B, S), `weights` from `step_weights` -> attentional state (N, H), new state, attention
        weights (N, S). The K hypotheses of a sentence attend to its one copy of the memory."""
        emb = self.embed(prev)                                                  # (N, E)
        if not self.input_feeding:
            h0, c0 = torch.stack(state.h), torch.stack(state.c)
            out, (h, c) = self.rnn(emb.unsqueeze(1), (h0, c0))                  # (N, 1, H)
            out = out.squeeze(1)
            context, att = _attend(self.attention, out, keys, memory, mask)
            feed = torch.tanh(linear(torch.cat([context, out], -1), weights.w_comb))
            return feed, DecoderState(list(h.unbind(0)), list(c.unbind(0)), feed), att
        state, att = self._step(linear(emb, weights.w_emb, weights.b_emb), state,
                                weights.w_rec0, weights.upper, weights.w_comb, keys, memory,
                                mask)
        return state.feed, state, att

    def _step(self, x_gates: torch.Tensor, state: DecoderState, w_rec0: torch.Tensor,
              upper: list[LayerWeights], w_comb: torch.Tensor,
              keys: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
              ) -> tuple[DecoderState, torch.Tensor]:
        """Input-feeding step: x_gates (N, 4H) is the embedding's share of layer 0's gates;
        `upper` holds the weights of layers 1.. (w_in, w_hh, bias). N rows, N/B per sentence of
        the memory (B, S, M): 1 in training, K in beam search."""
        gates = x_gates + linear(torch.cat([state.feed, state.h[0]], 1), w_rec0)   # (N, 4H)
        h, c = _lstm_cell(gates, state.c[0])
        hs, cs = [h], [c]
        for layer, (w_in, w_hh, bias) in enumerate(upper, start=1):
            gates = linear(self.dropout(h), w_in, bias) + linear(state.h[layer], w_hh)
            h, c = _lstm_cell(gates, state.c[layer])
            hs.append(h)
            cs.append(c)
        context, weights = _attend(self.attention, h, keys, memory, mask)      # (N, M), (N, S)
        feed = self.dropout(torch.tanh(linear(torch.cat([context, h], 1), w_comb)))  # (N, H)
        return DecoderState(hs, cs, feed), weights


def _attend(attention: Attention, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor,
            mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """query (N, Q), N = B*K rows, K per sentence -> context (N, M), weights (N, S).

    The k-th hypotheses of all sentences attend together, one call per k, against the one copy
    of each sentence's memory. One (K, Q) x (Q, S) product per sentence would round differently
    (bf16 products of one row and of K rows sum in another order: 1 value in 50,000 moves by a
    unit, which changed 2% of a test set's beam-5 outputs), and output must not depend on how
    many hypotheses share a sentence."""
    B = keys.size(0)
    K = query.size(0) // B
    if K == 1:
        return attention(query, keys, memory, mask)
    per_sentence = query.view(B, K, -1)                                         # (B, K, Q)
    parts = [attention(per_sentence[:, k], keys, memory, mask) for k in range(K)]
    context = torch.stack([c for c, _ in parts], dim=1)                         # (B, K, M)
    weights = torch.stack([w for _, w in parts], dim=1)                         # (B, K, S)
    return context.view(query.size(0), -1), weights.view(query.size(0), -1)     # (N, M), (N, S)


def _lstm_cell(gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """gates (B, 4H) in order [i, f, o, g] -> (h, c)."""
    H = c.size(1)
    ifo = torch.sigmoid(gates[:, : 3 * H])
    g = torch.tanh(gates[:, 3 * H:])
    c = ifo[:, H: 2 * H] * c + ifo[:, :H] * g
    h = ifo[:, 2 * H:] * torch.tanh(c)
    return h, c

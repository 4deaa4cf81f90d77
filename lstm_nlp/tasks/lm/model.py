"""LSTM language model: embedding -> stacked LSTM -> output layer (Zaremba et al. 2014), with
weight tying (Press & Wolf 2016; Inan et al. 2016) and the AWD-LSTM regularisers (Merity et al.
2017) as switches. Sequences are time-major, as in the classic batchify: ids (T, B)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from lstm_nlp.data.batching import pad
from lstm_nlp.data.tokenizer import PAD_ID
from lstm_nlp.nn.kernels.matmul import Linear
from lstm_nlp.nn.kernels.output_loss import output_loss
from lstm_nlp.nn.regularization import (activation_penalty, embedding_dropout, lstm_layer_sizes,
                                        sequence_dropout, weight_dropped_lstm)
from lstm_nlp.tasks.base import LossOutput
from lstm_nlp.tasks.lm.config import LMModelConfig

State = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: h (1, B, H_l), c (1, B, H_l)


class LanguageModel(nn.Module):
    def __init__(self, vocab_size: int, emb_size: int, hidden_size: int, layers: int,
                 tie_weights: bool, init_range: float, locked_dropout: bool, dropout: float,
                 dropout_input: float, dropout_hidden: float, dropout_embedding: float,
                 weight_drop: float):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_size)
        sizes = lstm_layer_sizes(emb_size, hidden_size, layers, tie_weights)
        self.lstms = nn.ModuleList(nn.LSTM(sizes[i], sizes[i + 1]) for i in range(layers))
        self.output = Linear(sizes[-1], vocab_size)
        if init_range:  # Zaremba et al.: every parameter uniform in [-r, r]
            for p in self.parameters():
                nn.init.uniform_(p, -init_range, init_range)
        if tie_weights:  # Press & Wolf 2016: one (V, E) matrix for input and output
            self.output.weight = self.embedding.weight
        self.locked = locked_dropout
        self.p_out, self.p_in, self.p_hidden = dropout, dropout_input, dropout_hidden
        self.p_embedding, self.p_weight = dropout_embedding, weight_drop

    def init_state(self, batch_size: int) -> State:
        """Zeros on the model's device: the state at the start of a text."""
        device = self.embedding.weight.device
        return [(torch.zeros(1, batch_size, lstm.hidden_size, device=device),
                 torch.zeros(1, batch_size, lstm.hidden_size, device=device))
                for lstm in self.lstms]

    def _drop(self, x: torch.Tensor, p: float) -> torch.Tensor:
        return sequence_dropout(x, p, self.training, self.locked)

    def forward(self, ids: torch.Tensor, state: State
                ) -> tuple[torch.Tensor, State, torch.Tensor]:
        """ids (T, B) -> dropped last-layer outputs (T, B, E), new state, raw outputs (T, B, E)."""
        weight = embedding_dropout(self.embedding.weight, self.p_embedding, self.training)
        x = self._drop(nn.functional.embedding(ids, weight), self.p_in)          # (T, B, E)
        new_state = []
        raw = x
        for i, lstm in enumerate(self.lstms):
            raw, layer_state = weight_dropped_lstm(lstm, x, state[i], self.p_weight,
                                                   self.training)                # (T, B, H_i)
            new_state.append(layer_state)
            last = i == len(self.lstms) - 1
            x = self._drop(raw, self.p_out if last else self.p_hidden)
        return x, new_state, raw

    def loss(self, inputs: torch.Tensor, targets: torch.Tensor, state: State,
             ar_alpha: float = 0.0, tar_beta: float = 0.0) -> tuple[LossOutput, State]:
        """inputs, targets (T, B) -> summed NLL over the T*B targets (+ AR/TAR penalty), state."""
        out, state, raw = self(inputs, state)
        h = out.reshape(-1, out.size(-1))                                         # (T*B, E)
        gold = targets.reshape(-1)                                                # (T*B,)
        loss, n_correct = output_loss(h, self.output.weight, self.output.bias, gold)
        penalty = activation_penalty(out, raw, ar_alpha, tar_beta) if self.training else None
        return LossOutput(loss, gold.numel(), n_correct, penalty=penalty), state

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.output(h).float()

    def prime(self, seqs: list[list[int]]) -> tuple[torch.Tensor, State]:
        """Run prompts of different lengths (each non-empty) in one packed batch (eval mode):
        -> logits (B, V) for the token after each prompt, and the state after it."""
        ids, lengths = pad(seqs, PAD_ID)                                         # (B, T)
        ids = ids.to(self.embedding.weight.device)  # lengths stay on the CPU, where packing reads
        x = pack_padded_sequence(self.embedding(ids.t()), lengths, enforce_sorted=False)
        state = []
        for lstm in self.lstms:
            x, layer_state = lstm(x)          # packed in, packed out; h_n at each true end
            state.append(layer_state)
        return self.logits(state[-1][0][0]), state                                # (B, V)

    def step(self, ids: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """ids (B,) -> logits (B, V) for the next token, new state (eval mode)."""
        out, state, _ = self(ids.unsqueeze(0), state)
        return self.logits(out[0]), state


def build_lm(cfg: LMModelConfig, vocab_size: int) -> LanguageModel:
    return LanguageModel(
        vocab_size=vocab_size, emb_size=cfg.emb_size, hidden_size=cfg.hidden_size,
        layers=cfg.layers, tie_weights=cfg.tie_weights, init_range=cfg.init_range,
        locked_dropout=cfg.locked_dropout, dropout=cfg.dropout, dropout_input=cfg.dropout_input,
        dropout_hidden=cfg.dropout_hidden, dropout_embedding=cfg.dropout_embedding,
        weight_drop=cfg.weight_drop)


def detach(state: State) -> State:
    """Truncated BPTT: keep the values, cut the graph (pytorch/examples' repackage_hidden)."""
    return [(h.detach(), c.detach()) for h, c in state]

"""The gates of a translation model's LSTMs (nn/gates.py recomputes them from the weights): every
encoder layer and direction over the source, every decoder layer over the target it is fed by
teacher forcing: the reference for validation text, the model's own greedy translation for text
given to `lstm-nlp inspect`."""

from __future__ import annotations

import torch

from lstm_nlp.data.tokenizer import TokenizerPair
from lstm_nlp.nn.gates import DECODER, GateTrace, LayerTrace, cell, nn_lstm
from lstm_nlp.tasks.translate.config import TranslateRecipe
from lstm_nlp.tasks.translate.model import Seq2SeqModel
from lstm_nlp.tasks.translate.task import DecodeOptions, TranslationTask, translate_ids
from lstm_nlp.training.devices import device_of


def from_validation(model: Seq2SeqModel, task: TranslationTask, n: int) -> list[LayerTrace]:
    """The first `n` validation pairs with a source, the decoder fed their references."""
    pairs = [(s, t) for s, t in zip(task.valid_src, task.valid_tgt) if s][:n]
    return [trace for src, tgt in pairs for trace in traces(model, task.tok, src, tgt)]


def from_text(model: Seq2SeqModel, tok: TokenizerPair, recipe: TranslateRecipe,
              lines: list[str]) -> list[LayerTrace]:
    """Source lines; the decoder is fed the model's greedy translation of each."""
    src = [ids for ids in tok.src.encode(lines) if ids]
    d = recipe.decode
    hyps = translate_ids(model, tok, src, DecodeOptions(1, d.length_penalty, d.max_len_ratio,
                                                         d.batch_size))
    return [trace for s, tgt in zip(src, tok.tgt.encode(hyps))
            for trace in traces(model, tok, s, tgt)]


@torch.inference_mode()
def traces(model: Seq2SeqModel, tok: TokenizerPair, src: list[int], tgt: list[int]
           ) -> list[LayerTrace]:
    """One sentence pair (ids without BOS/EOS; src not empty): the encoder's layers and
    directions, then the decoder's layers, whose steps read BOS and the target tokens."""
    device = device_of(model)
    encoder, decoder = model.encoder, model.decoder
    src_t = torch.tensor(src, device=device)                                    # (S,)
    memory, enc = nn_lstm(encoder.rnn, encoder.embed(src_t), "encoder",
                          tok.src.id_to_piece(src))                             # (S, H)
    h0, c0 = _final(enc, encoder.rnn)                                           # (H,) each
    tgt_in = [tok.tgt.bos_id] + tgt
    tokens = tok.tgt.id_to_piece(tgt_in)
    emb = decoder.embed(torch.tensor(tgt_in, device=device))                    # (T, E)
    layers = decoder.num_layers
    if not decoder.input_feeding:
        state = (h0.expand(layers, -1), c0.expand(layers, -1))                  # (L, H)
        return enc + nn_lstm(decoder.rnn, emb, "decoder", tokens, state)[1]
    return enc + _input_feeding(model, memory, emb, h0, c0, tokens)


def _final(enc: list[LayerTrace], rnn: torch.nn.LSTM) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder's initial state: the encoder's top layer at the end of its reading, the
    forward direction's last step and the backward direction's first, side by side (as
    LSTMEncoder._top gives it)."""
    top = [t.trace for t in enc[-(2 if rnn.bidirectional else 1):]]
    ends = [top[0].hidden[-1], top[0].cell[-1]]
    if rnn.bidirectional:
        return (torch.cat([ends[0], top[1].hidden[0]]), torch.cat([ends[1], top[1].cell[0]]))
    return ends[0], ends[1]


def _input_feeding(model: Seq2SeqModel, memory: torch.Tensor, emb: torch.Tensor,
                   h0: torch.Tensor, c0: torch.Tensor, tokens: list[str]) -> list[LayerTrace]:
    """The input-feeding decoder step by step from its fused weights (layout i, f, o, g): layer
    0 reads [embedding; previous attentional state], each layer above the one below it."""
    dec = model.decoder
    memory = memory.unsqueeze(0)                                                # (1, S, M)
    keys = dec.attention.project_keys(memory)                                   # (1, S, Q)
    mask = torch.ones(memory.shape[:2], dtype=torch.bool, device=memory.device)  # (1, S)
    h, c = [h0] * dec.num_layers, [c0] * dec.num_layers
    feed = torch.zeros_like(h0)                                                 # (H,)
    steps: list[list[tuple[torch.Tensor, ...]]] = [[] for _ in range(dec.num_layers)]
    for e in emb:                                                               # e (E,)
        x = torch.cat([e, feed])
        for layer in range(dec.num_layers):
            pre = dec.w_in[layer] @ x + dec.bias[layer] + dec.w_hh[layer] @ h[layer]  # (4H,)
            *gates, c[layer], h[layer] = cell(pre, c[layer], DECODER)
            steps[layer].append((*gates, c[layer], h[layer]))
            x = h[layer]
        context, _ = dec.attention(x.unsqueeze(0), keys, memory, mask)           # (1, M)
        feed = torch.tanh(dec.combine(torch.cat([context, x.unsqueeze(0)], 1)))[0]  # (H,)
    return [LayerTrace(f"decoder layer {k}", tokens, GateTrace.from_steps(s))
            for k, s in enumerate(steps)]

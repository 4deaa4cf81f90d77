"""A translation model as two ONNX graphs: the encoder, and ONE decoder step (the decoder LSTM
step with attention and the output layer's log-softmax), which any runtime loops over with the
search of its choice (`onnx_backend.py` runs lstm-nlp's own greedy and beam search on them).

The decoder state crosses the graph boundary explicitly, so a caller can reorder or select its
rows between steps (beams, finished sentences):

    encoder:      src (B, S) int64, lengths (B,) int64
                  -> memory (B, S, M), keys (B, S, Q), mask (B, S) bool, h (L, B, H), c (L, B, H),
                     feed (B, H)
    decoder_step: prev (B,) int64, h, c, feed, keys, memory, mask
                  -> logp (B, V) float32, h_next, c_next, feed_next, weights (B, S)

B (batch) and S (source length) are dynamic axes; L is the decoder's layers. The step graph takes
one state row per memory row: where K beams share a sentence's memory (search.py's protocol),
the backend repeats the memory rows for the graph (onnx_backend.py). Without input
feeding the step graph has no `feed` input (its `feed_next` is the attentional state all the
same); the manifest lists each graph's inputs and outputs. The graphs are
traced from `Seq2SeqModel.encode` and `decode_step` themselves, on the plain-PyTorch path (the
CPU speed kernels are switched off while tracing: their oneDNN calls and hand-written autograd
functions have no ONNX form), in fp32.

Exporter: the TorchScript-based `torch.onnx.export(dynamo=False)`. The encoder runs the LSTM over
packed sequences (each sentence to its own length, both directions), which the TorchScript
exporter writes as ONNX's LSTM operator with `sequence_lens`; `torch.export` (dynamo=True) cannot
trace it (the packing reads the lengths' values: a data-dependent shape).
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from lstm_nlp.data.tokenizer import TokenizerPair
from lstm_nlp.export import folder as export_folder
from lstm_nlp.extras import require
from lstm_nlp.nn import kernels
from lstm_nlp.nn.decoder import DecoderState
from lstm_nlp.tasks.translate.config import TranslateRecipe
from lstm_nlp.tasks.translate.model import Encoded, Seq2SeqModel

OPSET = 17
FEATURE = "ONNX export"
ENCODER, DECODER_STEP = "encoder.onnx", "decoder_step.onnx"
ENCODER_INPUTS = ("src", "lengths")
STATE = ("memory", "keys", "mask", "h", "c", "feed")        # what the encoder gives the decoder
DECODER_INPUTS = ("prev", "h", "c", "feed", "keys", "memory", "mask")
DECODER_OUTPUTS = ("logp", "h_next", "c_next", "feed_next", "weights")
# dynamic axes of each named input and output: batch, and source length where there is one
_AXES = {"src": {0: "batch", 1: "src_len"}, "lengths": {0: "batch"}, "prev": {0: "batch"},
         "memory": {0: "batch", 1: "src_len"}, "keys": {0: "batch", 1: "src_len"},
         "mask": {0: "batch", 1: "src_len"}, "weights": {0: "batch", 1: "src_len"},
         "h": {1: "batch"}, "c": {1: "batch"}, "h_next": {1: "batch"}, "c_next": {1: "batch"},
         "feed": {0: "batch"}, "feed_next": {0: "batch"}, "logp": {0: "batch"}}


class EncoderGraph(nn.Module):
    """`Seq2SeqModel.encode` with its result as plain tensors (the graph's outputs)."""

    def __init__(self, model: Seq2SeqModel):
        super().__init__()
        self.model = model

    def forward(self, src: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        enc = self.model.encode(src, lengths)
        s = enc.state
        return enc.memory, enc.keys, enc.mask, torch.stack(s.h), torch.stack(s.c), s.feed


class DecoderStepGraph(nn.Module):
    """`Seq2SeqModel.decode_step` with the state passed in and out as plain tensors."""

    def __init__(self, model: Seq2SeqModel):
        super().__init__()
        self.model = model

    def forward(self, prev: torch.Tensor, h: torch.Tensor, c: torch.Tensor, feed: torch.Tensor,
                keys: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
        state = DecoderState(list(h.unbind(0)), list(c.unbind(0)), feed)
        model = self.model
        enc = Encoded(memory, keys, mask, state, model.decoder.step_weights(),
                      (model.output.weight, model.output.bias))
        logp, enc, weights = model.decode_step(prev, enc)  # one state row per memory row
        s = enc.state
        return logp, torch.stack(s.h), torch.stack(s.c), s.feed, weights


@contextlib.contextmanager
def plain_pytorch() -> Iterator[None]:
    """The CPU speed kernels off for the block: the path other devices take, which traces."""
    before = kernels.ENABLED
    kernels.ENABLED = False
    try:
        yield
    finally:
        kernels.ENABLED = before


def example_inputs(model: Seq2SeqModel, tok: TokenizerPair) -> tuple[tuple, tuple]:
    """Tracing inputs: two sentences of different lengths (3 and 2 tokens) -> the encoder's
    inputs, and the decoder step's (BOS and the encoder's state)."""
    pad_id = tok.tgt.pad_id
    src = torch.tensor([[4, 5, 6], [7, 8, pad_id]])                            # (2, 3)
    lengths = torch.tensor([3, 2])
    with torch.no_grad():
        memory, keys, mask, h, c, feed = EncoderGraph(model)(src, lengths)
    prev = torch.full((2,), tok.tgt.bos_id)
    return (src, lengths), (prev, h, c, feed, keys, memory, mask)


def export_onnx(model: Seq2SeqModel, tok: TokenizerPair, recipe: TranslateRecipe,
                folder: Path) -> dict[str, Any]:
    """encoder.onnx, decoder_step.onnx and the tokenizer files into `folder` -> the manifest's
    entries for them (the caller writes the manifest)."""
    require("onnx", "onnx", FEATURE)
    model = model.float().eval()
    with plain_pytorch(), torch.no_grad(), _exporter_notices_hidden():
        enc_inputs, dec_inputs = example_inputs(model, tok)
        _export(EncoderGraph(model), enc_inputs, folder / ENCODER, ENCODER_INPUTS, STATE)
        _export(DecoderStepGraph(model), dec_inputs, folder / DECODER_STEP, DECODER_INPUTS,
                DECODER_OUTPUTS)
    m, d = recipe.model, recipe.decode
    return {
        "opset": OPSET, "torch_version": torch.__version__,
        "graphs": {"encoder": _signature(folder / ENCODER),
                   "decoder_step": _signature(folder / DECODER_STEP)},
        "encoder": ENCODER, "decoder_step": DECODER_STEP,
        "tokenizer": export_folder.write_tokenizers(folder, tok.to_state(), recipe.task),
        "vocab": {"src_size": tok.src.vocab_size, "tgt_size": tok.tgt.vocab_size,
                  "joint": tok.joint, "pad_id": tok.tgt.pad_id, "unk_id": tok.tgt.unk_id,
                  "bos_id": tok.tgt.bos_id, "eos_id": tok.tgt.eos_id},
        "shapes": {"emb_size": m.emb_size, "hidden_size": m.hidden_size,
                   "enc_layers": m.enc_layers, "dec_layers": m.dec_layers,
                   "bidirectional": m.bidirectional, "attention": m.attention,
                   "input_feeding": m.input_feeding},
        "decode": {"beam_size": d.beam_size, "length_penalty": d.length_penalty,
                   "max_len_ratio": d.max_len_ratio, "batch_size": d.batch_size,
                   "max_len": "max_len_ratio * source length + 5"},
        "recipe": recipe.to_dict(),
    }


@contextlib.contextmanager
def _exporter_notices_hidden() -> Iterator[None]:
    """The exporter's notices are not the user's business: its deprecation notice, tracer
    warnings (sizes read in Python, constant for the traced shapes, which the tests vary) and
    the C++ shape-inference warnings about packed sequences that it writes to file descriptor
    2 itself. Errors still come as exceptions."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _export(graph: nn.Module, inputs: tuple, path: Path, input_names: tuple[str, ...],
            output_names: tuple[str, ...]) -> None:
    torch.onnx.export(graph.eval(), inputs, str(path), dynamo=False, opset_version=OPSET,
                      input_names=list(input_names), output_names=list(output_names),
                      dynamic_axes={n: _AXES[n] for n in input_names + output_names})


def _signature(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Inputs and outputs of an ONNX file as it declares them: {name: {dtype, shape}}, a
    dynamic axis by its name ("batch", "src_len")."""
    onnx = require("onnx", "onnx", FEATURE)
    graph = onnx.load(str(path), load_external_data=False).graph

    def describe(values) -> dict[str, dict[str, Any]]:
        out = {}
        for v in values:
            t = v.type.tensor_type
            out[v.name] = {"dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name,
                           "shape": [d.dim_param or d.dim_value for d in t.shape.dim]}
        return out

    return {"inputs": describe(graph.input), "outputs": describe(graph.output)}

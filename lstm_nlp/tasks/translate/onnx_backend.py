"""`translate --backend onnxruntime`: the graphs of `lstm-nlp export --format onnx` run by
onnxruntime behind the two methods the search code calls on a model (`encode`, `decode_step`),
so greedy and beam search are lstm-nlp's own (search.py), the same code as with PyTorch.

Between steps the decoder state lives in torch tensors (CPU, sharing memory with onnxruntime's
numpy arrays), so the search selects and reorders its rows as it does for `Seq2SeqModel`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lstm_nlp.data.tokenizer import TokenizerPair
from lstm_nlp.errors import CheckpointError, ConfigError
from lstm_nlp.export import folder as export_folder
from lstm_nlp.extras import require
from lstm_nlp.nn.decoder import DecoderState
from lstm_nlp.tasks.translate.config import TranslateRecipe
from lstm_nlp.tasks.translate.model import Encoded
from lstm_nlp.tasks.translate.onnx_export import DECODER_INPUTS, ENCODER_INPUTS
from lstm_nlp.training import checkpoint, devices, runtime

PRECISION = "fp32"  # the graphs are exported in fp32
FEATURE = "--backend onnxruntime"


class OnnxSeq2Seq(nn.Module):
    """The encoder and decoder-step sessions as a translation model. An nn.Module without
    parameters, so that the task's decoding loop takes it as it takes `Seq2SeqModel` (eval
    mode is a no-op, `device_of` gives the CPU, where onnxruntime computes)."""

    def __init__(self, encoder: Any, decoder_step: Any):
        super().__init__()
        self.encoder, self.decoder_step = encoder, decoder_step
        # the inputs the step graph reads (without input feeding it has no `feed`)
        self.step_inputs = {i.name for i in decoder_step.get_inputs()}
        self._rows: tuple = (None, 0, ())  # (memory it was made from, N, per-row tensors)

    def _per_row(self, enc: Encoded, n: int) -> tuple[torch.Tensor, ...]:
        """keys, memory, mask with one row per hypothesis (N rows): the step graph's layout.
        The search keeps one memory row per sentence for its K hypotheses; the repeat is made
        once and reused until sentences leave (a new memory tensor) or K changes."""
        B = enc.memory.size(0)
        if n == B:
            return enc.keys, enc.memory, enc.mask
        made_from, rows, tensors = self._rows
        if made_from is not enc.memory or rows != n:
            tensors = tuple(t.repeat_interleave(n // B, dim=0)
                            for t in (enc.keys, enc.memory, enc.mask))          # (N, S, .)
            self._rows = (enc.memory, n, tensors)
        return tensors

    def encode(self, src: torch.Tensor, lengths: torch.Tensor) -> Encoded:
        """src (B, S), lengths (B,) -> the encoder's memory, keys, mask and first state."""
        memory, keys, mask, h, c, feed = map(torch.from_numpy, self.encoder.run(
            None, dict(zip(ENCODER_INPUTS, (_array(src), _array(lengths))))))
        return Encoded(memory, keys, mask, _state(h, c, feed), None, None)

    def decode_step(self, prev: torch.Tensor, enc: Encoded
                    ) -> tuple[torch.Tensor, Encoded, torch.Tensor]:
        """prev (N,), N = B*K hypotheses, K per sentence -> log-probabilities (N, V), the
        advanced state, attention weights (N, S)."""
        s = enc.state
        keys, memory, mask = self._per_row(enc, prev.size(0))
        given = (prev, torch.stack(s.h), torch.stack(s.c), s.feed, keys, memory,
                 mask)                                                          # h, c (L, N, H)
        logp, h, c, feed, weights = map(torch.from_numpy, self.decoder_step.run(
            None, {name: _array(t) for name, t in zip(DECODER_INPUTS, given)
                   if name in self.step_inputs}))
        return logp, dataclasses.replace(enc, state=_state(h, c, feed)), weights


def _array(t: torch.Tensor) -> np.ndarray:
    """A CPU tensor as a numpy array onnxruntime reads in place (copied only if strided)."""
    return np.ascontiguousarray(t.numpy())


def _state(h: torch.Tensor, c: torch.Tensor, feed: torch.Tensor) -> DecoderState:
    """h, c (L, B, H), feed (B, H) -> DecoderState (per-layer lists)."""
    return DecoderState(list(h.unbind(0)), list(c.unbind(0)), feed)


def prepare(device: str | None, precision: str | None) -> torch.device:
    """The device and precision options checked for onnxruntime, which runs the fp32 graphs
    on the CPU here (auto means the CPU); other devices and precisions are PyTorch's."""
    if precision is not None and precision != PRECISION:
        raise ConfigError(f"--precision {precision}: the ONNX graphs compute in {PRECISION}; "
                          f"{precision} is for --backend torch")
    where = devices.CPU if device in (None, "auto") else devices.resolve_device(device)
    if where.type != devices.CPU.type:
        raise ConfigError(f"--device {device}: {FEATURE} computes on the CPU (onnxruntime's CPU "
                          "provider); other devices are for --backend torch")
    runtime.tune_allocator()
    return where


def load(model_path: Path) -> tuple[OnnxSeq2Seq, TokenizerPair, TranslateRecipe]:
    """An ONNX export folder -> (model, tokenizers, the recipe it was trained with)."""
    folder = Path(model_path)
    manifest = export_folder.read_manifest(folder) if folder.is_dir() else None
    if manifest is None:
        raise CheckpointError(f"{model_path} is not an ONNX export (no {export_folder.MANIFEST});"
                              f" {FEATURE} takes the folder that lstm-nlp export -m RUN "
                              "--format onnx -o DIR writes")
    if manifest.get("kind") != "onnx":
        raise CheckpointError(f"{model_path} is a {manifest.get('kind')} export; {FEATURE} "
                              "takes an ONNX export (lstm-nlp export --format onnx)")
    recipe = checkpoint.recipe_of(manifest, folder / export_folder.MANIFEST)
    if recipe.task != "translate":
        raise CheckpointError(f"{model_path}: a {recipe.task} export; {FEATURE} translates")
    ort = require("onnxruntime", "onnx", FEATURE)
    tok = TokenizerPair.from_state(export_folder.read_tokenizers(folder, manifest))
    return OnnxSeq2Seq(*(_session(ort, export_folder.member(folder, manifest.get(key)))
                         for key in ("encoder", "decoder_step"))), tok, recipe


def _session(ort: Any, path: Path) -> Any:
    """An onnxruntime session on the CPU with as many threads as PyTorch uses here."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings are about graph optimisations
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own error types (InvalidProtobuf, Fail, ...)
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: onnxruntime cannot load it: {reason}") from None

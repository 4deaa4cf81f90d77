"""The gates of a classifier's LSTM layers (nn/gates.py recomputes them from the weights), each
direction of each layer over a text as the classifier reads it (<eos> first, truncated as the
recipe says)."""

from __future__ import annotations

import torch

from lstm_nlp.data.tokenizer import Tokenizer
from lstm_nlp.nn.gates import LayerTrace, nn_lstm
from lstm_nlp.tasks.classify.config import ClassifyRecipe
from lstm_nlp.tasks.classify.model import Classifier
from lstm_nlp.tasks.classify.task import ClassificationTask, encode_texts
from lstm_nlp.training.devices import device_of


def from_validation(model: Classifier, task: ClassificationTask, n: int) -> list[LayerTrace]:
    """The first `n` validation texts."""
    return [t for ids in task.valid_ids[:n] for t in traces(model, task.tok, ids)]


def from_text(model: Classifier, tok: Tokenizer, recipe: ClassifyRecipe, lines: list[str]
              ) -> list[LayerTrace]:
    m = recipe.model
    return [t for ids in encode_texts(tok, lines, m.max_tokens, m.long_text)
            for t in traces(model, tok, ids)]


@torch.inference_mode()
def traces(model: Classifier, tok: Tokenizer, ids: list[int]) -> list[LayerTrace]:
    """Every layer and direction over one encoded text ids (T,), read whole."""
    tokens = tok.id_to_piece(ids)
    x = model.embedding(torch.tensor(ids, device=device_of(model)))             # (T, E)
    out = []
    for k, lstm in enumerate(model.lstms):
        x, layer = nn_lstm(lstm, x, "classifier", tokens, first=k)              # (T, dirs*H)
        out += layer
    return out

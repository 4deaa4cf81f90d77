"""The gates of a language model's LSTM layers (nn/gates.py recomputes them from the weights)
over a stretch of text read as the model reads it: one stream from the start-of-text state."""

from __future__ import annotations

import torch

from lstm_nlp.data.tokenizer import Tokenizer
from lstm_nlp.nn.gates import LayerTrace, nn_lstm
from lstm_nlp.tasks.lm.config import LMRecipe
from lstm_nlp.tasks.lm.model import LanguageModel
from lstm_nlp.tasks.lm.task import LanguageModelTask, token_stream
from lstm_nlp.training.devices import device_of

VALIDATION_TOKENS = 25  # tokens per validation sentence `n` counts (a sample, not a score)


def from_validation(model: LanguageModel, task: LanguageModelTask, n: int) -> list[LayerTrace]:
    """The start of the validation stream, about `n` sentences' worth of tokens (unlabeled:
    the trainer's task holds no tokenizer, and statistics need no labels)."""
    return traces(model, None, task.valid_stream[: n * VALIDATION_TOKENS].tolist())


def from_text(model: LanguageModel, tok: Tokenizer, recipe: LMRecipe, lines: list[str]
              ) -> list[LayerTrace]:
    """The lines as one stream (<eos> first and after each line), the state carried along."""
    return traces(model, tok, token_stream(tok, lines).tolist())


@torch.inference_mode()
def traces(model: LanguageModel, tok: Tokenizer | None, ids: list[int]) -> list[LayerTrace]:
    """Every layer over ids (T,), from the zero state; each layer reads the one below it. The
    steps are labeled with `tok`'s words or pieces (none without it)."""
    tokens = tok.id_to_piece(ids) if tok is not None else []
    x = model.embedding(torch.tensor(ids, device=device_of(model)))             # (T, E)
    out = []
    for k, lstm in enumerate(model.lstms):
        x, layer = nn_lstm(lstm, x, "lm", tokens, first=k)                      # (T, H_k)
        out += layer
    return out

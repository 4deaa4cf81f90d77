"""Per-token explanations of a classifier's predictions (`classify --explain`): the attention
pooling's weights where the model pools by attention (what the model itself weighed), else
gradient x input saliency (Simonyan et al. 2014; Shrikumar et al. 2016): for each token, the
dot product of its embedding with the gradient of the predicted class's log-probability, signed
(positive: the token pushes toward the predicted class)."""

from __future__ import annotations

import torch
from torch.func import functional_call

from lstm_nlp.data.tokenizer import Tokenizer
from lstm_nlp.tasks.base import inference
from lstm_nlp.tasks.classify.model import Classifier
from lstm_nlp.tasks.classify.task import collate, encode_texts
from lstm_nlp.training.devices import device_of, to_device

ATTENTION, SALIENCY = "attention", "gradient x input"


def method(model: Classifier) -> str:
    return ATTENTION if model.pooling == "attention" else SALIENCY


def explain(model: Classifier, tok: Tokenizer, texts: list[str], batch_size: int
            ) -> list[dict]:
    """For each text: the tokens the model read (truncated as its recipe says; without the
    start-of-text marker, which takes the rest of the attention) and their weights."""
    encoded = encode_texts(tok, texts, model.max_tokens, model.long_text)
    out = []
    for start in range(0, len(encoded), batch_size):
        seqs = encoded[start: start + batch_size]
        batch = to_device(collate(seqs, [0] * len(seqs), tok.pad_id), device_of(model))
        weights = attention(model, batch.ids, batch.lengths) if method(model) == ATTENTION \
            else saliency(model, batch.ids, batch.lengths)                       # (T, B)
        for j, ids in enumerate(seqs):
            out.append({"tokens": tok.id_to_piece(ids[1:]),
                        "weights": [float(f"{w:.4g}")  # 4 significant digits
                                    for w in weights[1: len(ids), j].tolist()],
                        "explanation": method(model)})
    return out


def attention(model: Classifier, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """ids (T, B) -> the attention pooling's weights (T, B)."""
    with inference(model):
        return model.attention_weights(ids, lengths).float().cpu()


def saliency(model: Classifier, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """ids (T, B) -> gradient x input (T, B) of each text's predicted class log-probability.
    Every position gets its own row of a per-position embedding matrix (the model runs with it
    in place of its embedding table), so the gradient of a row is that position's alone."""
    T, B = ids.shape
    rows = model.embedding.weight.detach()[ids.flatten()].clone().requires_grad_(True)  # (T*B, E)
    positions = torch.arange(T * B, device=ids.device).view(T, B)                 # (T, B)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            logp = functional_call(model, {"embedding.weight": rows},
                                   (positions, lengths)).float().log_softmax(1)   # (B, C)
            # texts are independent: one gradient of the sum gives each its own
            (grad,) = torch.autograd.grad(logp.max(1).values.sum(), rows)         # (T*B, E)
    finally:
        model.train(was_training)
    return (grad * rows.detach()).sum(1).view(T, B).cpu()                         # (T, B)

"""Everything specific to the classify task: class names, truncation, length-bucketed batches,
the validation metrics, and turning lines of text into class probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lstm_nlp import metrics
from lstm_nlp.data.batching import length_batches, pad
from lstm_nlp.data.corpora import LabeledText
from lstm_nlp.data.token_store import TokenStore
from lstm_nlp.data.tokenizer import Tokenizer
from lstm_nlp.errors import ConfigError, DataError
from lstm_nlp.tasks.base import LossOutput, inference
from lstm_nlp.tasks.classify.config import ClassifyRecipe
from lstm_nlp.tasks.classify.model import Classifier
from lstm_nlp.training.devices import device_of, to_device


def class_names(labels: list[str]) -> list[str]:
    """The classes in a stable order: numerically when every label is an integer, else by name."""
    names = set(labels)
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def label_ids(data: LabeledText, classes: list[str]) -> list[int]:
    index = {c: i for i, c in enumerate(classes)}
    out = []
    for row, label in enumerate(data.labels, start=1):
        if label not in index:
            raise DataError(f"{data.origin}: row {row}: label {label!r} is not one of the "
                            f"training labels ({', '.join(classes)})")
        out.append(index[label])
    return out


def encode_texts(tok: Tokenizer, texts: list[str], max_tokens: int, long_text: str
                 ) -> list[list[int]]:
    """<eos> (the start-of-text state of a language model) + tokens; `head` keeps the first
    max_tokens tokens, `tail` the last ones, `chunk` everything (read in chunks by the model)."""
    return clip(tok.encode(texts), tok.eos_id, max_tokens, long_text)


def clip(encoded: list[list[int]], eos_id: int, max_tokens: int, long_text: str
         ) -> list[list[int]]:
    """`encode_texts` after the tokenizer: truncate as `long_text` says, put <eos> first."""
    out = []
    for ids in encoded:
        if long_text == "head":
            ids = ids[:max_tokens]
        elif long_text == "tail":
            ids = ids[-max_tokens:] if max_tokens < len(ids) else ids
        out.append([eos_id] + ids)
    return out


@dataclass
class ClassBatch:
    ids: torch.Tensor      # (T, B) right-padded with the pad id
    lengths: torch.Tensor  # (B,)
    labels: torch.Tensor   # (B,) class indices


def collate(seqs: list[list[int]], labels: list[int], pad_id: int) -> ClassBatch:
    ids, lengths = pad(seqs, pad_id)                                             # (B, T)
    return ClassBatch(ids.t().contiguous(), lengths, torch.tensor(labels))        # (T, B)


class ClassificationTask:
    """The trainer's view of classification: batches, loss and validation. The training texts'
    ids come from a token store (`store`; else they are tokenized here), truncated as a batch
    reads them."""

    def __init__(self, recipe: ClassifyRecipe, tok: Tokenizer, train: LabeledText,
                 valid: LabeledText, classes: list[str], store: TokenStore | None = None):
        self.recipe, self.tok, self.classes = recipe, tok, classes
        m = recipe.model
        self.train_texts = train.texts
        self.store = store or TokenStore.from_rows(tok.encode(train.texts), tok.vocab_size)
        lengths = self.store.lengths()  # of the best segmentation: the buckets
        if m.long_text != "chunk":
            lengths = np.minimum(lengths, m.max_tokens)
        self.lengths = (lengths + 1).tolist()  # <eos> first
        if recipe.train.subword_alpha and not hasattr(tok, "encode_sampled"):
            raise ConfigError(f"train.subword_alpha: samples sentencepiece segmentations; this "
                              f"run's tokenizer is {tok.kind!r} (set it to 0)")
        self.train_labels = label_ids(train, classes)
        self.valid_ids = encode_texts(tok, valid.texts, m.max_tokens, m.long_text)
        self.valid_labels = label_ids(valid, classes)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The epoch's batches; with subword sampling, also the epoch's segmentations (drawn
        from (seed, epoch) alone, so a resumed run sees the same ones)."""
        alpha = self.recipe.train.subword_alpha
        if alpha:
            sampled = self.tok.encode_sampled(self.train_texts, alpha,
                                              self.recipe.seed * 1_000_003 + epoch)
            self.store = TokenStore.from_rows(sampled, self.tok.vocab_size)
        return length_batches(self.lengths, self.recipe.train.batch_size, self.recipe.seed,
                              epoch)

    @property
    def train_ids(self) -> list[list[int]]:
        """Every training text's ids as a batch reads them (truncated, <eos> first)."""
        return self._clipped(range(self.store.n_lines))

    def _clipped(self, indices) -> list[list[int]]:
        m = self.recipe.model
        return clip(self.store.rows(indices), self.tok.eos_id, m.max_tokens, m.long_text)

    def collate(self, indices: list[int]) -> ClassBatch:
        return collate(self._clipped(indices), [self.train_labels[i] for i in indices],
                       self.tok.pad_id)

    def loss(self, model: Classifier, batch: ClassBatch) -> LossOutput:
        logits = model(batch.ids, batch.lengths).float()                          # (B, C)
        loss = F.cross_entropy(logits, batch.labels, reduction="sum",
                               label_smoothing=self.recipe.train.label_smoothing)
        n_correct = int((logits.argmax(1) == batch.labels).sum())
        return LossOutput(loss, batch.labels.numel(), n_correct)

    def validate(self, model: Classifier) -> dict[str, float]:
        probs = predict(model, self.valid_ids, self.recipe.eval.batch_size, self.tok.pad_id)
        gold = torch.tensor(self.valid_labels)
        nll = F.nll_loss(probs.clamp(min=1e-12).log(), gold, reduction="mean").item()
        scores = metrics.classification_scores(self.valid_labels, probs.argmax(1).tolist(),
                                               self.classes)
        return {"val_loss": nll, "val_acc": scores["accuracy"], "val_f1": scores["macro_f1"]}

    def state_dict(self) -> dict:
        return {}  # nothing carried between batches

    def load_state_dict(self, state: dict) -> None:
        pass


def predict(model: Classifier, seqs: list[list[int]], batch_size: int, pad_id: int
            ) -> torch.Tensor:
    """Class probabilities (N, C) in input order, on the CPU; texts of similar length are
    batched."""
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out: list[torch.Tensor | None] = [None] * len(seqs)
    device = device_of(model)
    with inference(model):
        for start in range(0, len(order), batch_size):
            rows = order[start: start + batch_size]
            batch = to_device(collate([seqs[i] for i in rows], [0] * len(rows), pad_id), device)
            probs = model(batch.ids, batch.lengths).float().softmax(1)
            for i, p in zip(rows, probs):
                out[i] = p
    return torch.stack(out).cpu() if out else torch.zeros(0, 0)

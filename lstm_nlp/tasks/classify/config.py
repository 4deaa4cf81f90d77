"""The classify task's recipe: its sections and their checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lstm_nlp.config.sections import RecipeMethods, TokenizerConfig, TrainConfig, at_least, between, hub_named
from lstm_nlp.errors import ConfigError


@dataclass(frozen=True)
class ClassifyDataConfig:
    """Rows of text and label, read through `datasets` from `<dir>/<split>.<format>` (a `.gz`
    beside it works too), a `save_to_disk` folder or the hub. `valid: ""` holds out
    `valid_fraction` of the training rows instead."""
    format: Literal["tsv", "csv", "jsonl", "parquet", "disk", "hub"] = "tsv"
    dir: str = "."
    text_column: str = "text"
    label_column: str = "label"
    hub_name: str = ""
    hub_config: str = ""
    train: str = "train"
    valid: str = "valid"
    test: str = "test"
    valid_fraction: float = 0.1
    max_train_examples: int = 0

    def check(self, p: str) -> None:
        hub_named(p, self.format, self.hub_name)
        between(p, "valid_fraction", self.valid_fraction, 0.0, 0.5)
        at_least(p, "max_train_examples", self.max_train_examples, 0)

@dataclass(frozen=True)
class ClassifyModelConfig:
    """Embedding -> (bi)LSTM -> pooling -> classifier head. With `init_from` (a language model
    trained by lstm-nlp) the embedding and LSTM layers, their sizes and the tokenizer come from
    that model (ULMFiT, Howard & Ruder 2018): emb_size, hidden_size, layers and tie_weights must
    then match it, and the encoder is unidirectional like the language model."""
    emb_size: int = 300
    hidden_size: int = 512
    layers: int = 1
    bidirectional: bool = True
    tie_weights: bool = False
    pooling: Literal["last", "max", "mean", "attention", "concat"] = "max"
    head_hidden: int = 0
    dropout: float = 0.5
    dropout_input: float = 0.2
    dropout_hidden: float = 0.2
    dropout_embedding: float = 0.0
    weight_drop: float = 0.0
    locked_dropout: bool = True
    max_tokens: int = 400
    long_text: Literal["head", "tail", "chunk"] = "head"
    chunk_tokens: int = 70
    init_from: str = ""

    def check(self, p: str) -> None:
        for name in ("emb_size", "hidden_size", "layers", "max_tokens", "chunk_tokens"):
            at_least(p, name, getattr(self, name), 1)
        at_least(p, "head_hidden", self.head_hidden, 0)
        for name in ("dropout", "dropout_input", "dropout_hidden", "dropout_embedding",
                     "weight_drop"):
            between(p, name, getattr(self, name), 0.0, 0.99)
        if self.init_from and self.bidirectional:
            raise ConfigError(f"{p}bidirectional: must be false with {p}init_from (a language "
                              "model reads left to right)")
        if self.long_text == "chunk" and self.bidirectional:
            raise ConfigError(f"{p}long_text: 'chunk' carries the state forward through a long "
                              f"text; it needs {p}bidirectional: false")

@dataclass(frozen=True)
class ClassifyTrainConfig(TrainConfig):
    """Batches of `batch_size` texts of similar length."""
    batch_size: int = 32
    label_smoothing: float = 0.0
    subword_alpha: float = 0.0  # > 0: each epoch samples new sentencepiece segmentations
    valid_every: int = 0
    early_stopping_metric: Literal["bleu", "loss", "ppl", "accuracy"] = "accuracy"

    def check(self, p: str) -> None:
        super().check(p)
        at_least(p, "batch_size", self.batch_size, 1)
        between(p, "label_smoothing", self.label_smoothing, 0.0, 0.99)
        between(p, "subword_alpha", self.subword_alpha, 0.0, 1.0)
        if self.early_stopping_metric in ("bleu", "ppl"):
            raise ConfigError(f"{p}early_stopping_metric: use accuracy or loss for a classifier")

@dataclass(frozen=True)
class ClassifyEvalConfig:
    batch_size: int = 64
    samples: int = 10

    def check(self, p: str) -> None:
        at_least(p, "batch_size", self.batch_size, 1)
        at_least(p, "samples", self.samples, 0)

@dataclass(frozen=True)
class ClassifyRecipe(RecipeMethods):
    task: Literal["classify"]
    name: str = ""
    seed: int = 1
    data: ClassifyDataConfig = field(default_factory=ClassifyDataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ClassifyModelConfig = field(default_factory=ClassifyModelConfig)
    train: ClassifyTrainConfig = field(default_factory=ClassifyTrainConfig)
    eval: ClassifyEvalConfig = field(default_factory=ClassifyEvalConfig)

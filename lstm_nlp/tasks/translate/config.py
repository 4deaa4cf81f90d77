"""The translate task's recipe: its sections and their checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lstm_nlp.config.sections import RecipeMethods, TokenizerConfig, TrainConfig, at_least, between, hub_named
from lstm_nlp.errors import ConfigError


@dataclass(frozen=True)
class TranslateDataConfig:
    format: Literal["parallel", "tsv", "csv", "jsonl", "parquet", "disk", "hub"] = "parallel"
    dir: str = "."
    src_lang: str = "src"
    tgt_lang: str = "tgt"
    src_column: str = "src"
    tgt_column: str = "tgt"
    hub_name: str = ""
    hub_config: str = ""
    train: str = "train"
    valid: str = "valid"
    test: str = "test"
    max_src_len: int = 100
    max_tgt_len: int = 100
    max_train_examples: int = 0

    def check(self, p: str) -> None:
        at_least(p, "max_src_len", self.max_src_len, 1)
        at_least(p, "max_tgt_len", self.max_tgt_len, 1)
        at_least(p, "max_train_examples", self.max_train_examples, 0)
        hub_named(p, self.format, self.hub_name)

@dataclass(frozen=True)
class TranslateModelConfig:
    emb_size: int = 256
    hidden_size: int = 512
    enc_layers: int = 1
    dec_layers: int = 1
    bidirectional: bool = True
    attention: Literal["dot", "general", "bahdanau"] = "general"
    input_feeding: bool = True
    dropout: float = 0.3
    tie_output: bool = False
    share_embeddings: bool = False

    def check(self, p: str) -> None:
        for name in ("emb_size", "hidden_size", "enc_layers", "dec_layers"):
            at_least(p, name, getattr(self, name), 1)
        between(p, "dropout", self.dropout, 0.0, 0.99)
        if self.bidirectional and self.hidden_size % 2:
            raise ConfigError(f"{p}hidden_size: must be even with a bidirectional encoder "
                              f"(each direction gets half), got {self.hidden_size}")
        if self.tie_output and self.emb_size != self.hidden_size:
            raise ConfigError(f"{p}tie_output: needs {p}emb_size == {p}hidden_size "
                              f"(got {self.emb_size} and {self.hidden_size})")

@dataclass(frozen=True)
class TranslateTrainConfig(TrainConfig):
    label_smoothing: float = 0.1
    scheduled_sampling: float = 0.0
    batch_tokens: int = 4096
    valid_bleu: bool = True
    early_stopping_metric: Literal["bleu", "loss", "ppl", "accuracy"] = "bleu"

    def check(self, p: str) -> None:
        super().check(p)
        between(p, "label_smoothing", self.label_smoothing, 0.0, 0.99)
        between(p, "scheduled_sampling", self.scheduled_sampling, 0.0, 1.0)
        at_least(p, "batch_tokens", self.batch_tokens, 1)
        if self.early_stopping_metric == "bleu" and not self.valid_bleu:
            raise ConfigError(f"{p}early_stopping_metric: 'bleu' needs {p}valid_bleu: true")

@dataclass(frozen=True)
class DecodeConfig:
    beam_size: int = 5
    length_penalty: float = 1.0
    max_len_ratio: float = 2.0
    batch_size: int = 128

    def check(self, p: str) -> None:
        at_least(p, "beam_size", self.beam_size, 1)
        at_least(p, "length_penalty", self.length_penalty, 0.0)
        at_least(p, "max_len_ratio", self.max_len_ratio, 0.0, strict=True)
        at_least(p, "batch_size", self.batch_size, 1)

@dataclass(frozen=True)
class EvalConfig:
    tokenize: Literal["13a", "intl", "none", "char", "zh", "ja-mecab", "ko-mecab", "flores101",
                      "flores200"] = "13a"
    lowercase: bool = False
    samples: int = 5

    def check(self, p: str) -> None:
        at_least(p, "samples", self.samples, 0)

@dataclass(frozen=True)
class TranslateRecipe(RecipeMethods):
    task: Literal["translate"]
    name: str = ""
    seed: int = 1
    data: TranslateDataConfig = field(default_factory=TranslateDataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: TranslateModelConfig = field(default_factory=TranslateModelConfig)
    train: TranslateTrainConfig = field(default_factory=TranslateTrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def check(self, p: str) -> None:
        if self.model.share_embeddings and not self.tokenizer.joint:
            raise ConfigError("model.share_embeddings: needs tokenizer.joint: true "
                              "(one vocabulary for both sides)")

"""Recipe sections every task shares (tokenizer, training) and the range checks they use."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from lstm_nlp.errors import ConfigError


@dataclass(frozen=True)
class TokenizerConfig:
    type: Literal["unigram", "bpe", "word"] = "unigram"
    vocab_size: int = 8000
    min_freq: int = 1
    lowercase: bool = False
    joint: bool = True
    character_coverage: float = 1.0
    byte_fallback: bool = False
    max_sentences: int = 2_000_000

    def check(self, p: str) -> None:
        if self.type == "word":  # 0: every word seen in training
            at_least(p, "vocab_size", self.vocab_size, 0)
        else:
            at_least(p, "vocab_size", self.vocab_size, 16)
        at_least(p, "min_freq", self.min_freq, 1)
        between(p, "character_coverage", self.character_coverage, 0.9, 1.0)
        at_least(p, "max_sentences", self.max_sentences, 100)



@dataclass(frozen=True)
class TrainConfig:
    """What every task's training shares: optimizer, schedule, limits, validation, precision."""
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    clip_norm: float = 5.0
    max_epochs: int = 0
    max_steps: int = 0
    max_minutes: float = 0.0
    warmup_steps: int = 0
    schedule: Literal["constant", "plateau", "linear", "epoch_decay", "slanted"] = "constant"
    decay_factor: float = 0.5
    decay_patience: int = 2
    decay_start_epoch: int = 1
    cut_frac: float = 0.1
    slanted_ratio: float = 32.0
    min_lr: float = 1e-5
    layer_lr_decay: float = 1.0
    gradual_unfreezing: bool = False
    average_decay: float = 0.0
    valid_every: int = 500
    early_stopping_metric: Literal["bleu", "loss", "ppl", "accuracy"] = "loss"
    patience: int = 0
    precision: Literal["fp32", "bf16"] = "fp32"
    threads: int = 0
    log_every: int = 50

    def check(self, p: str) -> None:
        at_least(p, "lr", self.lr, 0.0, strict=True)
        for name in ("momentum", "weight_decay", "clip_norm", "max_minutes", "min_lr"):
            at_least(p, name, getattr(self, name), 0.0)
        between(p, "decay_factor", self.decay_factor, 0.01, 1.0)
        between(p, "cut_frac", self.cut_frac, 0.0, 0.99)
        at_least(p, "slanted_ratio", self.slanted_ratio, 1.0)
        at_least(p, "layer_lr_decay", self.layer_lr_decay, 1.0)
        between(p, "average_decay", self.average_decay, 0.0, 0.99999)
        at_least(p, "log_every", self.log_every, 1)
        for name in ("max_epochs", "max_steps", "warmup_steps", "patience", "decay_patience",
                     "decay_start_epoch", "threads", "valid_every"):
            at_least(p, name, getattr(self, name), 0)
        if not (self.max_epochs or self.max_steps or self.max_minutes):
            raise ConfigError(f"{p}max_epochs, {p}max_steps, {p}max_minutes: set at least one "
                              "limit (0 means no limit)")
        if self.gradual_unfreezing and not self.max_epochs:
            raise ConfigError(f"{p}gradual_unfreezing: unfreezes one layer group per epoch; "
                              f"set {p}max_epochs")



class RecipeMethods:
    def check(self, p: str) -> None:
        pass

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)



def hub_named(p: str, fmt: str, hub_name: str) -> None:
    if fmt == "hub" and not hub_name:
        raise ConfigError(f"{p}hub_name: required when {p}format is 'hub' (a dataset id)")


def at_least(p: str, name: str, value: float, lo: float, strict: bool = False) -> None:
    if value < lo or (strict and value == lo):
        op = ">" if strict else ">="
        raise ConfigError(f"{p}{name}: must be {op} {lo}, got {value}")


def between(p: str, name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ConfigError(f"{p}{name}: must be between {lo} and {hi}, got {value}")

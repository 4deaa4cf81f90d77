"""Recipe sections every task shares (tokenizer, training), the base class of every section and
recipe, and the value types that YAML needs beyond pydantic's strict ones."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator


def _number(value: Any) -> Any:
    """YAML 1.1 reads 1e-3 (no dot) as a string, and 2 where 2.0 is meant as an int: both are
    numbers here (as floats, so that messages show 2.0). Anything else goes on to strict float,
    which refuses it: true is not a number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _text(value: Any) -> Any:
    """A number where text is meant is that text (`src_lang: 1`, a prompt `3`); true is not."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


# What a device may be called (train.device, --device); whether it is here is asked when a run
# or a verb starts (training/devices.py), not when a recipe is read.
DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


Number = Annotated[float, BeforeValidator(_number)]
Text = Annotated[str, BeforeValidator(_text)]


def section() -> Any:
    """A section's default: validated as an empty mapping, so that a recipe without `train:`
    meets the same rules as one with `train: {}` (set a limit, for one)."""
    return Field(default_factory=dict, validate_default=True)


class Section(BaseModel):
    """Base of every section and recipe: frozen, unknown keys refused, strict types (a bool is
    only true or false, an integer refuses 1.5 and true) but for `Number` and `Text`. Each
    section sits at one key of its recipe, so its cross-field rules name the full key path."""
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: Any) -> Any:
        """`model:` with every key commented out is null in YAML: the section's defaults."""
        return {} if data is None else data

    def to_dict(self) -> dict[str, Any]:
        """Plain values, keys in declaration order: what save_recipe writes and checkpoints keep."""
        return self.model_dump()


class DataSection(Section):
    """A data section: a subclass declares `format` and `hub_name` (not declared here, so that
    they keep their place among the section's keys)."""

    @model_validator(mode="after")
    def _hub_named(self) -> DataSection:
        if self.format == "hub" and not self.hub_name:
            raise ValueError("data.hub_name: required when data.format is 'hub' (a dataset id)")
        return self


class TokenizerConfig(Section):
    type: Literal["unigram", "bpe", "word"] = "unigram"
    vocab_size: int = Field(8000, ge=0)  # word: 0 keeps every word seen in training
    min_freq: int = Field(1, ge=1)
    lowercase: bool = False
    joint: bool = True
    character_coverage: Number = Field(1.0, ge=0.9, le=1.0)
    byte_fallback: bool = False
    max_sentences: int = Field(2_000_000, ge=100)

    @model_validator(mode="after")
    def _subword_vocab(self) -> TokenizerConfig:
        if self.type != "word" and self.vocab_size < 16:
            raise ValueError(f"tokenizer.vocab_size: must be >= 16, got {self.vocab_size}")
        return self


class TrainConfig(Section):
    """What every task's training shares: optimizer, schedule, limits, validation, precision,
    device."""
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: Number = Field(1e-3, gt=0.0)
    momentum: Number = Field(0.0, ge=0.0)
    weight_decay: Number = Field(0.0, ge=0.0)
    clip_norm: Number = Field(5.0, ge=0.0)
    max_epochs: int = Field(0, ge=0)
    max_steps: int = Field(0, ge=0)
    max_minutes: Number = Field(0.0, ge=0.0)
    warmup_steps: int = Field(0, ge=0)
    schedule: Literal["constant", "plateau", "linear", "epoch_decay", "slanted"] = "constant"
    decay_factor: Number = Field(0.5, ge=0.01, le=1.0)
    decay_patience: int = Field(2, ge=0)
    decay_start_epoch: int = Field(1, ge=0)
    cut_frac: Number = Field(0.1, ge=0.0, le=0.99)
    slanted_ratio: Number = Field(32.0, ge=1.0)
    min_lr: Number = Field(1e-5, ge=0.0)
    layer_lr_decay: Number = Field(1.0, ge=1.0)
    gradual_unfreezing: bool = False
    # > 0: validate, keep (best.pt) and test an exponential moving average of the weights,
    # avg <- d*avg + (1-d)*w with d = average_decay (0.999 to 0.9999 typical). OpenNMT-py's
    # average_decay is 1 - d (its 1e-4 is 0.9999 here), hence no d below 0.5
    average_decay: Number = Field(0.0, ge=0.0, le=0.99999)
    # > 0: also keep the weights of the last N validations as checkpoints/step-<step>.pt
    # (weights only, averaged ones when averaging), for `lstm-nlp average`
    keep_checkpoints: int = Field(0, ge=0)
    valid_every: int = Field(500, ge=0)
    early_stopping_metric: Literal["bleu", "loss", "ppl", "accuracy"] = "loss"
    patience: int = Field(0, ge=0)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # fp16: CUDA only, with a gradient scaler
    device: str = "auto"  # auto: CUDA, else MPS, else the CPU
    threads: int = Field(0, ge=0)
    # one optimizer step over this many consecutive batches (fewer at an epoch's end): the
    # gradient of one batch accum_steps times as large; steps and limits count optimizer steps
    accum_steps: int = Field(1, ge=1)
    log_every: int = Field(50, ge=1)
    # event files under <run>/tensorboard: scalars per log step and validation, gate
    # histograms at validation, the report's figures (needs the extra lstm-nlp[tensorboard])
    tensorboard: bool = False

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str) -> str:
        if not DEVICE_NAME.fullmatch(value):
            raise ValueError(f"train.device: must be one of {DEVICE_CHOICES}; got {value!r}")
        return value

    @model_validator(mode="after")
    def _limits(self) -> TrainConfig:
        if not (self.max_epochs or self.max_steps or self.max_minutes):
            raise ValueError("train.max_epochs, train.max_steps, train.max_minutes: set at least "
                             "one limit (0 means no limit)")
        if self.gradual_unfreezing and not self.max_epochs:
            raise ValueError("train.gradual_unfreezing: unfreezes one layer group per epoch; "
                             "set train.max_epochs")
        return self

    @model_validator(mode="after")
    def _average_decay_is_d(self) -> TrainConfig:
        """A value copied from an OpenNMT-py config (1 - d, e.g. 1e-4) would silently average
        almost nothing: refused, with the conversion, rather than misread."""
        d = self.average_decay
        if 0 < d < 0.5:
            raise ValueError(
                f"train.average_decay: {d} keeps almost only the latest weights; this is the "
                "decay d of avg <- d*avg + (1-d)*w (0.999-0.9999 typical); OpenNMT-py's "
                f"average_decay {d} is 1 - d, i.e. {1 - d:g} here")
        return self

"""Recipes: YAML -> typed, frozen, strict configuration.

Every section is a frozen dataclass that owns its defaults. `load_recipe` refuses unknown keys
(naming the key path and the nearest valid key), checks every type and range, and applies
`--set a.b=c` overrides through the very same checks. Priority: --set > recipe file > default.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from lstm_nlp.errors import ConfigError

Task = Literal["translate"]


@dataclass(frozen=True)
class DataConfig:
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
        _at_least(p, "max_src_len", self.max_src_len, 1)
        _at_least(p, "max_tgt_len", self.max_tgt_len, 1)
        _at_least(p, "max_train_examples", self.max_train_examples, 0)
        if self.format == "hub" and not self.hub_name:
            raise ConfigError(f"{p}hub_name: required when {p}format is 'hub' (a dataset id)")


@dataclass(frozen=True)
class TokenizerConfig:
    type: Literal["unigram", "bpe"] = "unigram"
    vocab_size: int = 8000
    joint: bool = True
    character_coverage: float = 1.0
    byte_fallback: bool = False
    max_sentences: int = 2_000_000

    def check(self, p: str) -> None:
        _at_least(p, "vocab_size", self.vocab_size, 16)
        _between(p, "character_coverage", self.character_coverage, 0.9, 1.0)
        _at_least(p, "max_sentences", self.max_sentences, 100)


@dataclass(frozen=True)
class ModelConfig:
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
            _at_least(p, name, getattr(self, name), 1)
        _between(p, "dropout", self.dropout, 0.0, 0.99)
        if self.bidirectional and self.hidden_size % 2:
            raise ConfigError(f"{p}hidden_size: must be even with a bidirectional encoder "
                              f"(each direction gets half), got {self.hidden_size}")
        if self.tie_output and self.emb_size != self.hidden_size:
            raise ConfigError(f"{p}tie_output: needs {p}emb_size == {p}hidden_size "
                              f"(got {self.emb_size} and {self.hidden_size})")


@dataclass(frozen=True)
class TrainConfig:
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    clip_norm: float = 5.0
    label_smoothing: float = 0.1
    scheduled_sampling: float = 0.0
    batch_tokens: int = 4096
    max_epochs: int = 0
    max_steps: int = 0
    max_minutes: float = 0.0
    warmup_steps: int = 0
    schedule: Literal["constant", "plateau", "linear"] = "constant"
    decay_factor: float = 0.5
    decay_patience: int = 2
    min_lr: float = 1e-5
    valid_every: int = 500
    valid_bleu: bool = True
    early_stopping_metric: Literal["bleu", "loss", "ppl", "accuracy"] = "bleu"
    patience: int = 0
    precision: Literal["fp32", "bf16"] = "fp32"
    threads: int = 0
    log_every: int = 50

    def check(self, p: str) -> None:
        _at_least(p, "lr", self.lr, 0.0, strict=True)
        for name in ("momentum", "weight_decay", "clip_norm", "max_minutes", "min_lr"):
            _at_least(p, name, getattr(self, name), 0.0)
        _between(p, "label_smoothing", self.label_smoothing, 0.0, 0.99)
        _between(p, "scheduled_sampling", self.scheduled_sampling, 0.0, 1.0)
        _between(p, "decay_factor", self.decay_factor, 0.01, 1.0)
        _at_least(p, "batch_tokens", self.batch_tokens, 1)
        _at_least(p, "valid_every", self.valid_every, 1)
        _at_least(p, "log_every", self.log_every, 1)
        for name in ("max_epochs", "max_steps", "warmup_steps", "patience", "decay_patience",
                     "threads"):
            _at_least(p, name, getattr(self, name), 0)
        if not (self.max_epochs or self.max_steps or self.max_minutes):
            raise ConfigError(f"{p}max_epochs, {p}max_steps, {p}max_minutes: set at least one "
                              "limit (0 means no limit)")


@dataclass(frozen=True)
class DecodeConfig:
    beam_size: int = 5
    length_penalty: float = 1.0
    max_len_ratio: float = 2.0
    batch_size: int = 128

    def check(self, p: str) -> None:
        _at_least(p, "beam_size", self.beam_size, 1)
        _at_least(p, "length_penalty", self.length_penalty, 0.0)
        _at_least(p, "max_len_ratio", self.max_len_ratio, 0.0, strict=True)
        _at_least(p, "batch_size", self.batch_size, 1)


@dataclass(frozen=True)
class EvalConfig:
    tokenize: Literal["13a", "intl", "none", "char", "zh", "ja-mecab", "ko-mecab", "flores101",
                      "flores200"] = "13a"
    lowercase: bool = False
    samples: int = 5

    def check(self, p: str) -> None:
        _at_least(p, "samples", self.samples, 0)


@dataclass(frozen=True)
class Recipe:
    task: Task
    name: str = ""
    seed: int = 1
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def check(self, p: str) -> None:
        if self.model.share_embeddings and not self.tokenizer.joint:
            raise ConfigError("model.share_embeddings: needs tokenizer.joint: true "
                              "(one vocabulary for both sides)")
        if self.train.early_stopping_metric == "bleu" and not self.train.valid_bleu:
            raise ConfigError("train.early_stopping_metric: 'bleu' needs train.valid_bleu: true")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- loading and validation


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """Read a YAML recipe, apply `key.path=value` overrides, validate; name defaults to the stem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} invalid YAML: {getattr(e, 'problem', e)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of keys, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides)
    raw.setdefault("name", path.stem)
    if not raw["name"]:
        raw["name"] = path.stem
    return recipe_from_dict(raw)


def recipe_from_dict(raw: dict[str, Any]) -> Recipe:
    if "task" not in raw:
        raise ConfigError("task: missing; the recipe must name its task (task: translate)")
    return _build(Recipe, raw, "")


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`a.b=c` with c parsed as YAML (so 3 is an int, true a bool, [1,2] a list)."""
    raw = _deep_copy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. train.lr=0.0005")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a section")
            node = nxt
        node[parts[-1]] = parsed
    return raw


def save_recipe(recipe: Recipe, path: Path) -> None:
    path.write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False), encoding="utf-8")


def _deep_copy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d


def _build(cls: type, raw: Any, prefix: str) -> Any:
    section = prefix.rstrip(".") or "recipe"
    if not isinstance(raw, dict):
        raise ConfigError(f"{section}: expected a section (mapping), got {_show(raw)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            near = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f"; did you mean '{prefix}{near[0]}'?" if near else \
                f"; valid keys: {', '.join(names)}"
            raise ConfigError(f"unknown key '{prefix}{key}'{hint}")
    values = {}
    for name in names:
        if name in raw:
            values[name] = _convert(hints[name], raw[name], prefix + name)
    try:
        obj = cls(**values)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{section}: {e}") from None
    obj.check(prefix)
    return obj


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, path + ".")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{path}: must be one of {', '.join(map(str, choices))}; "
                              f"got {_show(value)}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _convert(args[0], value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {_show(value)}")
        return float(value)
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {_show(value)}")
        return value
    raise TypeError(f"unsupported recipe type {tp} at {path}")  # programming error


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"a {type(value).__name__}"
    return repr(value)


def _at_least(p: str, name: str, value: float, lo: float, strict: bool = False) -> None:
    if value < lo or (strict and value == lo):
        op = ">" if strict else ">="
        raise ConfigError(f"{p}{name}: must be {op} {lo}, got {value}")


def _between(p: str, name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ConfigError(f"{p}{name}: must be between {lo} and {hi}, got {value}")

"""Recipes: YAML -> typed, frozen, strict configuration.

The `task` key picks the recipe class (TranslateRecipe, LMRecipe, ClassifyRecipe, ChainRecipe),
and with it the sections and keys that are valid. Every section is a frozen dataclass that owns
its defaults. `load_recipe` refuses unknown keys (naming the key path and the nearest valid key),
checks every type and range, and applies `--set a.b=c` overrides through the very same checks.
Priority: --set > recipe file > default.
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
        _at_least(p, "max_src_len", self.max_src_len, 1)
        _at_least(p, "max_tgt_len", self.max_tgt_len, 1)
        _at_least(p, "max_train_examples", self.max_train_examples, 0)
        _hub_named(p, self.format, self.hub_name)


@dataclass(frozen=True)
class LMDataConfig:
    """`text`: one file per split, `<dir>/<split>` or `<dir>/<split>.txt`, read line by line;
    the other formats read `text_column` through `datasets`. `extra_train` adds more training
    text from files under `dir`, each read by its type (`.txt`/`.tokens` line by line,
    `.tsv`/`.csv`/`.jsonl`/`.parquet`, gzipped or not, by `text_column`). `valid: ""` holds out
    `valid_fraction` of the training lines instead; `test: ""` skips the test evaluation."""
    format: Literal["text", "tsv", "csv", "jsonl", "parquet", "disk", "hub"] = "text"
    dir: str = "."
    text_column: str = "text"
    hub_name: str = ""
    hub_config: str = ""
    train: str = "train"
    extra_train: list[str] = field(default_factory=list)
    valid: str = "valid"
    valid_fraction: float = 0.05
    test: str = "test"

    def check(self, p: str) -> None:
        _hub_named(p, self.format, self.hub_name)
        _between(p, "valid_fraction", self.valid_fraction, 0.0, 0.5)
        if not self.valid and not self.valid_fraction:
            raise ConfigError(f"{p}valid: empty needs {p}valid_fraction above 0 (the share of "
                              "training lines held out for validation)")


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
        _hub_named(p, self.format, self.hub_name)
        _between(p, "valid_fraction", self.valid_fraction, 0.0, 0.5)
        _at_least(p, "max_train_examples", self.max_train_examples, 0)


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
            _at_least(p, "vocab_size", self.vocab_size, 0)
        else:
            _at_least(p, "vocab_size", self.vocab_size, 16)
        _at_least(p, "min_freq", self.min_freq, 1)
        _between(p, "character_coverage", self.character_coverage, 0.9, 1.0)
        _at_least(p, "max_sentences", self.max_sentences, 100)


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
            _at_least(p, name, getattr(self, name), 1)
        _between(p, "dropout", self.dropout, 0.0, 0.99)
        if self.bidirectional and self.hidden_size % 2:
            raise ConfigError(f"{p}hidden_size: must be even with a bidirectional encoder "
                              f"(each direction gets half), got {self.hidden_size}")
        if self.tie_output and self.emb_size != self.hidden_size:
            raise ConfigError(f"{p}tie_output: needs {p}emb_size == {p}hidden_size "
                              f"(got {self.emb_size} and {self.hidden_size})")


@dataclass(frozen=True)
class LMModelConfig:
    """Embedding -> stacked LSTM -> output layer, with the AWD-LSTM regularisers as switches.
    With tie_weights the last LSTM layer has emb_size units (Merity et al. 2017). `init_from`
    (a language-model run folder or checkpoint) starts from its weights and tokenizer: target-
    domain fine-tuning, ULMFiT's second stage."""
    emb_size: int = 400
    hidden_size: int = 1150
    layers: int = 3
    tie_weights: bool = True
    init_range: float = 0.0
    locked_dropout: bool = True
    dropout: float = 0.4
    dropout_input: float = 0.4
    dropout_hidden: float = 0.25
    dropout_embedding: float = 0.1
    weight_drop: float = 0.5
    init_from: str = ""

    def check(self, p: str) -> None:
        for name in ("emb_size", "hidden_size", "layers"):
            _at_least(p, name, getattr(self, name), 1)
        _at_least(p, "init_range", self.init_range, 0.0)
        for name in ("dropout", "dropout_input", "dropout_hidden", "dropout_embedding",
                     "weight_drop"):
            _between(p, name, getattr(self, name), 0.0, 0.99)


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
            _at_least(p, name, getattr(self, name), 1)
        _at_least(p, "head_hidden", self.head_hidden, 0)
        for name in ("dropout", "dropout_input", "dropout_hidden", "dropout_embedding",
                     "weight_drop"):
            _between(p, name, getattr(self, name), 0.0, 0.99)
        if self.init_from and self.bidirectional:
            raise ConfigError(f"{p}bidirectional: must be false with {p}init_from (a language "
                              "model reads left to right)")
        if self.long_text == "chunk" and self.bidirectional:
            raise ConfigError(f"{p}long_text: 'chunk' carries the state forward through a long "
                              f"text; it needs {p}bidirectional: false")


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
        _at_least(p, "lr", self.lr, 0.0, strict=True)
        for name in ("momentum", "weight_decay", "clip_norm", "max_minutes", "min_lr"):
            _at_least(p, name, getattr(self, name), 0.0)
        _between(p, "decay_factor", self.decay_factor, 0.01, 1.0)
        _between(p, "cut_frac", self.cut_frac, 0.0, 0.99)
        _at_least(p, "slanted_ratio", self.slanted_ratio, 1.0)
        _at_least(p, "layer_lr_decay", self.layer_lr_decay, 1.0)
        _between(p, "average_decay", self.average_decay, 0.0, 0.99999)
        _at_least(p, "log_every", self.log_every, 1)
        for name in ("max_epochs", "max_steps", "warmup_steps", "patience", "decay_patience",
                     "decay_start_epoch", "threads", "valid_every"):
            _at_least(p, name, getattr(self, name), 0)
        if not (self.max_epochs or self.max_steps or self.max_minutes):
            raise ConfigError(f"{p}max_epochs, {p}max_steps, {p}max_minutes: set at least one "
                              "limit (0 means no limit)")
        if self.gradual_unfreezing and not self.max_epochs:
            raise ConfigError(f"{p}gradual_unfreezing: unfreezes one layer group per epoch; "
                              f"set {p}max_epochs")


@dataclass(frozen=True)
class TranslateTrainConfig(TrainConfig):
    label_smoothing: float = 0.1
    scheduled_sampling: float = 0.0
    batch_tokens: int = 4096
    valid_bleu: bool = True
    early_stopping_metric: Literal["bleu", "loss", "ppl", "accuracy"] = "bleu"

    def check(self, p: str) -> None:
        super().check(p)
        _between(p, "label_smoothing", self.label_smoothing, 0.0, 0.99)
        _between(p, "scheduled_sampling", self.scheduled_sampling, 0.0, 1.0)
        _at_least(p, "batch_tokens", self.batch_tokens, 1)
        if self.early_stopping_metric == "bleu" and not self.valid_bleu:
            raise ConfigError(f"{p}early_stopping_metric: 'bleu' needs {p}valid_bleu: true")


@dataclass(frozen=True)
class LMTrainConfig(TrainConfig):
    """Truncated BPTT over `batch_size` parallel streams; `loss_per: sequence` sums the NLL over
    each window and averages over streams (Zaremba et al.'s TensorFlow code, where their lr 1 and
    clip 5 are set), `token` takes the mean per token (pytorch/examples)."""
    batch_size: int = 20
    bptt: int = 35
    variable_bptt: bool = False
    loss_per: Literal["token", "sequence"] = "token"
    ar_alpha: float = 0.0
    tar_beta: float = 0.0
    valid_batch_size: int = 10
    valid_every: int = 0
    early_stopping_metric: Literal["bleu", "loss", "ppl", "accuracy"] = "ppl"

    def check(self, p: str) -> None:
        super().check(p)
        _at_least(p, "batch_size", self.batch_size, 1)
        _at_least(p, "bptt", self.bptt, 2)
        _at_least(p, "valid_batch_size", self.valid_batch_size, 1)
        _at_least(p, "ar_alpha", self.ar_alpha, 0.0)
        _at_least(p, "tar_beta", self.tar_beta, 0.0)
        if self.early_stopping_metric == "bleu":
            raise ConfigError(f"{p}early_stopping_metric: 'bleu' is for translation; "
                              "use ppl, loss or accuracy")


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
        _at_least(p, "batch_size", self.batch_size, 1)
        _between(p, "label_smoothing", self.label_smoothing, 0.0, 0.99)
        _between(p, "subword_alpha", self.subword_alpha, 0.0, 1.0)
        if self.early_stopping_metric in ("bleu", "ppl"):
            raise ConfigError(f"{p}early_stopping_metric: use accuracy or loss for a classifier")


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
class GenerateConfig:
    """Sampling defaults of `lstm-nlp generate` and of the report's samples."""
    max_tokens: int = 50
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    batch_size: int = 64

    def check(self, p: str) -> None:
        _at_least(p, "max_tokens", self.max_tokens, 1)
        _at_least(p, "temperature", self.temperature, 0.0)
        _at_least(p, "top_k", self.top_k, 0)
        _between(p, "top_p", self.top_p, 0.0, 1.0)
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
class LMEvalConfig:
    batch_size: int = 1
    bptt: int = 70
    samples: int = 5
    prompts: list[str] = field(default_factory=list)

    def check(self, p: str) -> None:
        _at_least(p, "batch_size", self.batch_size, 1)
        _at_least(p, "bptt", self.bptt, 1)
        _at_least(p, "samples", self.samples, 0)


class _RecipeMethods:
    def check(self, p: str) -> None:
        pass

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ClassifyEvalConfig:
    batch_size: int = 64
    samples: int = 10

    def check(self, p: str) -> None:
        _at_least(p, "batch_size", self.batch_size, 1)
        _at_least(p, "samples", self.samples, 0)


@dataclass(frozen=True)
class TranslateRecipe(_RecipeMethods):
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


@dataclass(frozen=True)
class LMRecipe(_RecipeMethods):
    task: Literal["lm"]
    name: str = ""
    seed: int = 1
    data: LMDataConfig = field(default_factory=LMDataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: LMModelConfig = field(default_factory=LMModelConfig)
    train: LMTrainConfig = field(default_factory=LMTrainConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    eval: LMEvalConfig = field(default_factory=LMEvalConfig)


@dataclass(frozen=True)
class ClassifyRecipe(_RecipeMethods):
    task: Literal["classify"]
    name: str = ""
    seed: int = 1
    data: ClassifyDataConfig = field(default_factory=ClassifyDataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ClassifyModelConfig = field(default_factory=ClassifyModelConfig)
    train: ClassifyTrainConfig = field(default_factory=ClassifyTrainConfig)
    eval: ClassifyEvalConfig = field(default_factory=ClassifyEvalConfig)


@dataclass(frozen=True)
class ChainRecipe(_RecipeMethods):
    """Recipes trained one after the other in one run folder (`<run>/<stage name>/`); each stage
    after the first starts from the one before (its model.init_from is set to it): ULMFiT's
    general LM -> target-domain LM -> classifier. Paths are relative to the chain recipe."""
    task: Literal["chain"]
    name: str = ""
    seed: int = 1
    stages: list[str] = field(default_factory=list)

    def check(self, p: str) -> None:
        if len(self.stages) < 2:
            raise ConfigError("stages: a chain needs at least two recipe files")


Recipe = TranslateRecipe | LMRecipe | ClassifyRecipe | ChainRecipe
RECIPES: dict[str, type] = {"translate": TranslateRecipe, "lm": LMRecipe,
                            "classify": ClassifyRecipe, "chain": ChainRecipe}


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
    if raw.get("task") != "chain":  # a chain's overrides belong to its stages (pipeline)
        raw = apply_overrides(raw, overrides)
    raw.setdefault("name", path.stem)
    if not raw["name"]:
        raw["name"] = path.stem
    return recipe_from_dict(raw)


def recipe_from_dict(raw: dict[str, Any]) -> Recipe:
    """The `task` key picks the recipe class, and with it the valid sections and keys."""
    tasks = ", ".join(RECIPES)
    if "task" not in raw:
        raise ConfigError(f"task: missing; the recipe must name its task ({tasks})")
    cls = RECIPES.get(raw["task"]) if isinstance(raw["task"], str) else None
    if cls is None:
        raise ConfigError(f"task: must be one of {tasks}; got {_show(raw['task'])}")
    return _build(cls, raw, "")


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
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {_show(value)}")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
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


def _hub_named(p: str, fmt: str, hub_name: str) -> None:
    if fmt == "hub" and not hub_name:
        raise ConfigError(f"{p}hub_name: required when {p}format is 'hub' (a dataset id)")


def _at_least(p: str, name: str, value: float, lo: float, strict: bool = False) -> None:
    if value < lo or (strict and value == lo):
        op = ">" if strict else ">="
        raise ConfigError(f"{p}{name}: must be {op} {lo}, got {value}")


def _between(p: str, name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ConfigError(f"{p}{name}: must be between {lo} and {hi}, got {value}")

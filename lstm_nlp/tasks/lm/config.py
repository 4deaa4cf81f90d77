"""The lm task's recipe: its sections and their checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lstm_nlp.config.sections import RecipeMethods, TokenizerConfig, TrainConfig, at_least, between, hub_named
from lstm_nlp.errors import ConfigError


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
        hub_named(p, self.format, self.hub_name)
        between(p, "valid_fraction", self.valid_fraction, 0.0, 0.5)
        if not self.valid and not self.valid_fraction:
            raise ConfigError(f"{p}valid: empty needs {p}valid_fraction above 0 (the share of "
                              "training lines held out for validation)")

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
            at_least(p, name, getattr(self, name), 1)
        at_least(p, "init_range", self.init_range, 0.0)
        for name in ("dropout", "dropout_input", "dropout_hidden", "dropout_embedding",
                     "weight_drop"):
            between(p, name, getattr(self, name), 0.0, 0.99)

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
        at_least(p, "batch_size", self.batch_size, 1)
        at_least(p, "bptt", self.bptt, 2)
        at_least(p, "valid_batch_size", self.valid_batch_size, 1)
        at_least(p, "ar_alpha", self.ar_alpha, 0.0)
        at_least(p, "tar_beta", self.tar_beta, 0.0)
        if self.early_stopping_metric == "bleu":
            raise ConfigError(f"{p}early_stopping_metric: 'bleu' is for translation; "
                              "use ppl, loss or accuracy")

@dataclass(frozen=True)
class GenerateConfig:
    """Sampling defaults of `lstm-nlp generate` and of the report's samples."""
    max_tokens: int = 50
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    batch_size: int = 64

    def check(self, p: str) -> None:
        at_least(p, "max_tokens", self.max_tokens, 1)
        at_least(p, "temperature", self.temperature, 0.0)
        at_least(p, "top_k", self.top_k, 0)
        between(p, "top_p", self.top_p, 0.0, 1.0)
        at_least(p, "batch_size", self.batch_size, 1)

@dataclass(frozen=True)
class LMEvalConfig:
    batch_size: int = 1
    bptt: int = 70
    samples: int = 5
    prompts: list[str] = field(default_factory=list)

    def check(self, p: str) -> None:
        at_least(p, "batch_size", self.batch_size, 1)
        at_least(p, "bptt", self.bptt, 1)
        at_least(p, "samples", self.samples, 0)

@dataclass(frozen=True)
class LMRecipe(RecipeMethods):
    task: Literal["lm"]
    name: str = ""
    seed: int = 1
    data: LMDataConfig = field(default_factory=LMDataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: LMModelConfig = field(default_factory=LMModelConfig)
    train: LMTrainConfig = field(default_factory=LMTrainConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    eval: LMEvalConfig = field(default_factory=LMEvalConfig)

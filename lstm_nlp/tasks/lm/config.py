"""The lm task's recipe: its sections and their checks."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lstm_nlp.config.sections import (DataSection, Number, Section, Text, TokenizerConfig,
                                      TrainConfig, section)


class LMDataConfig(DataSection):
    """`text`: one file per split, `<dir>/<split>` or `<dir>/<split>.txt`, read line by line;
    the other formats read `text_column` through `datasets`. `extra_train` adds more training
    text from files under `dir`, each read by its type (`.txt`/`.tokens` line by line,
    `.tsv`/`.csv`/`.jsonl`/`.parquet`, gzipped or not, by `text_column`). `valid: ""` holds out
    `valid_fraction` of the training lines instead; `test: ""` skips the test evaluation."""
    format: Literal["text", "tsv", "csv", "jsonl", "parquet", "disk", "hub"] = "text"
    dir: Text = "."
    text_column: Text = "text"
    hub_name: Text = ""
    hub_config: Text = ""
    train: Text = "train"
    extra_train: list[Text] = Field(default_factory=list)
    valid: Text = "valid"
    valid_fraction: Number = Field(0.05, ge=0.0, le=0.5)
    test: Text = "test"

    @model_validator(mode="after")
    def _validation_split(self) -> LMDataConfig:
        if not self.valid and not self.valid_fraction:
            raise ValueError("data.valid: empty needs data.valid_fraction above 0 (the share of "
                             "training lines held out for validation)")
        return self

class LMModelConfig(Section):
    """Embedding -> stacked LSTM -> output layer, with the AWD-LSTM regularisers as switches.
    With tie_weights the last LSTM layer has emb_size units (Merity et al. 2017). `init_from`
    (a language-model run folder or checkpoint) starts from its weights and tokenizer: target-
    domain fine-tuning, ULMFiT's second stage."""
    emb_size: int = Field(400, ge=1)
    hidden_size: int = Field(1150, ge=1)
    layers: int = Field(3, ge=1)
    tie_weights: bool = True
    init_range: Number = Field(0.0, ge=0.0)
    locked_dropout: bool = True
    dropout: Number = Field(0.4, ge=0.0, le=0.99)
    dropout_input: Number = Field(0.4, ge=0.0, le=0.99)
    dropout_hidden: Number = Field(0.25, ge=0.0, le=0.99)
    dropout_embedding: Number = Field(0.1, ge=0.0, le=0.99)
    weight_drop: Number = Field(0.5, ge=0.0, le=0.99)
    init_from: Text = ""

class LMTrainConfig(TrainConfig):
    """Truncated BPTT over `batch_size` parallel streams; `loss_per: sequence` sums the NLL over
    each window and averages over streams (Zaremba et al.'s TensorFlow code, where their lr 1 and
    clip 5 are set), `token` takes the mean per token (pytorch/examples)."""
    batch_size: int = Field(20, ge=1)
    bptt: int = Field(35, ge=2)
    variable_bptt: bool = False
    loss_per: Literal["token", "sequence"] = "token"
    ar_alpha: Number = Field(0.0, ge=0.0)
    tar_beta: Number = Field(0.0, ge=0.0)
    valid_batch_size: int = Field(10, ge=1)
    valid_every: int = Field(0, ge=0)
    early_stopping_metric: Literal["bleu", "loss", "ppl", "accuracy"] = "ppl"

    @model_validator(mode="after")
    def _lm_metric(self) -> LMTrainConfig:
        if self.early_stopping_metric == "bleu":
            raise ValueError("train.early_stopping_metric: 'bleu' is for translation; "
                             "use ppl, loss or accuracy")
        return self

class GenerateConfig(Section):
    """Sampling defaults of `lstm-nlp generate` and of the report's samples."""
    max_tokens: int = Field(50, ge=1)
    temperature: Number = Field(1.0, ge=0.0)
    top_k: int = Field(0, ge=0)
    top_p: Number = Field(1.0, ge=0.0, le=1.0)
    batch_size: int = Field(64, ge=1)

class LMEvalConfig(Section):
    batch_size: int = Field(1, ge=1)
    bptt: int = Field(70, ge=1)
    samples: int = Field(5, ge=0)
    prompts: list[Text] = Field(default_factory=list)

class LMRecipe(Section):
    task: Literal["lm"]
    name: Text = ""
    seed: int = 1
    data: LMDataConfig = section()
    tokenizer: TokenizerConfig = section()
    model: LMModelConfig = section()
    train: LMTrainConfig = section()
    generate: GenerateConfig = section()
    eval: LMEvalConfig = section()

"""The classify task's recipe: its sections and their checks."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lstm_nlp.config.sections import (DataSection, Number, Section, Text, TokenizerConfig,
                                      TrainConfig, section)


class ClassifyDataConfig(DataSection):
    """Rows of text and label, read through `datasets` from `<dir>/<split>.<format>` (a `.gz`
    beside it works too), a `save_to_disk` folder or the hub. `valid: ""` holds out
    `valid_fraction` of the training rows instead."""
    format: Literal["tsv", "csv", "jsonl", "parquet", "disk", "hub"] = "tsv"
    dir: Text = "."
    text_column: Text = "text"
    label_column: Text = "label"
    hub_name: Text = ""
    hub_config: Text = ""
    train: Text = "train"
    valid: Text = "valid"
    test: Text = "test"
    valid_fraction: Number = Field(0.1, ge=0.0, le=0.5)
    max_train_examples: int = Field(0, ge=0)

class ClassifyModelConfig(Section):
    """Embedding -> (bi)LSTM -> pooling -> classifier head. With `init_from` (a language model
    trained by lstm-nlp) the embedding and LSTM layers, their sizes and the tokenizer come from
    that model (ULMFiT, Howard & Ruder 2018): emb_size, hidden_size, layers and tie_weights must
    then match it, and the encoder is unidirectional like the language model."""
    emb_size: int = Field(300, ge=1)
    hidden_size: int = Field(512, ge=1)
    layers: int = Field(1, ge=1)
    bidirectional: bool = True
    tie_weights: bool = False
    pooling: Literal["last", "max", "mean", "attention", "concat"] = "max"
    head_hidden: int = Field(0, ge=0)
    dropout: Number = Field(0.5, ge=0.0, le=0.99)
    dropout_input: Number = Field(0.2, ge=0.0, le=0.99)
    dropout_hidden: Number = Field(0.2, ge=0.0, le=0.99)
    dropout_embedding: Number = Field(0.0, ge=0.0, le=0.99)
    weight_drop: Number = Field(0.0, ge=0.0, le=0.99)
    locked_dropout: bool = True
    max_tokens: int = Field(400, ge=1)
    long_text: Literal["head", "tail", "chunk"] = "head"
    chunk_tokens: int = Field(70, ge=1)
    init_from: Text = ""

    @model_validator(mode="after")
    def _unidirectional_when_needed(self) -> ClassifyModelConfig:
        if self.init_from and self.bidirectional:
            raise ValueError("model.bidirectional: must be false with model.init_from (a language "
                             "model reads left to right)")
        if self.long_text == "chunk" and self.bidirectional:
            raise ValueError("model.long_text: 'chunk' carries the state forward through a long "
                             "text; it needs model.bidirectional: false")
        return self

class ClassifyTrainConfig(TrainConfig):
    """Batches of `batch_size` texts of similar length."""
    batch_size: int = Field(32, ge=1)
    label_smoothing: Number = Field(0.0, ge=0.0, le=0.99)
    # > 0: each epoch samples new sentencepiece segmentations
    subword_alpha: Number = Field(0.0, ge=0.0, le=1.0)
    valid_every: int = Field(0, ge=0)
    early_stopping_metric: Literal["bleu", "loss", "ppl", "accuracy"] = "accuracy"

    @model_validator(mode="after")
    def _classifier_metric(self) -> ClassifyTrainConfig:
        if self.early_stopping_metric in ("bleu", "ppl"):
            raise ValueError("train.early_stopping_metric: use accuracy or loss for a classifier")
        return self

class ClassifyEvalConfig(Section):
    batch_size: int = Field(64, ge=1)
    samples: int = Field(10, ge=0)

class ClassifyRecipe(Section):
    task: Literal["classify"]
    name: Text = ""
    seed: int = 1
    data: ClassifyDataConfig = section()
    tokenizer: TokenizerConfig = section()
    model: ClassifyModelConfig = section()
    train: ClassifyTrainConfig = section()
    eval: ClassifyEvalConfig = section()

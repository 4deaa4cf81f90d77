"""The translate task's recipe: its sections and their checks."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lstm_nlp.config.sections import (DataSection, Number, Section, Text, TokenizerConfig,
                                      TrainConfig, section)


class TranslateDataConfig(DataSection):
    format: Literal["parallel", "tsv", "csv", "jsonl", "parquet", "disk", "hub"] = "parallel"
    dir: Text = "."
    src_lang: Text = "src"
    tgt_lang: Text = "tgt"
    src_column: Text = "src"
    tgt_column: Text = "tgt"
    hub_name: Text = ""
    hub_config: Text = ""
    train: Text = "train"
    valid: Text = "valid"
    test: Text = "test"
    max_src_len: int = Field(100, ge=1)
    max_tgt_len: int = Field(100, ge=1)
    max_train_examples: int = Field(0, ge=0)

class TranslateModelConfig(Section):
    emb_size: int = Field(256, ge=1)
    hidden_size: int = Field(512, ge=1)
    enc_layers: int = Field(1, ge=1)
    dec_layers: int = Field(1, ge=1)
    bidirectional: bool = True
    attention: Literal["dot", "general", "bahdanau"] = "general"
    input_feeding: bool = True
    dropout: Number = Field(0.3, ge=0.0, le=0.99)
    tie_output: bool = False
    share_embeddings: bool = False

    @model_validator(mode="after")
    def _sizes_fit(self) -> TranslateModelConfig:
        if self.bidirectional and self.hidden_size % 2:
            raise ValueError("model.hidden_size: must be even with a bidirectional encoder "
                             f"(each direction gets half), got {self.hidden_size}")
        if self.tie_output and self.emb_size != self.hidden_size:
            raise ValueError("model.tie_output: needs model.emb_size == model.hidden_size "
                             f"(got {self.emb_size} and {self.hidden_size})")
        return self

class TranslateTrainConfig(TrainConfig):
    label_smoothing: Number = Field(0.1, ge=0.0, le=0.99)
    scheduled_sampling: Number = Field(0.0, ge=0.0, le=1.0)
    batch_tokens: int = Field(4096, ge=1)
    valid_bleu: bool = True
    early_stopping_metric: Literal["bleu", "loss", "ppl", "accuracy"] = "bleu"

    @model_validator(mode="after")
    def _bleu_validated(self) -> TranslateTrainConfig:
        if self.early_stopping_metric == "bleu" and not self.valid_bleu:
            raise ValueError("train.early_stopping_metric: 'bleu' needs train.valid_bleu: true")
        return self

class DecodeConfig(Section):
    beam_size: int = Field(5, ge=1)
    length_penalty: Number = Field(1.0, ge=0.0)
    max_len_ratio: Number = Field(2.0, gt=0.0)
    batch_size: int = Field(128, ge=1)

class EvalConfig(Section):
    tokenize: Literal["13a", "intl", "none", "char", "zh", "ja-mecab", "ko-mecab", "flores101",
                      "flores200"] = "13a"
    lowercase: bool = False
    samples: int = Field(5, ge=0)

class TranslateRecipe(Section):
    task: Literal["translate"]
    name: Text = ""
    seed: int = 1
    data: TranslateDataConfig = section()
    tokenizer: TokenizerConfig = section()
    model: TranslateModelConfig = section()
    train: TranslateTrainConfig = section()
    decode: DecodeConfig = section()
    eval: EvalConfig = section()

    @model_validator(mode="after")
    def _shared_vocabulary(self) -> TranslateRecipe:
        if self.model.share_embeddings and not self.tokenizer.joint:
            raise ValueError("model.share_embeddings: needs tokenizer.joint: true "
                             "(one vocabulary for both sides)")
        return self

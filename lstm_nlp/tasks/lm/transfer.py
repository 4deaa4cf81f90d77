"""Starting from a language model trained by lstm-nlp (`model.init_from`): its tokenizer, and its
embedding and LSTM weights, after checking that the architectures match (ULMFiT, Howard & Ruder
2018: general LM -> target-domain LM -> classifier)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch

from lstm_nlp.config.sections import TokenizerConfig
from lstm_nlp.data.tokenizer import (Tokenizer, Trainer, load_tokenizer, save_tokenizer,
                                     train_or_load_one, train_tokenizer)
from lstm_nlp.errors import CheckpointError, ConfigError
from lstm_nlp.tasks.lm.config import LMRecipe
from lstm_nlp.training import checkpoint

ARCHITECTURE = ("emb_size", "hidden_size", "layers", "tie_weights")
ENCODER = ("embedding.", "lstms.")  # the parameters a classifier takes from a language model


@dataclass
class Pretrained:
    weights: dict[str, torch.Tensor]
    tokenizer: Tokenizer
    recipe: LMRecipe
    path: Path


def load_language_model(source: str) -> Pretrained:
    path = checkpoint.resolve(Path(source))
    ckpt = checkpoint.load(path)
    recipe = checkpoint.recipe_of(ckpt, path)
    if recipe.task != "lm":
        raise ConfigError(f"model.init_from: {source} is a '{recipe.task}' model; it must be a "
                          "language model (task: lm) trained by lstm-nlp")
    return Pretrained(ckpt["model"], checkpoint.tokenizer_of(ckpt, path), recipe, path)


def check_compatible(model_cfg: Any, tokenizer_cfg: TokenizerConfig, pre: Pretrained) -> None:
    """The recipe's layer sizes must be the language model's, and its tokenizer section must be
    left at the defaults or equal the language model's (whose tokenizer is reused)."""
    for key in ARCHITECTURE:
        mine, theirs = getattr(model_cfg, key), getattr(pre.recipe.model, key)
        if mine != theirs:
            raise ConfigError(f"model.{key}: {mine!r} here but {theirs!r} in the language model "
                              f"{pre.path}; they must match for model.init_from")
    if tokenizer_cfg not in (TokenizerConfig(), pre.recipe.tokenizer):
        raise ConfigError(f"tokenizer: model.init_from reuses the vocabulary of {pre.path} "
                          f"({pre.recipe.tokenizer.type}, {pre.tokenizer.vocab_size:,} entries); "
                          "leave the tokenizer section out or make it equal to that recipe's")


def load_weights(model: torch.nn.Module, pre: Pretrained, prefixes: tuple[str, ...] = ()) -> int:
    """Copy the language model's parameters whose names start with `prefixes` (all when empty)
    into `model`; every such parameter of `model` must be found, with its shape. -> count."""
    own = model.state_dict()
    wanted = [k for k in own if not prefixes or k.startswith(prefixes)]
    missing = [k for k in wanted if k not in pre.weights]
    if missing:
        raise CheckpointError(f"{pre.path}: the language model has no {missing[0]} "
                              f"({len(missing)} parameters missing); architectures differ")
    for k in wanted:
        if pre.weights[k].shape != own[k].shape:
            raise CheckpointError(f"{pre.path}: {k} is {tuple(pre.weights[k].shape)} in the "
                                  f"language model, {tuple(own[k].shape)} here (vocabulary or "
                                  "layer sizes differ)")
    model.load_state_dict({k: pre.weights[k] for k in wanted}, strict=not prefixes)
    return len(wanted)


def tokenizer_for_run(path: Path, model_cfg: Any, tokenizer_cfg: TokenizerConfig,
                      texts: Iterable[str], seed: int, resume: bool,
                      trainer: Trainer = train_tokenizer) -> tuple[Tokenizer, Pretrained | None]:
    """The run's tokenizer (stored at `path`): the language model's when starting from one
    (returned too, for its weights), else loaded or trained from `texts` by `trainer`. A
    resumed run keeps the tokenizer it stored."""
    if model_cfg.init_from and not resume:
        pre = load_language_model(model_cfg.init_from)
        check_compatible(model_cfg, tokenizer_cfg, pre)
        save_tokenizer(path, pre.tokenizer)
        return load_tokenizer(path), pre
    return train_or_load_one(path, tokenizer_cfg, texts, seed, trainer), None

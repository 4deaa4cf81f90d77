"""Checkpoints: state dicts + the resolved recipe (plain dict) + the tokenizer models, written
atomically and loaded with `weights_only=True` (loading never runs code from the file).
A checkpoint alone rebuilds the model and its tokenizers (`load_model`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from lstm_nlp.config import Recipe, recipe_from_dict
from lstm_nlp.data.tokenizer import Tokenizer, TokenizerPair, tokenizer_from_state
from lstm_nlp.errors import CheckpointError, ConfigError, LstmNlpError
from lstm_nlp.tasks import registry

FORMAT = "lstm-nlp-checkpoint"
VERSION = 1


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    payload = {"format": FORMAT, "version": VERSION, **payload}
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle error, unsafe global: all "not a checkpoint"
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable lstm-nlp checkpoint "
                              f"(corrupt, truncated or foreign file): {reason}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an lstm-nlp checkpoint")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')} is not "
                              f"supported (this lstm-nlp reads version {VERSION})")
    return ckpt


def resolve(model_path: Path) -> Path:
    """A run folder means its best checkpoint (else its last); a file means itself."""
    model_path = Path(model_path)
    chain = model_path / "chain.json"
    if model_path.is_dir() and chain.is_file():  # a chain answers with its last stage
        try:
            folders = json.loads(chain.read_text(encoding="utf-8"))["folders"]
        except (ValueError, KeyError, TypeError):
            raise CheckpointError(f"{chain}: unreadable chain description") from None
        return resolve(model_path / folders[-1])
    if model_path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (model_path / name).is_file():
                return model_path / name
        raise CheckpointError(f"{model_path}: no checkpoint in this folder (best.pt or last.pt)")
    if not model_path.exists():
        raise CheckpointError(f"model not found: {model_path} (give a run folder or a .pt file)")
    return model_path


def recipe_of(ckpt: dict[str, Any], path: Path) -> Recipe:
    try:
        return recipe_from_dict(ckpt["recipe"])
    except (KeyError, LstmNlpError) as e:
        raise CheckpointError(f"{path}: its recipe does not fit this lstm-nlp: {e}") from None


def tokenizers_of(ckpt: dict[str, Any], path: Path) -> TokenizerPair:
    try:
        return TokenizerPair.from_state(ckpt["tokenizer"])
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: tokenizer missing from checkpoint ({e})") from None
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None


def tokenizer_of(ckpt: dict[str, Any], path: Path) -> Tokenizer:
    """The single tokenizer of a language model or classifier checkpoint."""
    try:
        state = ckpt["tokenizer"]
        return tokenizer_from_state(state["kind"], state["model"])
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: tokenizer missing from checkpoint ({e})") from None
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None


def load_state(module: torch.nn.Module, state: dict[str, Any], path: Path, what: str) -> None:
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError) as e:
        first = str(e).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])[:300]
        raise CheckpointError(f"{path}: {what} does not match the recipe's model: {detail}") \
            from None


def load_model(model_path: Path):
    """A run folder (its best checkpoint) or a checkpoint file -> (model in eval mode, tokenizer
    or tokenizer pair, recipe), whatever the task (its `rebuild` makes the model)."""
    path = resolve(model_path)
    ckpt = load(path)
    recipe = recipe_of(ckpt, path)
    model, tok = registry.get(recipe.task).api().rebuild(ckpt, recipe, path)
    load_state(model, ckpt["model"], path, "model weights")
    model.eval()
    return model, tok, recipe


def load_for(model_path: Path, task: str, verb: str):
    """`load_model` for a verb that takes models of one task; another task's model is refused
    with the verbs that do take it."""
    model, tok, recipe = load_model(model_path)
    if recipe.task != task:
        theirs = registry.get(recipe.task)
        raise ConfigError(f"{model_path} is a {theirs.noun} model; {verb} needs a "
                          f"{registry.get(task).noun} model (this one works with: "
                          f"{', '.join(theirs.verbs)})")
    return model, tok, recipe

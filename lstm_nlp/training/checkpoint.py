"""Checkpoints: state dicts + the resolved recipe (plain dict) + the tokenizer models, written
atomically and loaded with `weights_only=True` (loading never runs code from the file).
A checkpoint alone rebuilds the model and its tokenizers (`load_model`)."""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from lstm_nlp import filesystem
from lstm_nlp.config import Recipe, recipe_from_dict
from lstm_nlp.data.tokenizer import Tokenizer, TokenizerPair, tokenizer_from_state
from lstm_nlp.errors import (CheckpointError, ConfigError, FileSystemError, LstmNlpError,
                             check_format)
from lstm_nlp.export import folder as export_folder
from lstm_nlp.tasks import registry
from lstm_nlp.training import devices

FORMAT = "lstm-nlp-checkpoint"
VERSION = 1
KEPT_FOLDER = "checkpoints"  # train.keep_checkpoints: <run>/checkpoints/step-<step>.pt
_KEPT_NAME = re.compile(r"step-(\d+)\.pt")


def kept_checkpoints(run_dir: Path) -> list[Path]:
    """A run's kept validation checkpoints (train.keep_checkpoints), oldest step first."""
    folder = Path(run_dir) / KEPT_FOLDER
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir()
             if (m := _KEPT_NAME.fullmatch(p.name)) and p.is_file()]
    return [p for _, p in sorted(found)]


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`: a crash or a
    full disk leaves the previous checkpoint as it was. A failed write removes its partial temp
    file (which would keep the disk full) and says, for a full disk, how much space it needs."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    payload = {"format": FORMAT, "version": VERSION, **payload}
    try:
        _write(tmp, payload)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise _save_refused(path, payload, e) from None
        raise


def _write(tmp: Path, payload: dict[str, Any]) -> None:
    with open(tmp, "wb") as f:
        sink = _Sink(f)
        try:
            torch.save(payload, sink)
        except RuntimeError:  # torch's writer reports a failed write as its own RuntimeError
            if sink.error is not None:
                raise sink.error from None
            raise
        f.flush()
        os.fsync(f.fileno())


class _Sink:
    """A binary file for torch.save that keeps the OSError of a failed write (torch replaces it
    with a RuntimeError that no longer says 'disk full'); `file=None` only counts the bytes."""

    def __init__(self, file=None) -> None:
        self.file, self.error, self.size = file, None, 0

    def write(self, data) -> int:
        n = memoryview(data).nbytes
        if self.file is not None:
            try:
                self.file.write(data)
            except OSError as e:
                self.error = e
                raise
        self.size += n
        return n

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()


def _save_refused(path: Path, payload: dict[str, Any], error: OSError) -> FileSystemError:
    """One line: the path and the reason; for a full disk, the checkpoint's size (counted by
    serializing it once more, writing nothing) and the space left."""
    if error.errno not in filesystem.FULL:
        return filesystem.refusal("cannot save", path, error)
    counter = _Sink()
    torch.save(payload, counter)
    free = filesystem.free_bytes(path.parent)
    space = f"; {filesystem.size_text(free)} free on that file system" if free is not None else ""
    return FileSystemError(f"cannot save {path}: {filesystem.reason(error)} (the checkpoint "
                           f"needs about {filesystem.size_text(counter.size)}{space}); free "
                           "some space, then continue with --resume")


def load(path: Path, device: torch.device | None = None) -> dict[str, Any]:
    """The checkpoint's contents, its tensors on `device` (the CPU when None). A safetensors
    export's weights file gives the same contents (its weights, recipe and tokenizers)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from lstm_nlp.export import weights

        state = weights.read(path)
        state["model"] = {k: v.to(device or devices.CPU) for k, v in state["model"].items()}
        return {"format": FORMAT, "version": VERSION, **state}
    try:
        ckpt = torch.load(path, map_location=device or devices.CPU, weights_only=True)
    except Exception as e:  # truncated zip, pickle error, unsafe global: all "not a checkpoint"
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable lstm-nlp checkpoint "
                              f"(corrupt, truncated or foreign file): {reason}") from None
    check_format(ckpt, path, FORMAT, VERSION, "checkpoint", "checkpoint")
    return ckpt


def resolve(model_path: Path) -> Path:
    """A run folder means its best checkpoint (else its last); a safetensors export folder its
    weights file; a file means itself."""
    model_path = Path(model_path)
    manifest = export_folder.read_manifest(model_path) if model_path.is_dir() else None
    if manifest is not None:
        if manifest.get("kind") == "onnx":
            raise CheckpointError(f"{model_path} is an ONNX export: translate with it through "
                                  "--backend onnxruntime (the other verbs take a run folder, a "
                                  "checkpoint or a safetensors export)")
        return export_folder.member(model_path, manifest.get("weights"))
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


def load_model(model_path: Path, device: torch.device | None = None):
    """A run folder (its best checkpoint) or a checkpoint file -> (model in eval mode on `device`
    (the CPU when None), tokenizer or tokenizer pair, recipe), whatever the task (its `rebuild`
    makes the model). A checkpoint loads on any device, whichever it was saved from."""
    device = device or devices.CPU
    path = resolve(model_path)
    ckpt = load(path, device)
    recipe = recipe_of(ckpt, path)
    model, tok = registry.get(recipe.task).api().rebuild(ckpt, recipe, path)
    model.to(device)
    load_state(model, ckpt["model"], path, "model weights")
    model.eval()
    return model, tok, recipe


def load_for(model_path: Path, task: str, verb: str, device: torch.device | None = None):
    """`load_model` for a verb that takes models of one task; another task's model is refused
    with the verbs that do take it."""
    model, tok, recipe = load_model(model_path, device)
    if recipe.task != task:
        theirs = registry.get(recipe.task)
        raise ConfigError(f"{model_path} is a {theirs.noun} model; {verb} needs a "
                          f"{registry.get(task).noun} model (this one works with: "
                          f"{', '.join(theirs.verbs)})")
    return model, tok, recipe

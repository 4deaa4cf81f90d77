"""Checkpoint averaging (Marian, fairseq's average_checkpoints): the elementwise mean of the
weights of several checkpoints of one model, as a checkpoint every verb takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lstm_nlp.errors import CheckpointError
from lstm_nlp.training import checkpoint

# what only resume needs, or what describes one checkpoint and not the average
_DROPPED = ("format", "version", "optimizer", "rng", "cuda_rng", "mps_rng", "task_state",
            "average", "scaler", "world_size", "ranks")


def _model_section(ckpt: dict[str, Any]) -> tuple[Any, Any]:
    recipe = ckpt.get("recipe") or {}
    return recipe.get("task"), recipe.get("model")


def average_checkpoints(paths: list[Path]) -> dict[str, Any]:
    """The payload for checkpoint.save: the mean of the checkpoints' weights (floating-point
    tensors summed in float64, cast back to their dtype; integer and bool buffers from the last
    checkpoint), the last one's recipe, tokenizer and position, and `averaged_from`."""
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise CheckpointError(f"averaging needs at least 2 checkpoints; got {len(paths)}")
    first = checkpoint.load(paths[0])
    if not isinstance(first.get("model"), dict):
        raise CheckpointError(f"{paths[0]}: no model weights in this checkpoint")
    section = _model_section(first)
    reference = {k: (tuple(v.shape), v.dtype) for k, v in first["model"].items()}
    sums = {k: v.to(torch.float64) for k, v in first["model"].items() if v.is_floating_point()}
    last = first
    for path in paths[1:]:
        ckpt = checkpoint.load(path)
        state = ckpt.get("model")
        if not isinstance(state, dict):
            raise CheckpointError(f"{path}: no model weights in this checkpoint")
        if _model_section(ckpt) != section:
            raise CheckpointError(f"{path}: a different task or model section than {paths[0]}; "
                                  "only checkpoints of one model average")
        if set(state) != set(reference):
            key = sorted(set(state) ^ set(reference))[0]
            raise CheckpointError(f"{path}: its weights differ from {paths[0]}'s at {key} "
                                  "(present in one only)")
        for key, tensor in state.items():
            if (tuple(tensor.shape), tensor.dtype) != reference[key]:
                raise CheckpointError(
                    f"{path}: {key} has shape {tuple(tensor.shape)} ({tensor.dtype}), "
                    f"{reference[key][0]} ({reference[key][1]}) in {paths[0]}")
            if key in sums:
                sums[key] += tensor.to(torch.float64)
        last = ckpt
    n = len(paths)
    model = {key: (sums[key] / n).to(dtype) if key in sums else last["model"][key]
             for key, (_, dtype) in reference.items()}
    kept = {k: v for k, v in last.items() if k not in _DROPPED}
    return {**kept, "model": model, "averaged_from": [str(p) for p in paths]}


def checkpoints_to_average(sources: list[Path], last: int | None) -> list[Path]:
    """Files as given; a run folder with `last` gives its `last` newest kept checkpoints."""
    found: list[Path] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            kept = checkpoint.kept_checkpoints(source)
            names = (f"{kept[0].name} ... {kept[-1].name}" if len(kept) > 2
                     else ", ".join(p.name for p in kept))
            have = f"{source} has {len(kept)} kept checkpoint{'s' if len(kept) != 1 else ''}" + \
                (f" ({names})" if kept else "")
            if last is None:
                raise CheckpointError(f"{have}; give --last N to average its N newest")
            if last > len(kept):
                raise CheckpointError(f"{have}; --last {last} asks for more; train with "
                                      "train.keep_checkpoints")
            found.extend(kept[len(kept) - last:])
        elif not source.exists():
            raise CheckpointError(f"checkpoint not found: {source}")
        else:
            found.append(source)
    if len(found) < 2:
        raise CheckpointError(f"averaging needs at least 2 checkpoints; got {len(found)}"
                              + (f" ({found[0]})" if found else ""))
    return found

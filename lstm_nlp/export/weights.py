"""The safetensors export, for any task: the model's weights alone in `model.safetensors` (no
pickle: any safetensors reader takes them, and loading runs no code), with the recipe, the
tokenizer files and the checkpoint's other plain values (class names, training position) in the
manifest, which is all that rebuilds the model. Every verb takes such a folder, or its
`.safetensors` file, as `-m` (`training/checkpoint.py` reads it back through `read`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from lstm_nlp.errors import CheckpointError
from lstm_nlp.export import folder as export_folder
from lstm_nlp.extras import require

WEIGHTS = "model.safetensors"
FEATURE = "the safetensors format"
# safetensors header entry: {name: the name whose tensor it shares (tied weights)}
ALIASES = "lstm_nlp_aliases"
# checkpoint entries that are not copied into the manifest: the weights, the tokenizers (files
# of their own), and what only resuming a run needs
_NOT_COPIED = {"format", "version", "model", "tokenizer"}


def write(folder: Path, ckpt: dict[str, Any], source: Path) -> dict[str, Any]:
    """model.safetensors, the tokenizer files and the manifest into `folder` -> the manifest."""
    st = require("safetensors.torch", "safetensors", FEATURE)
    tensors, aliases = _deduplicated(ckpt["model"])
    # bytes written here, not save_file: that makes the file readable by its owner only
    (Path(folder) / WEIGHTS).write_bytes(st.save(tensors, metadata={ALIASES: json.dumps(aliases)}))
    task = ckpt["recipe"]["task"]
    return export_folder.write_manifest(folder, "safetensors", task, source, {
        "weights": WEIGHTS,
        "tokenizer": export_folder.write_tokenizers(folder, ckpt["tokenizer"], task),
        "recipe": ckpt["recipe"],
        "checkpoint": _plain_values(ckpt),
    })


def _deduplicated(state: dict[str, torch.Tensor]
                  ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """safetensors refuses tensors that share memory: a tied weight (output layer = target
    embeddings) is stored once, the other names listed as aliases of it."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, tensor in state.items():
        view = (tensor.data_ptr(), tuple(tensor.shape), tensor.stride(), tensor.dtype)
        if tensor.numel() and view in seen:
            aliases[name] = seen[view]
        else:
            seen[view] = name
            tensors[name] = tensor.detach().contiguous()
    return tensors, aliases


def _plain_values(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's entries that are plain JSON values (task, class names, training
    position); tensors other than the weights (optimizer, RNG, averaged weights) only resume a
    run and stay behind."""
    kept = {}
    for key, value in ckpt.items():
        if key in _NOT_COPIED or key == "recipe":
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        kept[key] = value
    return kept


def read(path: Path) -> dict[str, Any]:
    """A safetensors export (its .safetensors file) -> a checkpoint's entries: weights, recipe,
    tokenizer state and the plain values the manifest kept."""
    path = Path(path)
    folder = path.parent
    manifest = export_folder.read_manifest(folder)
    if manifest is None or manifest.get("kind") != "safetensors":
        raise CheckpointError(f"{path}: no safetensors manifest beside it (a .safetensors file "
                              "alone has weights but no recipe or tokenizer); give the folder "
                              "that lstm-nlp export --format safetensors wrote")
    st = require("safetensors", "safetensors", FEATURE)
    try:
        with st.safe_open(str(path), framework="pt") as f:
            aliases = json.loads((f.metadata() or {}).get(ALIASES, "{}"))
            state = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as e:  # safetensors raises its own error types for a damaged header
        raise CheckpointError(f"{path}: not a readable safetensors file: "
                              f"{str(e).strip()[:160] or type(e).__name__}") from None
    for name, target in aliases.items():
        state[name] = state[target]
    return {**manifest.get("checkpoint", {}), "recipe": manifest.get("recipe"),
            "tokenizer": export_folder.read_tokenizers(folder, manifest), "model": state}

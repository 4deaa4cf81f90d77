"""`lstm-nlp export`: a checkpoint (run folder or file) -> an export folder, ONNX graphs (tasks
whose registry entry names an `onnx_module`: translation) or safetensors weights (any task)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from lstm_nlp.errors import ConfigError
from lstm_nlp.export import folder as export_folder
from lstm_nlp.export import weights
from lstm_nlp.extras import require
from lstm_nlp.tasks import registry
from lstm_nlp.training import checkpoint

FORMATS = ("onnx", "safetensors")
_LIBRARIES = {"onnx": ("onnx", "ONNX export"), "safetensors": ("safetensors", weights.FEATURE)}


def export(model_path: Path, fmt: str, output: Path, overwrite: bool = False) -> dict[str, Any]:
    """Write the export folder `output` (atomically) -> its manifest. A missing library, an
    output that cannot be written and a model that does not export are refused before anything
    is written."""
    module, feature = _LIBRARIES[fmt]
    require(module, fmt, feature)
    export_folder.check_output(output, overwrite)
    path = checkpoint.resolve(model_path)
    if fmt == "safetensors":
        ckpt = checkpoint.load(path)
        checkpoint.recipe_of(ckpt, path)  # a recipe this lstm-nlp reads, or one line saying why
        with export_folder.staged(output) as tmp:
            return weights.write(tmp, ckpt, path)
    model, tok, recipe = checkpoint.load_model(path)
    spec = registry.get(recipe.task)
    if not spec.onnx_module:
        onnx_tasks = [s.noun for s in registry.TASKS.values() if s.onnx_module]
        raise ConfigError(f"{model_path} is a {spec.noun} model; ONNX export is for "
                          f"{' and '.join(onnx_tasks)} models (--format safetensors exports "
                          "any model)")
    with export_folder.staged(output) as tmp:
        entries = importlib.import_module(spec.onnx_module).export_onnx(model, tok, recipe, tmp)
        return export_folder.write_manifest(tmp, "onnx", recipe.task, path, entries)

"""Export folders: `manifest.json` (what the folder holds and how to use it), the tokenizer model
files, and the format's own files, written into a temporary folder beside the destination and
renamed into place at the end, so that a failed export leaves nothing half written. Imports no
torch."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

from lstm_nlp import __version__, filesystem
from lstm_nlp.errors import CheckpointError, ConfigError, FileSystemError, check_format

MANIFEST = "manifest.json"
FORMAT = "lstm-nlp-export"
VERSION = 1
TOKENIZER_FOLDER = "tokenizer"


def check_output(output: Path, overwrite: bool) -> None:
    """Before the model loads: `output` is a folder that may be made (or, with --overwrite,
    replaced) and its parent takes new entries; as `train` treats run folders."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise FileSystemError(f"cannot write export folder {output}: it is a file")
    if output.is_dir() and any(output.iterdir()):
        if not overwrite:
            raise ConfigError(f"export folder {output} already exists; --overwrite replaces it, "
                              "or give another -o")
        filesystem.check_removable(output, "export folder")
    parent = output.absolute().parent
    with filesystem.refused(f"cannot create export folder {output} in", parent):
        parent.mkdir(parents=True, exist_ok=True)
    filesystem.probe_writable(parent, f"export folder {output} in")


@contextlib.contextmanager
def staged(output: Path) -> Iterator[Path]:
    """A new temporary folder beside `output` to write into; when the block ends without an
    error it becomes `output` (an earlier `output` is replaced), else it is removed."""
    output = Path(output)
    tmp = output.with_name(f".{output.name}.tmp-{uuid.uuid4().hex[:8]}")
    with filesystem.refused("cannot create export folder", tmp):
        tmp.mkdir()
    try:
        yield tmp
        _install(tmp, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _install(tmp: Path, output: Path) -> None:
    """Rename `tmp` to `output`; an existing `output` is first renamed aside, then removed."""
    old = output.with_name(f".{output.name}.old-{uuid.uuid4().hex[:8]}")
    with filesystem.refused("cannot replace export folder", output):
        if output.exists():
            os.rename(output, old)
        os.rename(tmp, output)
    shutil.rmtree(old, ignore_errors=True)


def write_manifest(folder: Path, kind: str, task: str, source: Path,
                   content: dict[str, Any]) -> dict[str, Any]:
    """manifest.json: format, version, kind (onnx | safetensors), task, lstm-nlp version, the
    checkpoint it came from, then `content` (the kind's own entries)."""
    manifest = {"format": FORMAT, "version": VERSION, "kind": kind, "task": task,
                "lstm_nlp_version": __version__, "source": str(source), **content}
    (Path(folder) / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of an export folder; None when `folder` is not one (no manifest.json)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not a readable manifest ({e})") from None
    check_format(manifest, path, FORMAT, VERSION, "export manifest", "export")
    return manifest


def member(folder: Path, name: Any) -> Path:
    """A file the manifest names (`name`), which must be in the folder."""
    if not isinstance(name, str) or not (Path(folder) / name).is_file():
        raise CheckpointError(f"{folder}: {name} is missing (an incomplete export folder)")
    return Path(folder) / name


def write_tokenizers(folder: Path, state: dict[str, Any], task: str) -> dict[str, Any]:
    """The tokenizer models of a checkpoint (its `tokenizer` state) as files, named as in a
    run folder (joint.model, or src.model and tgt.model; <task>.model for a single one)
    -> the manifest's entry: {"kind": ..., "files": {state key: path in the folder}}."""
    names = {"src": "src.model" if "tgt" in state else "joint.model", "tgt": "tgt.model",
             "model": f"{task}.model"}
    (Path(folder) / TOKENIZER_FOLDER).mkdir()
    files = {}
    for key, proto in state.items():
        if key == "kind":
            continue
        files[key] = f"{TOKENIZER_FOLDER}/{names[key]}"
        (Path(folder) / files[key]).write_bytes(bytes(proto))
    return {"kind": state.get("kind", "sentencepiece"), "files": files}


def read_tokenizers(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest's tokenizer files back as a checkpoint's `tokenizer` state."""
    entry = manifest.get("tokenizer")
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict):
        raise CheckpointError(f"{Path(folder) / MANIFEST}: no tokenizer entry")
    state: dict[str, Any] = {"kind": entry.get("kind", "sentencepiece")}
    for key, name in entry["files"].items():
        state[key] = member(folder, name).read_bytes()
    return state

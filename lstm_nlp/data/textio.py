"""Reading the text that inference verbs consume, and where their reports go."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Iterator, TextIO

from lstm_nlp.errors import DataError, FileSystemError
from lstm_nlp.filesystem import probe_writable, refused

HELD_OUT = "valid (held out from train)"  # the validation rows of a recipe with `valid: ""`


def split_name(recipe, split: str) -> str:
    """`train`, `valid`, `test` mean the recipe's splits of that role; anything else is a name.
    A recipe without a validation split answers HELD_OUT for `valid`; without a test split,
    `test` is an error."""
    if split not in ("train", "valid", "test"):
        return split
    name = getattr(recipe.data, split)
    if not name and split == "valid" and hasattr(recipe.data, "valid_fraction"):
        return HELD_OUT
    if not name:
        raise DataError(f"the recipe has no {split} split (data.{split} is empty); give "
                        "another split or a file")
    return name


def check_input(path: Path | None) -> None:
    """An input file (-i) that cannot be read is refused before the model loads."""
    if path is not None:
        _open_input(path).close()


def _open_input(path: Path) -> BinaryIO:
    with refused("cannot read", path):
        return open(path, "rb")


def read_input_lines(stream: TextIO | None, path: Path | None, chunk: int) -> Iterator[list[str]]:
    """Chunks of lines from a file or stdin, LF or CRLF; bad UTF-8 is reported with its line."""
    source = _open_input(path) if path else stream.buffer
    origin = str(path) if path else "stdin"
    try:
        lines = []
        for lineno, raw in enumerate(source, start=1):
            try:
                lines.append(raw.decode("utf-8").rstrip("\r\n"))
            except UnicodeDecodeError as e:
                raise DataError(f"{origin}: line {lineno}, byte {e.start + 1}: not valid UTF-8 "
                                f"(0x{raw[e.start]:02x})") from None
            if len(lines) >= chunk:
                yield lines
                lines = []
        if lines:
            yield lines
    finally:
        if path:
            source.close()


def report_file(stem: Path, suffix: str) -> Path:
    """`eval-my.de-beam5` + `.json`: a report's file beside its siblings (`with_suffix` would
    replace the `.de` of a file name kept in the stem)."""
    return stem.with_name(stem.name + suffix)


def report_folder(model_path: Path, out_dir: Path | None) -> Path:
    """Where eval writes its reports (--out-dir, else the model's folder), created and found
    writable: `eval` asks for it before it scores, so that a folder it cannot write fails first."""
    model_path = Path(model_path)
    folder = Path(out_dir) if out_dir else model_path if model_path.is_dir() else model_path.parent
    with refused("cannot create report folder", folder):
        folder.mkdir(parents=True, exist_ok=True)
    try:
        probe_writable(folder, "report folder")
    except FileSystemError as e:
        if out_dir:
            raise
        raise FileSystemError(f"{e}; give --out-dir to write the reports elsewhere") from None
    return folder

"""Reading the text that inference verbs consume, and where their reports go."""

from __future__ import annotations

import os
import stat
import sys
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


PAUSE_S = 0.05  # a stream quiet this long has its complete lines decoded (not kept for a chunk)
READ_SIZE = 1 << 16  # bytes a stream read asks for


def read_input_lines(stream: TextIO | None, path: Path | None, chunk: int) -> Iterator[list[str]]:
    """Chunks of lines from a file or stdin, LF or CRLF; bad UTF-8 is reported with its line.

    A file (-i, or stdin redirected from one) comes in chunks of `chunk` lines. A pipe, terminal
    or socket on stdin comes as it arrives: the complete lines gathered so far are yielded when
    nothing more arrives within PAUSE_S (a person typing, `tail -f`), or when `chunk` lines are
    gathered (a fast pipe still fills whole chunks)."""
    if path:
        source = _open_input(path)
        try:
            yield from _file_chunks(source, str(path), chunk)
        finally:
            source.close()
        return
    fd = _stream_fd(stream.buffer)
    if fd is None:
        yield from _file_chunks(stream.buffer, "stdin", chunk)
    else:
        yield from _stream_chunks(fd, "stdin", chunk)


def _line(raw: bytes, origin: str, lineno: int) -> str:
    """One line of input as text, its LF or CRLF gone; invalid UTF-8 is a DataError naming the
    line and the byte."""
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as e:
        raise DataError(f"{origin}: line {lineno}, byte {e.start + 1}: not valid UTF-8 "
                        f"(0x{raw[e.start]:02x})") from None


def _file_chunks(source: BinaryIO, origin: str, chunk: int) -> Iterator[list[str]]:
    lines = []
    for lineno, raw in enumerate(source, start=1):
        lines.append(_line(raw, origin, lineno))
        if len(lines) >= chunk:
            yield lines
            lines = []
    if lines:
        yield lines


def _stream_fd(source) -> int | None:
    """The descriptor of a stream to read as it arrives: a pipe, terminal or socket that select()
    can wait on. None for a regular file (read in full chunks), for a stream without a descriptor
    (a test's BytesIO) and where select() cannot wait on it (Windows pipes)."""
    try:
        fd = source.fileno()
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        if sys.platform == "win32":
            return None
        import select
        select.select([fd], [], [], 0)
    except (AttributeError, OSError, ValueError, ImportError):  # UnsupportedOperation is OSError
        return None
    return fd


def _stream_chunks(fd: int, origin: str, chunk: int) -> Iterator[list[str]]:
    """Complete lines read from fd as they come; a partial last line waits for its newline or
    the end of the input. Holds at most `chunk` lines, one read and the partial line."""
    import select

    lines: list[str] = []
    pending: list[bytes] = []  # the pieces of a line whose newline has not come yet
    lineno = 0
    while True:
        if lines and not select.select([fd], [], [], PAUSE_S)[0]:
            yield lines
            lines = []
        data = os.read(fd, READ_SIZE)
        if not data:
            break
        parts = data.split(b"\n")
        if len(parts) == 1:
            pending.append(data)
            continue
        if pending:
            pending.append(parts[0])
            parts[0] = b"".join(pending)
        tail = parts.pop()
        pending = [tail] if tail else []
        for raw in parts:
            lineno += 1
            lines.append(_line(raw, origin, lineno))
            if len(lines) >= chunk:
                yield lines
                lines = []
    if pending:  # a last line without its newline (a final "x\r" as a file gives it)
        lines.append(_line(b"".join(pending), origin, lineno + 1))
    if lines:
        yield lines


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

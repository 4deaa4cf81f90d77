"""What the operating system refuses, in the user's words: one line that names the path, what
lstm-nlp tried to do with it and the reason (`cannot write run folder runs/x: Read-only file
system`), raised as a FileSystemError before hours of work depend on it where that can be
checked. Imports no torch: the CLI's output file uses it too."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Iterator

from lstm_nlp.errors import FileSystemError

# errno values that say the disk cannot take the bytes, in words a user acts on.
FULL = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded"}


def size_text(n_bytes: float) -> str:
    """1234567 -> '1.2 MB' (decimal units, as disk sizes are sold and `df -H` shows them)."""
    if n_bytes < 1000:
        return f"{n_bytes:.0f} bytes"
    for unit in ("kB", "MB", "GB", "TB"):
        n_bytes /= 1000
        if n_bytes < 1000 or unit == "TB":
            return f"{n_bytes:.1f} {unit}"
    raise AssertionError("unreachable")


def reason(error: OSError) -> str:
    """The operating system's reason, without the `[Errno 30]` prefix ('Read-only file
    system'); a full disk says so in plain words."""
    if error.errno in FULL:
        return FULL[error.errno]
    return error.strerror or str(error) or type(error).__name__


def refusal(action: str, path: Path | str, error: OSError) -> FileSystemError:
    """`cannot write run folder runs/x: Read-only file system`."""
    return FileSystemError(f"{action} {path}: {reason(error)}")


@contextlib.contextmanager
def refused(action: str, path: Path | str) -> Iterator[None]:
    """Turn what the operating system refuses inside the block into one FileSystemError line."""
    try:
        yield
    except OSError as e:
        raise refusal(action, path, e) from None


def probe_writable(folder: Path, what: str) -> None:
    """Create and remove a small file in `folder`: the one test that answers for read-only file
    systems, permissions, ACLs and full disks alike (os.access says yes to root everywhere)."""
    with refused(f"cannot write {what}", folder):
        _write_test(folder)


def _write_test(folder: Path) -> None:
    probe = Path(folder) / f".lstm-nlp-write-test-{uuid.uuid4().hex[:8]}"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(probe)


def probe_files(folder: Path, names: tuple[str, ...]) -> None:
    """Open each existing file of `names` in `folder` for appending, writing nothing: a file that
    will be rewritten in place later must be writable now (its content and mtime are kept)."""
    for name in names:
        path = Path(folder) / name
        if path.is_file():
            with refused("cannot write", path):
                os.close(os.open(path, os.O_WRONLY | os.O_APPEND))


def check_removable(folder: Path, what: str) -> None:
    """Before anything of `folder` is removed: the folder and every folder in it let their
    entries be removed, so that a refusal does not leave it half emptied. (Root may remove
    anything but on a read-only file system, which the write test sees; `empty_folder` reports
    whatever else comes up, by name.)"""
    with refused(f"cannot remove {what}", folder):
        _write_test(folder)
    for dirpath, _, _ in os.walk(folder):
        if not os.access(dirpath, os.W_OK | os.X_OK):
            raise FileSystemError(f"cannot remove {what} {folder}: no permission to remove "
                                  f"the files in {dirpath}")


def empty_folder(folder: Path, what: str, keep: tuple[str, ...] = ()) -> None:
    """Remove everything in `folder` but the entries named in `keep`, keeping the folder itself
    (its owner, its permissions, a symlink to it); a file that cannot be removed is one line
    naming it."""
    def refuse(function, path, excinfo) -> None:
        error = excinfo if isinstance(excinfo, BaseException) else excinfo[1]
        if not isinstance(error, OSError):
            raise error
        raise FileSystemError(f"cannot remove {what} {folder}: {path}: {reason(error)}") \
            from None

    for entry in sorted(Path(folder).iterdir()):
        if entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            if sys.version_info >= (3, 12):
                shutil.rmtree(entry, onexc=refuse)
            else:
                shutil.rmtree(entry, onerror=refuse)
        else:
            try:
                entry.unlink()
            except OSError as e:
                refuse(entry.unlink, entry, e)


def free_bytes(folder: Path) -> int | None:
    """Free space on the file system of `folder` (None where it cannot be asked)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def open_output(output: Path, tmp: Path) -> OutputFile:
    """`tmp` opened to be renamed over `output` when done; an output that names a folder, or
    whose folder does not exist, is refused by its name (not the temp file's)."""
    output = Path(output)
    if output.is_dir():
        raise FileSystemError(f"cannot write {output}: it is a folder; give a file name")
    folder = output.parent
    if folder.exists() and not folder.is_dir():
        raise FileSystemError(f"cannot write {output}: {folder} is a file, not a folder")
    if not folder.is_dir():
        raise FileSystemError(f"cannot write {output}: folder {folder} does not exist")
    with refused("cannot write", output):
        return OutputFile(open(tmp, "w", encoding="utf-8"), output)


class OutputFile:
    """A text file whose refused writes (disk full) name the output the user gave; the verbs
    write lines and flush, nothing else."""

    def __init__(self, file, name: Path) -> None:
        self.file, self.name = file, name

    def write(self, text: str) -> int:
        try:
            return self.file.write(text)
        except OSError as e:
            raise refusal("cannot write", self.name, e) from None

    def flush(self) -> None:
        try:
            self.file.flush()
        except OSError as e:
            raise refusal("cannot write", self.name, e) from None

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        try:
            self.file.close()
        except OSError as e:
            if kind is None:  # else the error already on its way says more
                raise refusal("cannot write", self.name, e) from None

"""Process-level set-up: seeds, threads, the CPU allocator, run folders."""

from __future__ import annotations

import contextlib
import ctypes
import random
from pathlib import Path

import torch

from lstm_nlp import filesystem
from lstm_nlp.errors import ConfigError


def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def autocast(precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CPU for precision 'bf16'; a no-op context for 'fp32'."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def set_threads(threads: int) -> None:
    if threads > 0:
        torch.set_num_threads(threads)


def tune_allocator() -> None:
    """Keep freed memory in glibc's heap instead of returning it to the OS.

    An LSTM step loop allocates and frees many multi-megabyte tensors; by default glibc serves each
    with a fresh mmap, so every step pays page faults (measured: 13% of a training step). This is
    what jemalloc/tcmalloc buy PyTorch on CPU, without a preload. No-op where glibc is absent.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)  # the largest value glibc accepts
    libc.mallopt(m_trim_threshold, 1 << 30)


# Files of a run folder that training rewrites in place (checkpoints are replaced by rename).
REWRITTEN = ("recipe.yaml", "metrics.jsonl", "report.json", "report.md")


def prepare_run_dir(path: Path, overwrite: bool, resume: bool) -> Path:
    """Create the run folder; an existing one is reused only with --resume, replaced with
    --overwrite. A folder that cannot be written is refused here, before anything in it is
    rewritten and before the tokenizer and the model are built, not when the first checkpoint
    is saved."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"run folder {path} exists and is a file")
    if resume:
        if not (path / "last.pt").is_file():
            raise ConfigError(f"--resume: no last.pt in {path}; nothing to resume")
        check_writable(path)
        return path
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise ConfigError(f"run folder {path} already exists; use --resume to continue it, "
                              "--overwrite to replace it, or --run-dir to pick another")
        filesystem.check_removable(path, "run folder")
        filesystem.empty_folder(path, "run folder")
    with filesystem.refused("cannot create run folder", path):
        path.mkdir(parents=True, exist_ok=True)
    check_writable(path)
    return path


def check_writable(path: Path) -> None:
    """The run folder takes new files, and the files rewritten in place can be written."""
    filesystem.probe_writable(path, "run folder")
    filesystem.probe_files(path, REWRITTEN)

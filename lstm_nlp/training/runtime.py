"""Process-level set-up: seeds, threads, the CPU allocator, run folders; the arithmetic of a run
or a verb on its device (autocast, the fp16 gradient scaler)."""

from __future__ import annotations

import contextlib
import ctypes
import random
from pathlib import Path

import torch

from lstm_nlp import filesystem
from lstm_nlp.config.sections import TrainConfig
from lstm_nlp.data.token_store import RUN_CACHE
from lstm_nlp.errors import ConfigError
from lstm_nlp.training import devices
from lstm_nlp.training import threads as threads_module


def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


LOW_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: torch.device, source: str) -> None:
    """fp16 only on CUDA: PyTorch's fp16 autocast and gradient scaler are for GPUs."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"{source}: fp16 needs a CUDA device (this runs on {device}); use "
                          "bf16 or fp32")


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast on `device` to bf16 or fp16 for those precisions; a no-op context for 'fp32'."""
    check_precision(precision, device, "precision")
    return torch.autocast(device.type, dtype=LOW_PRECISION.get(precision, torch.bfloat16),
                          enabled=precision in LOW_PRECISION)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """fp16 training scales the loss so that small gradients survive in fp16 (and skips a step
    whose gradients overflowed); for bf16 and fp32 a disabled scaler, which passes the loss, the
    gradients and the optimizer step through unchanged."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def training_device(cfg: TrainConfig, from_option: bool = False) -> torch.device:
    """The device a recipe trains on (its train.device, set by --device when `from_option`), with
    the recipe's precision checked there: asked before the run folder, tokenizer or model."""
    device = devices.resolve_device(cfg.device, "--device" if from_option else "train.device")
    check_precision(cfg.precision, device, "train.precision")
    return device


def prepare_inference(device: str | None, precision: str | None) -> torch.device:
    """What an inference verb does first, before it loads a model: its device (--device, auto
    when not given), an explicitly asked precision checked against it, the allocator tuned."""
    where = devices.resolve_device(device or "auto", "--device")
    if precision is not None:
        check_precision(precision, where, "--precision")
    tune_allocator()
    return where


def inference_precision(given: str | None, trained: str, device: torch.device) -> str:
    """--precision when given, else the model's training precision; a model trained in fp16 (on
    a GPU) runs in fp32 elsewhere."""
    if given is not None:
        check_precision(given, device, "--precision")
        return given
    return "fp32" if trained == "fp16" and device.type != "cuda" else trained


def set_threads(threads: int, local_processes: int = 1) -> None:
    """train.threads (0: torch's default, all the cores) for a process alone on its machine; with
    several training processes on it, train.threads (or all the cores) is the machine's, and
    each process takes its share, at least one thread."""
    if local_processes > 1:
        cores = threads or threads_module.usable_cores()
        torch.set_num_threads(max(1, cores // local_processes))
    elif threads > 0:
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
        # the token store and tokenizer cache stays: a store is reused only for its own data
        filesystem.empty_folder(path, "run folder", keep=(RUN_CACHE,))
    with filesystem.refused("cannot create run folder", path):
        path.mkdir(parents=True, exist_ok=True)
    check_writable(path)
    return path


def check_writable(path: Path) -> None:
    """The run folder takes new files, and the files rewritten in place can be written."""
    filesystem.probe_writable(path, "run folder")
    filesystem.probe_files(path, REWRITTEN)

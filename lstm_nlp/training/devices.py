"""Where a run or a verb computes: the one place that turns a device name (`train.device`,
`--device`: auto | cpu | cuda | cuda:N | mps) into a `torch.device`, or into a one-line error when
that device is not here; moving collated batches there; the device's own RNG for checkpoints.

Everything else takes the device from the model (`device_of`) and creates its tensors there. The
CPU speed kernels decide for themselves where they apply (`nn.kernels.use_cpu_kernels`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from lstm_nlp.config.sections import DEVICE_CHOICES, DEVICE_NAME
from lstm_nlp.errors import ConfigError

CPU = torch.device("cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def resolve_device(name: str, source: str = "--device") -> torch.device:
    """auto: CUDA, else MPS, else the CPU. A named device must be here; `source` (the recipe key
    or the option) starts the error line."""
    if not DEVICE_NAME.fullmatch(name):
        raise ConfigError(f"{source}: must be one of {DEVICE_CHOICES}; got {name!r}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else CPU
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"{source}: {name} is not available here (this PyTorch has no CUDA, "
                              "or no GPU is visible); use cpu or auto")
        if device.index is not None and device.index >= count:
            gpus = "1 GPU is visible: cuda:0" if count == 1 else \
                f"{count} GPUs are visible: cuda:0 to cuda:{count - 1}"
            raise ConfigError(f"{source}: {name} is not available here ({gpus})")
    if device.type == "mps" and not _mps_available():
        raise ConfigError(f"{source}: mps is not available here (this PyTorch has no MPS, or this "
                          "is not a Mac with Apple silicon); use cpu or auto")
    return device


def device_of(model: torch.nn.Module) -> torch.device:
    """Where a model's parameters are (the CPU for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else CPU


def to_device(batch: Any, device: torch.device) -> Any:
    """A collated batch on `device`: a tensor, or a dataclass, tuple or list holding tensors (other
    fields stay as they are). Batches are built on the CPU; to CUDA they go from pinned memory,
    asynchronously."""
    if isinstance(batch, torch.Tensor):
        if batch.device == device:
            return batch
        if device.type == "cuda":
            return batch.pin_memory().to(device, non_blocking=True)
        return batch.to(device)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(batch, **{f.name: to_device(getattr(batch, f.name), device)
                                             for f in dataclasses.fields(batch) if f.init})
    if type(batch) in (tuple, list):
        return type(batch)(to_device(x, device) for x in batch)
    return batch


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The device's own RNG (its dropout masks), for a checkpoint: {'cuda_rng': ...} on CUDA,
    {'mps_rng': ...} on MPS; nothing on the CPU, whose RNG checkpoints keep as 'rng'."""
    if device.type == "cuda":
        return {"cuda_rng": torch.cuda.get_rng_state(device)}
    if device.type == "mps":
        return {"mps_rng": torch.mps.get_rng_state()}
    return {}


def set_rng_state(device: torch.device, ckpt: dict[str, Any]) -> None:
    """Restore what `rng_state` saved, when the checkpoint was written on a device of this kind
    (a CPU run resumed on a GPU starts the GPU's RNG from its seed)."""
    state = ckpt.get(f"{device.type}_rng")
    if state is None:
        return
    state = state.cpu()  # torch sets RNG states from CPU byte tensors only
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    elif device.type == "mps":
        torch.mps.set_rng_state(state)

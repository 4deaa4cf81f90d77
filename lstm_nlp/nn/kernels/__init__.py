"""Speed kernels for the CPU: oneDNN matrix products, the fused output loss, the fused
input-feeding decoder recurrence (each with its own backward). They run on CPU tensors only;
on any other device their callers take plain PyTorch (F.linear, cross-entropy, nn.LSTM on packed
sequences, which is cuDNN on CUDA, torch's dropout)."""

from __future__ import annotations

import torch

# False: the plain PyTorch path that other devices take, on the CPU too (tests compare the two).
ENABLED = True


def use_cpu_kernels(*tensors: torch.Tensor) -> bool:
    """Whether the CPU speed kernels (and the byte-based dropout masks, and the encoder's
    length groups) apply to these tensors: every one on the CPU."""
    return ENABLED and all(t.device.type == "cpu" for t in tensors)

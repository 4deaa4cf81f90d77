"""fp32 matrix products through oneDNN instead of the BLAS that PyTorch calls by default.

Why: on CPU, PyTorch sends fp32 `mm`/`addmm`/`F.linear` to MKL's sgemm, and MKL picks its fast
kernels by CPU vendor. On the AMD EPYC machines this project was first measured on, MKL's sgemm
reaches about 140-180 GFLOP/s on 2 cores while oneDNN (also inside every PyTorch x86 build, and
the library PyTorch already uses for bf16) reaches 270-400 GFLOP/s on the same products, with
fp32 inputs, fp32 accumulation and results equal to MKL's up to rounding order
(`tests/benchmarks/bench_matmul.py` prints both); on the Intel Xeon machines since, the two are
level (126-207 GFLOP/s, ratios 0.89-1.07). Training an LSTM is mostly such products.

`linear(x, w, b)` computes x @ w.T + b like `F.linear`, with a backward that uses the same
kernels. It falls back to `F.linear` for anything other than fp32 CPU tensors outside autocast
(bf16 already goes to oneDNN), and everywhere when oneDNN is missing or disabled with
LSTM_NLP_ONEDNN=0. `Linear` is `nn.Linear` with that forward (same parameters, same state dict).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from lstm_nlp.nn.kernels import use_cpu_kernels


def _probe() -> bool:
    """oneDNN's fp32 linear is usable here and agrees with F.linear on a small case."""
    if os.environ.get("LSTM_NLP_ONEDNN", "1") == "0":
        return False
    try:
        op = torch.ops.mkldnn._linear_pointwise
        # fixed values, not torch.randn: importing the package must not move the global RNG
        x = torch.arange(15.0).view(3, 5) / 7
        w, b = torch.arange(20.0).view(4, 5).cos(), torch.arange(4.0)
        return bool(torch.allclose(op(x, w, b, "none", [], ""), F.linear(x, w, b), atol=1e-5))
    except (AttributeError, RuntimeError):
        return False


ONEDNN = torch.backends.mkldnn.is_available() and _probe()


def _plain(m: torch.Tensor) -> torch.Tensor:
    """A 2-D matrix stored densely by rows or by columns (a transpose is free); oneDNN falls back
    to a slow reference kernel for anything else (a column slice of a weight, for one)."""
    (rows, cols), (s0, s1) = m.shape, m.stride()
    if (s1 == 1 and s0 == cols) or (s0 == 1 and s1 == rows):
        return m
    return m.contiguous()


def _mm_nt(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """x (..., K) @ w (N, K).T + b -> (..., N) with oneDNN."""
    y = torch.ops.mkldnn._linear_pointwise(_plain(x.reshape(-1, x.size(-1))), _plain(w), b,
                                           "none", [], "")
    return y.view(*x.shape[:-1], w.size(0))


def fast(*tensors: torch.Tensor) -> bool:
    """Whether a product of these tensors goes to oneDNN's fp32 kernels."""
    return ONEDNN and use_cpu_kernels(*tensors) and not torch.is_autocast_enabled("cpu") and \
        all(t.dtype == torch.float32 and t.numel() for t in tensors)


def mm_nt(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """x (..., K) @ w (N, K).T (+ b) without autograd; for hand-written backward passes."""
    if fast(x, w):
        return _mm_nt(x, w, b)
    return F.linear(x, w, b)


def mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a (M, K) @ b (K, N) -> (M, N), without autograd."""
    return mm_nt(a, b.t())


class _Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        return _mm_nt(x, w, b)

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = _mm_nt(dy, w.t())                                              # (..., K)
        dy2 = dy.reshape(-1, dy.size(-1))                                       # (R, N)
        if ctx.needs_input_grad[1]:
            dw = _mm_nt(dy2.t(), x.reshape(-1, x.size(-1)).t())                 # (N, K)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = dy2.sum(0)
        return dx, dw, db


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """F.linear(x, w, b), with oneDNN's fp32 kernels forward and backward where they apply."""
    if fast(x, w):
        return _Linear.apply(x, w, b)
    return F.linear(x, w, b)


class Linear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)

"""Output layer + label-smoothed cross-entropy, fused and computed in row chunks.

The (N, V) logits of a batch are the largest tensor in training. Computed all at once, they are
written, re-read by log-softmax, written again, and re-read twice in the backward pass. Here each
chunk of rows is projected, reduced to its loss, and turned into its gradient while it is hot in
cache; only the (N, H) input gradient and the weight gradient are kept for the backward pass,
which then just scales them. Same numbers as `F.cross_entropy(linear(h), gold, label_smoothing)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lstm_nlp.nn.kernels import use_cpu_kernels
from lstm_nlp.nn.kernels.matmul import mm, mm_nt

CHUNK = 1024  # rows per chunk: (1024, V) fp32 logits stay a few MB per 1k of vocabulary


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    if torch.is_autocast_enabled("cpu") and x.device.type == "cpu":
        return torch.get_autocast_dtype("cpu")
    return x.dtype


def _chunk_loss(logits: torch.Tensor, gold: torch.Tensor, smoothing: float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """fp32 logits (C, V), overwritten -> summed loss, number correct, and in `logits` the
    unnormalised probabilities exp(logit - max) with their row sums (C,).

    One max pass gives the argmax too; shift and exp happen in place (no (C, V) temporaries).
    """
    top, argmax = logits.max(dim=1)                                             # (C,), (C,)
    correct = (argmax == gold).sum()
    gold_logit = logits.gather(1, gold.unsqueeze(1)).squeeze(1)                 # (C,)
    mean_logit = logits.mean(dim=1) if smoothing else None
    probs = logits.sub_(top.unsqueeze(1)).exp_()                                # (C, V)
    sums = probs.sum(dim=1)                                                     # (C,)
    lse = top + sums.log()
    loss = (1.0 - smoothing) * (lse - gold_logit)
    if smoothing:
        loss = loss + smoothing * (lse - mean_logit)
    return loss.sum(), correct, probs, sums


class _FusedOutputLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, gold, smoothing):
        dtype = _compute_dtype(h)
        w = weight.to(dtype)
        hc_all = h.to(dtype)
        V = weight.size(0)
        grad_h = torch.empty(h.shape, dtype=torch.float32)
        grad_w_t = torch.zeros(weight.shape[::-1], dtype=torch.float32)  # (H, V): see below
        grad_b = torch.zeros(V, dtype=torch.float32)
        total, correct = torch.zeros((), dtype=torch.float32), torch.zeros((), dtype=torch.long)
        for start in range(0, h.size(0), CHUNK):
            hc, g = hc_all[start: start + CHUNK], gold[start: start + CHUNK]
            logits = mm_nt(hc, w, bias.to(dtype)).float()                      # (C, V)
            loss, n_ok, probs, sums = _chunk_loss(logits, g, smoothing)
            total += loss
            correct += n_ok
            # d loss / d logits = softmax - ((1 - eps) onehot + eps / V)
            grad = probs.mul_(sums.reciprocal_().unsqueeze(1))                  # (C, V) in place
            if smoothing:
                grad.sub_(smoothing / V)
            grad[torch.arange(g.numel()), g] -= 1.0 - smoothing
            grad_b += grad.sum(0)
            grad = grad.to(dtype)
            grad_h[start: start + CHUNK] = mm(grad, w)                          # (C, H)
            # (H, V) += hc^T grad: oneDNN reads hc^T by rows (a small copy) and grad by columns;
            # grad^T hc would copy the whole (V, C) grad into row order first.
            grad_w_t += mm_nt(hc.t(), grad.t())
        ctx.save_for_backward(grad_h.to(h.dtype), grad_w_t.t().to(weight.dtype),
                              grad_b.to(bias.dtype))
        ctx.mark_non_differentiable(correct)
        return total, correct

    @staticmethod
    def backward(ctx, grad_loss, _grad_correct):
        grad_h, grad_w, grad_b = ctx.saved_tensors
        return grad_h * grad_loss, grad_w * grad_loss, grad_b * grad_loss, None, None


def output_loss(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, gold: torch.Tensor,
                smoothing: float = 0.0) -> tuple[torch.Tensor, int]:
    """h (N, H), weight (V, H), bias (V,), gold (N,) -> (summed loss, number of correct argmaxes)."""
    if not use_cpu_kernels(h, weight):
        return _plain_output_loss(h, weight, bias, gold, smoothing)
    if torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad):
        total, correct = _FusedOutputLoss.apply(h, weight, bias, gold, smoothing)
        return total, int(correct)
    dtype = _compute_dtype(h)
    w, b = weight.to(dtype), bias.to(dtype)
    total, correct = torch.zeros(()), 0
    for start in range(0, h.size(0), CHUNK):
        logits = mm_nt(h[start: start + CHUNK].to(dtype), w, b).float()
        loss, n_ok, _, _ = _chunk_loss(logits, gold[start: start + CHUNK], smoothing)
        total, correct = total + loss, correct + int(n_ok)
    return total, correct


def _plain_output_loss(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                       gold: torch.Tensor, smoothing: float) -> tuple[torch.Tensor, int]:
    """Off the CPU: PyTorch's output layer and loss, whole (autocast picks the product's type)."""
    logits = F.linear(h, weight, bias).float()                                  # (N, V)
    loss = F.cross_entropy(logits, gold, reduction="sum", label_smoothing=smoothing)
    return loss, int((logits.argmax(1) == gold).sum())

"""Faster kernels give the results of the plain PyTorch ops they replace."""

import pytest
import torch
import torch.nn.functional as F

from lstm_nlp.nn import encoder
from lstm_nlp.nn.kernels import matmul
from lstm_nlp.nn.regularization import Dropout


def _grads(fn, *tensors):
    for t in tensors:
        t.grad = None
    out = fn()
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), [t.grad.clone() for t in tensors]


@pytest.mark.parametrize("bias", [True, False])
def test_linear_equals_f_linear_forward_and_backward(bias):
    torch.manual_seed(0)
    x = torch.randn(4, 3, 20, requires_grad=True)                         # 3-D input
    full = torch.randn(12, 30, requires_grad=True)
    b = torch.randn(12, requires_grad=True) if bias else None
    params = [x, full] + ([b] if bias else [])
    # a column slice of a weight: neither row- nor column-dense, the case oneDNN computes slowly
    ours = _grads(lambda: matmul.linear(x, full[:, 5:25], b), *params)
    ref = _grads(lambda: F.linear(x, full[:, 5:25], b), *params)
    assert torch.allclose(ours[0], ref[0], atol=1e-5)
    for g_ours, g_ref in zip(ours[1], ref[1]):
        assert torch.allclose(g_ours, g_ref, atol=1e-5)


def test_products_without_autograd_equal_matmul():
    torch.manual_seed(0)
    a, b, w = torch.randn(7, 5), torch.randn(5, 9), torch.randn(9, 5)
    assert torch.allclose(matmul.mm(a, b), a @ b, atol=1e-5)
    assert torch.allclose(matmul.mm_nt(a, w), a @ w.t(), atol=1e-5)
    assert torch.allclose(matmul.mm_nt(a.t().contiguous().t(), w.t().contiguous().t()),
                          a @ w.t(), atol=1e-5)                          # column-major operands


def test_empty_inputs_work():
    w = torch.randn(3, 5, requires_grad=True)
    x = torch.randn(2, 0, 5, requires_grad=True)
    y = matmul.linear(x, w)
    y.sum().backward()
    assert y.shape == (2, 0, 3) and x.grad.shape == x.shape
    assert matmul.mm_nt(torch.randn(0, 5), w.detach()).shape == (0, 3)


def test_onednn_is_used_for_fp32_only():
    x, w = torch.randn(2, 3), torch.randn(4, 3)
    assert matmul.fast(x, w) == matmul.ONEDNN
    assert not matmul.fast(x.double(), w.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not matmul.fast(x, w)                                     # bf16: PyTorch's own path


def test_linear_module_keeps_nn_linear_state_dict():
    ours, theirs = matmul.Linear(6, 4), torch.nn.Linear(6, 4)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(3, 6)
    assert torch.allclose(ours(x), theirs(x), atol=1e-6)


@pytest.mark.parametrize("layers", [1, 2])
def test_encoder_by_length_equals_packed_sequences(layers, monkeypatch):
    """Rows grouped by length (dense LSTM kernel) give the packed-sequence results: memory
    (zeros on padding), final states and gradients."""
    torch.manual_seed(0)
    embed = torch.nn.Embedding(20, 8, padding_idx=0)
    enc = encoder.LSTMEncoder(embed, 12, layers, True, dropout=0.0)
    lengths = torch.tensor([5, 3, 5, 1, 4, 3])
    src = torch.randint(1, 20, (6, 6))
    src[torch.arange(6).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    results = []
    for max_groups in (32, 0):                                           # 0: always packed
        monkeypatch.setattr(encoder, "MAX_GROUPS", max_groups)
        enc.zero_grad()
        memory, (h, c) = enc(src, lengths)
        (memory.sum() + (h * c).sum()).backward()
        results.append((memory.detach(), h.detach(), c.detach(),
                        [p.grad.clone() for p in enc.parameters()]))
    (m_a, h_a, c_a, g_a), (m_b, h_b, c_b, g_b) = results
    assert torch.allclose(m_a, m_b, atol=1e-5) and torch.allclose(h_a, h_b, atol=1e-5)
    assert torch.allclose(c_a, c_b, atol=1e-5)
    assert m_a[1, 3:].abs().sum() == 0                                   # padding stays zero
    for a, b in zip(g_a, g_b):
        assert torch.allclose(a, b, atol=1e-5)


def test_dropout_keeps_expectation_and_zeroes_about_p():
    torch.manual_seed(0)
    drop = Dropout(0.3).train()
    y = drop(torch.ones(200_000))
    assert abs((y == 0).float().mean().item() - 0.3) < 0.01
    assert abs(y.mean().item() - 1.0) < 0.01
    assert torch.equal(drop.eval()(torch.ones(5)), torch.ones(5))

"""The input-feeding decoder recurrence as one autograd function with a hand-written backward.

Why: with input feeding, step t needs the attentional state of step t-1, so training loops over
time. Left to autograd, every step records ~30 small ops, accumulates the gradient of each weight
and of the attention keys/memory in T separate additions, and allocates zeroed buffers for every
slice. Here the forward loop saves what the backward needs, the backward loop computes only the
per-step gradients that truly depend on each other (gates, states), and the weight, key and
memory gradients come out of one large matrix product each, after the loop.

Covers one decoder layer with dot/general attention (score = q . key); other configurations use
the autograd path in `decoder.py`. `tests/test_models.py` checks both paths give the same
values and gradients.

Per step, with z = [feed_{t-1}; h_{t-1}], gate order [i, f, o, g]:
    gates = x_t + W_rec z             c_t = f c_{t-1} + i g           h_t = o tanh(c_t)
    a_t = softmax(keys h_t) on real positions      ctx_t = a_t memory
    feed_t = dropout(tanh(W_comb [ctx_t; h_t]))
"""

from __future__ import annotations

import torch

from lstm_nlp.nn.kernels.matmul import mm, mm_nt
from lstm_nlp.nn.regularization import keep_mask


def _dtype() -> torch.dtype | None:
    return torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None


class _InputFeedingRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_gates, h0, c0, w_rec, keys, memory, w_comb, mask, dropout):
        """x_gates (T, B, 4H) (embedding share of the gates, bias included; time-major, so that
        its gradient is written step by step without a transpose); h0, c0 (B, H); w_rec (4H, 2H);
        keys (B, S, H); memory (B, S, M); w_comb (H, M + H); mask (B, S) bool -> feeds (B, T, H)."""
        low = _dtype() or x_gates.dtype
        T, B, G = x_gates.shape
        H = G // 4
        x_gates = x_gates.float()
        w_rec_l, w_comb_l = w_rec.to(low), w_comb.to(low)
        keys_l, memory_l = keys.to(low), memory.to(low)
        neg_mask = ~mask
        h, c = h0.float(), c0.float()
        feed = torch.zeros(B, H)
        keep = keep_mask((T, B, H), dropout) if dropout > 0 else None          # (T, B, H)
        Z = torch.empty(2 * H, T, B)      # step inputs [feed; h], transposed (weight gradient)
        ACT = torch.empty(T, B, G)        # activations i, f, o (sigmoid) and g (tanh)
        C = torch.empty(T + 1, B, H)      # cell states, C[0] = c0
        TC = torch.empty(T, B, H)         # tanh(c_t)
        HS = torch.empty(B, T, H)         # h_t, batch-first (for the key gradient)
        A = torch.empty(B, T, keys.size(1))   # attention weights
        U = torch.empty(memory.size(2) + H, T, B)  # [ctx; h], transposed likewise
        TH = torch.empty(T, B, H)         # tanh(W_comb u), before dropout
        feeds = torch.empty(B, T, H)
        C[0] = c
        for t in range(T):
            z = torch.cat([feed, h], 1)                                         # (B, 2H)
            Z[:, t] = z.t()
            gates = x_gates[t] + mm_nt(z.to(low), w_rec_l).float()              # (B, 4H)
            act = ACT[t]
            torch.sigmoid(gates[:, : 3 * H], out=act[:, : 3 * H])
            torch.tanh(gates[:, 3 * H:], out=act[:, 3 * H:])
            i, f, o, g = act.split(H, 1)
            c = f * c + i * g
            C[t + 1] = c
            tc = torch.tanh(c)
            TC[t] = tc
            h = o * tc
            HS[:, t] = h
            scores = torch.bmm(keys_l, h.to(low).unsqueeze(2)).squeeze(2).float()  # (B, S)
            a = torch.softmax(scores.masked_fill_(neg_mask, float("-inf")), 1)
            A[:, t] = a
            ctx_t = torch.bmm(a.to(low).unsqueeze(1), memory_l).squeeze(1).float()  # (B, M)
            u = torch.cat([ctx_t, h], 1)                                        # (B, M + H)
            U[:, t] = u.t()
            th = torch.tanh(mm_nt(u.to(low), w_comb_l).float())                 # (B, H)
            TH[t] = th
            feed = th * keep[t] if keep is not None else th
            feeds[:, t] = feed
        ctx.save_for_backward(Z, ACT, C, TC, HS, A, U, TH, keep, w_rec, keys, memory, w_comb)
        ctx.dims = (B, T, H, low)
        return feeds

    @staticmethod
    def backward(ctx, d_feeds):
        Z, ACT, C, TC, HS, A, U, TH, keep, w_rec, keys, memory, w_comb = ctx.saved_tensors
        B, T, H, low = ctx.dims
        M = memory.size(2)
        d_feeds = d_feeds.float()
        w_rec_l, w_comb_l = w_rec.to(low), w_comb.to(low)
        keys_l, memory_l = keys.to(low), memory.to(low)
        DG = torch.empty(T, B, 4 * H)     # gate gradients
        DPRE = torch.empty(T, B, H)       # gradients of W_comb u
        DCTX = torch.empty(B, T, M)
        DS = torch.empty(B, T, keys.size(1))  # score gradients
        d_feed_next = torch.zeros(B, H)
        d_h_next = torch.zeros(B, H)
        d_c = torch.zeros(B, H)
        for t in range(T - 1, -1, -1):
            d_feed = d_feeds[:, t] + d_feed_next
            if keep is not None:
                d_feed = d_feed * keep[t]
            th = TH[t]
            d_pre = d_feed * (1 - th * th)                                      # (B, H)
            DPRE[t] = d_pre
            d_u = mm(d_pre.to(low), w_comb_l).float()                           # (B, M + H)
            d_ctx = d_u[:, :M]
            DCTX[:, t] = d_ctx
            a = A[:, t]
            d_a = torch.bmm(memory_l, d_ctx.to(low).unsqueeze(2)).squeeze(2).float()  # (B, S)
            d_s = a * (d_a - (a * d_a).sum(1, keepdim=True))                    # softmax backward
            DS[:, t] = d_s
            d_h = d_u[:, M:] + d_h_next + \
                torch.bmm(d_s.to(low).unsqueeze(1), keys_l).squeeze(1).float()  # (B, H)
            i, f, o, g = ACT[t].split(H, 1)
            tc = TC[t]
            d_c = d_c + d_h * o * (1 - tc * tc)
            dg = DG[t]
            dg[:, :H] = d_c * g * i * (1 - i)
            dg[:, H: 2 * H] = d_c * C[t] * f * (1 - f)
            dg[:, 2 * H: 3 * H] = d_h * tc * o * (1 - o)
            dg[:, 3 * H:] = d_c * i * (1 - g * g)
            d_c = d_c * f
            d_z = mm(dg.to(low), w_rec_l).float()                               # (B, 2H)
            d_feed_next, d_h_next = d_z[:, :H], d_z[:, H:]
        # Gradients that no step depends on: one large product each.
        # Transposed (Z^T DG rather than DG^T Z): the operand oneDNN reads by rows is then Z,
        # stored that way above, and the one it reads by columns is DG; no transposing copies.
        d_w_rec = mm_nt(Z.view(2 * H, T * B).to(low), DG.view(T * B, 4 * H).t().to(low)).t()
        d_w_comb = mm_nt(U.view(M + H, T * B).to(low), DPRE.view(T * B, H).t().to(low)).t()
        d_keys = torch.bmm(DS.transpose(1, 2).to(low), HS.to(low))             # (B, S, H)
        d_memory = torch.bmm(A.transpose(1, 2).to(low), DCTX.to(low))          # (B, S, M)
        return (DG, d_h_next, d_c, d_w_rec.to(w_rec.dtype),
                d_keys.to(keys.dtype), d_memory.to(memory.dtype), d_w_comb.to(w_comb.dtype),
                None, None)


def input_feeding_recurrence(x_gates, h0, c0, w_rec, keys, memory, w_comb, mask,
                             dropout: float) -> torch.Tensor:
    return _InputFeedingRecurrence.apply(x_gates, h0, c0, w_rec, keys, memory, w_comb, mask,
                                         dropout)

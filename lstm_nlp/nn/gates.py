"""LSTM gates recomputed from a layer's own weights, for looking inside a trained model.

`nn.LSTM` computes its gates inside a fused kernel and returns only h and c; the input-feeding
decoder fuses its own. Here the same equations run step by step in plain PyTorch on the layer's
parameters, so training keeps its fast kernels while `lstm-nlp inspect` and the run reports see
the input, forget and output gates and the cell of every step (the statistics of Karpathy et al.
2015, "Visualizing and Understanding Recurrent Networks": the share of gate values below 0.1,
"left-saturated", and above 0.9, "right-saturated").

    i, f, g, o = sigmoid(.), sigmoid(.), tanh(.), sigmoid(.)   of  W_ih x_t + b + W_hh h_{t-1}
    c_t = f * c_{t-1} + i * g          h_t = o * tanh(c_t)

The rows of the stacked weight matrices come in a layout: `nn.LSTM` stacks them i, f, g, o;
the input-feeding decoder (nn/decoder.py) i, f, o, g.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

NN_LSTM = "ifgo"  # row blocks of nn.LSTM's weight_ih / weight_hh / biases
DECODER = "ifog"  # the input-feeding decoder's fused layout
LEFT, RIGHT = 0.1, 0.9  # saturation thresholds (Karpathy et al. 2015)


@dataclass
class GateTrace:
    """One LSTM layer (one direction) over one sequence, in reading order of the text; each
    tensor (T, H)."""

    input: torch.Tensor
    forget: torch.Tensor
    output: torch.Tensor
    cell: torch.Tensor
    hidden: torch.Tensor

    def gates(self) -> dict[str, torch.Tensor]:
        return {"input": self.input, "forget": self.forget, "output": self.output}

    @staticmethod
    def from_steps(steps: list[tuple[torch.Tensor, ...]]) -> GateTrace:
        """Per step (i, f, o, c, h), each (H,), in text order -> the trace."""
        return GateTrace(*(torch.stack(parts) for parts in zip(*steps)))


@dataclass
class LayerTrace:
    """A named LSTM layer ("encoder layer 0 backward") over one text, with the token each step
    reads."""

    name: str
    tokens: list[str]
    trace: GateTrace


def cell(pre: torch.Tensor, c: torch.Tensor, layout: str
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """pre (..., 4H) gate pre-activations in `layout`, c (..., H) -> i, f, o, c', h' (each
    (..., H))."""
    blocks = dict(zip(layout, pre.chunk(4, dim=-1)))
    i, f, o = (torch.sigmoid(blocks[k]) for k in "ifo")
    c = f * c + i * torch.tanh(blocks["g"])
    return i, f, o, c, o * torch.tanh(c)


def run_layer(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, bias: torch.Tensor,
              h: torch.Tensor, c: torch.Tensor, layout: str = NN_LSTM, reverse: bool = False
              ) -> GateTrace:
    """x (T, In), w_ih (4H, In), w_hh (4H, H), bias (4H,), initial h, c (H,) -> the trace of
    the layer over x (read backward with `reverse`; the trace is in text order either way)."""
    pre = x @ w_ih.t() + bias                                                   # (T, 4H)
    steps: list[tuple[torch.Tensor, ...]] = [()] * x.size(0)
    for t in (reversed(range(x.size(0))) if reverse else range(x.size(0))):
        i, f, o, c, h = cell(pre[t] + w_hh @ h, c, layout)                     # each (H,)
        steps[t] = (i, f, o, c, h)
    return GateTrace.from_steps(steps)                                          # each (T, H)


def nn_lstm(lstm: nn.LSTM, x: torch.Tensor, name: str, tokens: list[str],
            state: tuple[torch.Tensor, torch.Tensor] | None = None, first: int = 0
            ) -> tuple[torch.Tensor, list[LayerTrace]]:
    """Every layer and direction of `lstm` from its parameters, over one text x (T, In); state
    (h0, c0) each (layers * directions, H) as nn.LSTM takes it (zeros when None) -> the top
    layer's outputs (T, directions * H) and a trace per layer and direction, named
    `<name> layer <first + k>[ forward| backward]` (`first`: where a stack of one-layer
    nn.LSTMs counts from)."""
    dirs = 2 if lstm.bidirectional else 1
    H = lstm.hidden_size
    if state is None:
        zeros = x.new_zeros(lstm.num_layers * dirs, H)
        state = (zeros, zeros)
    traces = []
    for layer in range(lstm.num_layers):
        outs = []
        for d in range(dirs):
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            p = {k: getattr(lstm, f"{k}{suffix}") for k in ("weight_ih", "weight_hh")}
            bias = getattr(lstm, f"bias_ih{suffix}") + getattr(lstm, f"bias_hh{suffix}") \
                if lstm.bias else x.new_zeros(4 * H)
            k = layer * dirs + d
            trace = run_layer(x, p["weight_ih"], p["weight_hh"], bias, state[0][k], state[1][k],
                              NN_LSTM, reverse=bool(d))
            direction = ("", " forward", " backward")[d + 1 if dirs == 2 else 0]
            traces.append(LayerTrace(f"{name} layer {first + layer}{direction}", tokens, trace))
            outs.append(trace.hidden)
        x = torch.cat(outs, dim=-1)                                             # (T, dirs * H)
    return x, traces


@dataclass
class GateStats:
    """Saturation of one named layer's gates over some text: for each gate the share of values
    < 0.1 (left) and > 0.9 (right), and the mean L2 norm of the cell state per step."""

    name: str
    steps: int
    units: int
    shares: dict[str, tuple[float, float]]  # gate -> (left, right)
    cell_norm: float

    def to_dict(self) -> dict:
        out = {"name": self.name, "steps": self.steps, "units": self.units}
        for gate, (left, right) in self.shares.items():
            out[f"{gate}_left"], out[f"{gate}_right"] = round(left, 4), round(right, 4)
        out["cell_norm"] = round(self.cell_norm, 4)
        return out


def statistics(traces: list[LayerTrace]) -> list[GateStats]:
    """The statistics of each named layer over all the texts it traced, in first-seen order."""
    grouped: dict[str, list[GateTrace]] = {}
    for t in traces:
        grouped.setdefault(t.name, []).append(t.trace)
    return [_stats(name, parts) for name, parts in grouped.items()]


def _stats(name: str, parts: list[GateTrace]) -> GateStats:
    shares = {}
    for gate in ("input", "forget", "output"):
        values = torch.cat([p.gates()[gate] for p in parts])                    # (sum T, H)
        shares[gate] = (float((values < LEFT).float().mean()),
                        float((values > RIGHT).float().mean()))
    cells = torch.cat([p.cell for p in parts])                                  # (sum T, H)
    return GateStats(name, cells.size(0), cells.size(1), shares,
                     float(cells.float().norm(dim=-1).mean()))


def most_saturated(trace: GateTrace, k: int) -> list[int]:
    """The k units whose input, forget and output gates are most often saturated (< 0.1 or
    > 0.9) over the trace: the cells that act most like switches."""
    share = sum(((g < LEFT) | (g > RIGHT)).float().mean(0) for g in trace.gates().values())
    return share.topk(min(k, share.numel())).indices.tolist()

"""Gate statistics of any task's model: the task's gates module (named in tasks/registry.py)
says which LSTMs the model has and what they read; this module turns their traces into the
saturation table of the run reports and `lstm-nlp inspect`, and into heatmap panels."""

from __future__ import annotations

import importlib
import time
from types import ModuleType
from typing import Any

import torch

from lstm_nlp.nn.gates import GateStats, LayerTrace, most_saturated, statistics
from lstm_nlp.reporting import console as reporting
from lstm_nlp.reporting import markdown
from lstm_nlp.tasks import registry
from lstm_nlp.tasks.base import inference

VALIDATION_TEXTS = 10  # validation texts (sentences) the reports' gate statistics read
HEATMAP_CELLS = 8      # cells per layer in a gate heatmap
HEATMAP_TOKENS = 80    # tokens shown of the heatmap's text


def module_of(task: str) -> ModuleType | None:
    """The task's gates module (from_validation, from_text), None for a task without one."""
    name = registry.get(task).gates_module
    return importlib.import_module(name) if name else None


def validation_traces(task_name: str, model: torch.nn.Module, task: Any,
                      n: int = VALIDATION_TEXTS) -> list[LayerTrace]:
    """The traces of the model's LSTMs over the start of the validation data the trainer's
    `task` holds (eval mode, no gradients); none for a task without a gates module."""
    gates = module_of(task_name)
    if gates is None:
        return []
    with inference(model):
        return gates.from_validation(model, task, n)


def validation_section(task_name: str, model: torch.nn.Module, task: Any) -> str:
    """The run report's last section: the gate statistics on validation text, timed."""
    start = time.perf_counter()
    traces = validation_traces(task_name, model, task)
    if not traces:
        return ""
    stats = statistics(traces)
    reporting.info(f"gate statistics: {len(stats)} LSTM layers over {stats[0].steps:,} tokens "
                   f"of validation text in {time.perf_counter() - start:.2f}s")
    return ("## Gate statistics (validation text)\n\n"
            f"The start of the validation data ({stats[0].steps:,} tokens for the first layer), "
            "read by `best.pt`; gates recomputed from the weights (`lstm-nlp inspect` does the "
            "same for any text).\n\n" + stats_markdown(stats))


def stats_markdown(stats: list[GateStats]) -> str:
    """One row per LSTM layer: steps, units, each gate's left/right saturated shares (< 0.1,
    > 0.9), mean cell norm."""
    header = ["LSTM layer", "steps", "units", "input <0.1", "input >0.9", "forget <0.1",
              "forget >0.9", "output <0.1", "output >0.9", "mean ‖c‖"]
    rows = ([s.name, f"{s.steps:,}", f"{s.units:,}",
             *(f"{share:.1%}" for gate in ("input", "forget", "output")
               for share in s.shares[gate]), f"{s.cell_norm:.2f}"] for s in stats)
    return markdown.table(header, rows)


def first_text(traces: list[LayerTrace]) -> list[LayerTrace]:
    """The traces of the first text (one per layer and direction)."""
    seen: set[str] = set()
    first = []
    for t in traces:
        if t.name in seen:
            break
        seen.add(t.name)
        first.append(t)
    return first


def heatmap_panels(traces: list[LayerTrace], cells: int = HEATMAP_CELLS,
                   tokens: int = HEATMAP_TOKENS) -> list[tuple[str, list[str], list[str], list]]:
    """For each layer of one text: its `cells` most saturated cells (nn/gates.most_saturated)
    and their tanh(c) over the first `tokens` tokens, as figures.gate_heatmap takes them."""
    panels = []
    for t in traces:
        units = most_saturated(t.trace, cells)
        values = torch.tanh(t.trace.cell[:tokens, units]).t()                   # (cells, T)
        panels.append((t.name, t.tokens[:tokens], [f"cell {u}" for u in units],
                       values.float().cpu().tolist()))
    return panels

"""`lstm-nlp inspect`: what a checkpoint holds (task, recipe, parameters per layer, vocabulary,
training summary) and, given text, the gate statistics of every LSTM in the model (recomputed
from the weights by the task's gates module) and a heatmap of the most saturated cells."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, TextIO

import torch

from lstm_nlp.data.textio import check_input, read_input_lines
from lstm_nlp.data.tokenizer import TokenizerPair
from lstm_nlp.errors import DataError
from lstm_nlp.nn.gates import LayerTrace, statistics
from lstm_nlp.reporting import console as reporting
from lstm_nlp.reporting import figures
from lstm_nlp.tasks import gates, registry
from lstm_nlp.tasks.base import inference
from lstm_nlp.training import checkpoint

STDIN = Path("-")


def inspect(model_path: Path, input_path: Path | None, stdin: TextIO, output: TextIO,
            as_json: bool = False, heatmap: Path | None = None) -> dict[str, Any]:
    """Describe the checkpoint; with text (-i FILE, `-i -` or a pipe on stdin), add the gate
    statistics over all of it and draw the heatmap of its first line (to `heatmap`, or
    beside the model); print it all as text or as one JSON object."""
    if input_path is not None and input_path != STDIN:
        check_input(input_path)  # refused before the model loads
    if heatmap is not None:  # asked for by name: without matplotlib, an error, not a warning
        figures.figure_class("gate heatmaps")
    path = checkpoint.resolve(model_path)
    model, tok, recipe = checkpoint.load_model(path)
    report = describe(path, model, tok, recipe, checkpoint.load(path).get("train_state", {}))
    lines = _text(input_path, stdin)
    if lines is not None:
        start = time.perf_counter()
        traces = _traces(model, tok, recipe, lines)
        report["gates"] = {"texts": len(lines),
                           "layers": [s.to_dict() for s in statistics(traces)]}
        reporting.info(f"gate statistics in {time.perf_counter() - start:.2f}s")
        name = "stdin" if input_path in (None, STDIN) else input_path.name
        where = heatmap or (path.parent / f"inspect-{name}.png")
        report["heatmap"] = _heatmap(gates.first_text(traces), where, heatmap is not None)
    output.write(reporting.to_json(report, indent=2) + "\n" if as_json else as_text(report))
    return report


def _text(input_path: Path | None, stdin: TextIO) -> list[str] | None:
    """The non-empty lines to trace: of -i FILE, of stdin with `-i -` or when it is not a
    terminal; None without text (the checkpoint alone is described), also for an empty stdin
    that was not asked for (a script's /dev/null), said on stderr."""
    if input_path is None and (stdin is None or stdin.isatty()):
        return None
    file = None if input_path in (None, STDIN) else input_path
    lines = [line for chunk in read_input_lines(stdin, file, 1 << 16) for line in chunk
             if line.strip()]
    if lines:
        return lines
    if input_path is None:
        reporting.info("stdin is empty: the checkpoint alone is described (pipe text, or give "
                       "-i FILE)")
        return None
    raise DataError(f"{file or 'stdin'}: no text to inspect (only empty lines)")


def _traces(model: torch.nn.Module, tok: Any, recipe: Any, lines: list[str]) -> list[LayerTrace]:
    module = gates.module_of(recipe.task)
    if module is None:
        raise DataError(f"task {recipe.task}: its models have no gate statistics")
    with inference(model):
        traces = module.from_text(model, tok, recipe, lines)
    if not traces:
        raise DataError("no text to inspect: every line is empty after tokenization")
    return traces


def _heatmap(traces: list[LayerTrace], path: Path, asked: bool) -> str | None:
    """The heatmap of one text's layers at `path`; left out with a warning when matplotlib is
    missing, unless it was asked for by name (figure_class raised before)."""
    start = time.perf_counter()
    with figures.optional("gate heatmap"):
        fig = figures.gate_heatmap(gates.heatmap_panels(traces),
                                   "most saturated cells of the first line: tanh(c) per token")
        figures.save(fig, path)
        reporting.info(f"heatmap: {path} ({time.perf_counter() - start:.2f}s)")
        return str(path)
    return None


def describe(path: Path, model: torch.nn.Module, tok: Any, recipe: Any,
             state: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's task, recipe, parameters per layer, vocabulary and training summary."""
    spec = registry.get(recipe.task)
    layers: dict[str, dict[str, Any]] = {}
    for name, p in model.named_parameters():  # tied weights once, under their first name
        owner, _, leaf = name.rpartition(".")
        layer = layers.setdefault(owner or leaf, {"name": owner or leaf, "parameters": 0,
                                                  "shapes": {}})
        layer["parameters"] += p.numel()
        layer["shapes"][leaf] = list(p.shape)
    metric = recipe.train.early_stopping_metric
    return {"checkpoint": str(path), "task": recipe.task, "noun": spec.noun,
            "recipe": recipe.to_dict(),
            "parameters": {"total": sum(v["parameters"] for v in layers.values()),
                           "layers": list(layers.values())},
            "vocabulary": vocabulary(tok),
            "training": {"steps": state.get("step", 0),
                         "minutes": round(state.get("elapsed_s", 0.0) / 60, 2),
                         "early_stopping_metric": metric,
                         "best_score": state.get("best_score"),
                         "best_step": state.get("best_step")}}


def vocabulary(tok: Any) -> dict[str, Any]:
    if isinstance(tok, TokenizerPair):
        return {"kind": tok.src.kind, "source": tok.src.vocab_size,
                "target": tok.tgt.vocab_size, "joint": tok.joint}
    return {"kind": tok.kind, "size": tok.vocab_size} if tok is not None else {}


def as_text(report: dict[str, Any]) -> str:
    """The report for people: a few lines, the parameters and gate statistics as tables."""
    r, t, v = report["recipe"], report["training"], report["vocabulary"]
    best = reporting.format_metric(registry.get(report["task"]).metrics[
        t["early_stopping_metric"]][0], t["best_score"])
    vocab = (f"{v['source']:,} source, {v['target']:,} target"
             f"{' (joint)' if v['joint'] else ''}" if "source" in v else f"{v.get('size', 0):,}")
    out = [f"checkpoint  {report['checkpoint']}",
           f"task        {report['task']} ({report['noun']}); recipe {r['name']}, seed {r['seed']}",
           "model       " + " ".join(f"{k}={val}" for k, val in r["model"].items()),
           "train       " + " ".join(f"{k}={r['train'][k]}" for k in (
               "optimizer", "lr", "schedule", "precision") if k in r["train"]),
           f"vocabulary  {vocab} ({v.get('kind', '-')})",
           f"training    saved after {reporting.counted(t['steps'], 'step')} "
           f"({t['minutes']:g} min); best validation {t['early_stopping_metric']} {best} at step "
           f"{t['best_step'] or 0:,}",
           f"parameters  {report['parameters']['total']:,}", ""]
    rows = [[layer["name"], f"{layer['parameters']:,}",
             "  ".join(f"{k} {'x'.join(map(str, s))}" for k, s in layer["shapes"].items())]
            for layer in report["parameters"]["layers"]]
    out += _columns(["layer", "parameters", "shapes"], rows, left=(0, 2)) + [""]
    if "gates" in report:
        g = report["gates"]
        out.append(f"gates over {reporting.counted(g['texts'], 'text')} (share of gate values "
                   "< 0.1 and > 0.9; mean L2 norm of the cell state):")
        keys = [f"{gate}_{side}" for gate in ("input", "forget", "output")
                for side in ("left", "right")]
        out += _columns(["LSTM layer", "steps", "units", "i<.1", "i>.9", "f<.1", "f>.9",
                         "o<.1", "o>.9", "|c|"],
                        [[s["name"], f"{s['steps']:,}", f"{s['units']:,}",
                          *(f"{s[k]:.1%}" for k in keys), f"{s['cell_norm']:.2f}"]
                         for s in g["layers"]]) + [""]
    return "\n".join(out) + "\n"


def _columns(header: list[str], rows: list[list[str]], left: tuple[int, ...] = (0,)
             ) -> list[str]:
    """Plain aligned columns: those in `left` left-aligned (names), the others right-aligned."""
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) if i in left else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in table]

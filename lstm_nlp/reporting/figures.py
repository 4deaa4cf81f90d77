"""The figures of the reports, as PNG files beside them: training curves, confusion matrices,
attention heatmaps, gate activations. Drawn with matplotlib's object API on its Agg canvas (no
pyplot, no display, no global state), imported when a figure is drawn, through the `plots` extra.

Every function takes plain numbers (lists, nested lists) and returns a matplotlib Figure; `save`
writes one atomically (a temp file renamed over the PNG) and says where in Markdown."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from lstm_nlp.errors import FileSystemError
from lstm_nlp.extras import MissingExtra, require
from lstm_nlp.filesystem import refused
from lstm_nlp.reporting.console import warning

DPI = 100
# validation columns of metrics.jsonl: (axis label, factor): accuracies as percentages
METRICS = {"val_bleu": ("BLEU (greedy decoding)", 1.0), "val_ppl": ("perplexity", 1.0),
           "val_acc": ("accuracy (%)", 100.0), "val_f1": ("macro-F1 (%)", 100.0),
           "val_loss": ("loss (nats)", 1.0)}


def figure_class(feature: str) -> Any:
    """matplotlib's Figure, or the one-line error naming the `plots` extra for `feature`."""
    require("matplotlib", "plots", feature)
    from matplotlib.figure import Figure

    return Figure


def warm_up() -> None:
    """Import matplotlib (about half a second) on a background thread, while the caller does
    other work, so that the figures drawn later cost only their drawing; nothing when the
    `plots` extra is missing (the figures then say so themselves)."""
    if importlib.util.find_spec("matplotlib") is not None:
        threading.Thread(target=_import_matplotlib, name="matplotlib import", daemon=True).start()


def _import_matplotlib() -> None:
    with contextlib.suppress(Exception):  # a broken install is reported where figures are drawn
        for module in ("matplotlib.figure", "matplotlib.backends.backend_agg"):  # savefig's
            importlib.import_module(module)


@contextlib.contextmanager
def optional(what: str) -> Iterator[None]:
    """For figures a report or verb can do without: a missing matplotlib, or a figure the
    file system refuses, is a one-line warning (a missing plot never loses a training)."""
    try:
        yield
    except (MissingExtra, FileSystemError) as e:
        warning(f"{what} left out: {e}")


def save(fig: Any, path: Path) -> Path:
    """Write `fig` as a PNG at `path`: into a temp file in the same folder, then renamed over
    `path`, so a reader never sees half a PNG; what the file system refuses is one line."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with refused("cannot write figure", path), warnings.catch_warnings():
            # a token the font has no glyph for is drawn as a box, not said on stderr
            warnings.filterwarnings("ignore", "Glyph .* missing from font")
            fig.savefig(tmp, format="png", dpi=DPI)
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path


def markdown(path: Path, caption: str) -> str:
    """The Markdown that shows a figure written beside the report (a relative link)."""
    return f"![{caption}]({Path(path).name})\n"


def embedded(path: Path, caption: str, draw: Callable[[], Any]) -> str:
    """Draw a report's figure, write it at `path` and give the Markdown that shows it; '' and
    a warning when it cannot be (no matplotlib, a refused write)."""
    with optional(caption):
        return markdown(save(draw(), path), caption)
    return ""


def curves(rows: list[dict[str, Any]], metric: str, best_step: int | None, unit: str,
           title: str, smoothed: bool = False) -> Any:
    """Training curves over optimizer steps from metrics.jsonl rows: train and validation loss,
    the validation `metric`, the learning rate, the throughput in `unit` per second; the step
    of best.pt marked in each. `smoothed`: the training loss includes label smoothing."""
    Figure = figure_class("plots in reports")
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11, 7.5))  # fixed margins: a layout engine doubles the drawing time
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.08, top=0.93, wspace=0.25, hspace=0.1)
    fig.suptitle(title)
    (loss, score), (lr, speed) = fig.subplots(2, 2, sharex=True)
    _series(loss, rows, "train_loss", "train" + (" (with label smoothing)" if smoothed else ""))
    _series(loss, rows, "val_loss", "validation")
    loss.set_ylabel(f"loss (nats per {unit.removesuffix('s')})")
    label, factor = METRICS.get(metric, (metric, 1.0))
    _series(score, rows, metric, "validation", factor)
    score.set_ylabel(f"validation {label}")
    _series(lr, rows, "lr", None)
    lr.set_ylabel("learning rate")
    lr.set_ylim(bottom=0)
    lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    _series(speed, rows, "tokens_per_s", None)
    speed.set_ylabel(f"{unit} per second (training)")
    speed.set_ylim(bottom=0)
    for ax in (loss, score, lr, speed):
        for axis in (ax.xaxis, ax.yaxis):  # fewer ticks: most of the drawing time is ticks
            axis.set_major_locator(MaxNLocator(5))
        if best_step is not None:
            ax.axvline(best_step, color="tab:green", linestyle="--", linewidth=1,
                       label=f"best.pt (step {best_step:,})")
        ax.grid(alpha=0.3)
    best = [r for r in rows if r.get("step") == best_step and r.get(metric) is not None]
    if best:
        score.plot([best_step], [best[0][metric] * factor], marker="*", markersize=14,
                   color="tab:green", linestyle="none")
    for ax in (lr, speed):
        ax.set_xlabel("step (optimizer updates)")
    loss.legend(fontsize="small")
    score.legend(fontsize="small")
    return fig


def _series(ax: Any, rows: list[dict[str, Any]], key: str, label: str | None,
            factor: float = 1.0) -> None:
    """One column of the rows over their steps (rows without it left out)."""
    points = [(r["step"], r[key] * factor) for r in rows
              if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    if points:
        steps, values = zip(*points)
        ax.plot(steps, values, marker="o", markersize=3, label=label)


def confusion(classes: list[str], matrix: list[list[int]], title: str) -> Any:
    """A confusion matrix (rows: true class, columns: predicted), each cell its count, shaded
    by its share of the true class (so that rare classes show their errors too)."""
    Figure = figure_class("plots in reports")
    n = len(classes)
    side = min(3 + 0.6 * n, 14)  # inches of the matrix
    label = 0.6 + 0.09 * max(len(c) for c in classes[:60])  # inches for the class names
    width, height = side + label + 2.0, side + label + 0.6
    fig = Figure(figsize=(width, height))  # fixed margins: a layout engine costs a second draw
    fig.subplots_adjust(left=label / width, right=1 - 2.0 / width, bottom=label / height,
                        top=1 - 0.6 / height)
    ax = fig.subplots()
    shares = [[v / max(sum(row), 1) for v in row] for row in matrix]
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="share of the true class", fraction=0.05, pad=0.04)
    if n <= 30:  # counts stay readable up to about this many classes
        for i, row in enumerate(matrix):
            for j, v in enumerate(row):
                ax.text(j, i, f"{v:,}", ha="center", va="center", fontsize="small",
                        color="white" if shares[i][j] > 0.5 else "black")
    _ticks(ax, classes, classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    return fig


def attention(weights: Sequence[Sequence[float]], src: list[str], tgt: list[str],
              title: str) -> Any:
    """Attention weights (one row per target piece, one column per source piece) as a
    heatmap: which source pieces each output piece was computed from."""
    Figure = figure_class("attention heatmaps")
    left = 0.7 + 0.08 * max(map(len, tgt), default=1)  # inches for the labels, so that no
    top = 1.0 + 0.08 * max(map(len, src), default=1)   # layout engine (a second draw) is needed
    width, height = left + min(0.3 * len(src), 14) + 1.6, top + min(0.28 * len(tgt), 14) + 0.2
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - 1.6 / width, top=1 - top / height,
                        bottom=0.2 / height)
    ax = fig.subplots()
    image = ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    fig.colorbar(image, ax=ax, label="attention weight", fraction=0.08, pad=0.03)
    _ticks(ax, src, tgt)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("source pieces")
    ax.set_ylabel("output pieces")
    fig.suptitle(title, fontsize="medium", y=1 - 0.1 / height, va="top")
    return fig


def gate_heatmap(panels: list[tuple[str, list[str], list[str], Sequence[Sequence[float]]]],
                 title: str) -> Any:
    """One panel per LSTM layer: (layer name, tokens, cell labels, values per cell and token
    in [-1, 1]), the cells as rows, the tokens as columns."""
    Figure = figure_class("gate heatmaps")
    width = min(3.5 + 0.3 * max(len(p[1]) for p in panels), 20)
    heights = [0.8 + 0.22 * len(p[2]) for p in panels]
    fig = Figure(figsize=(width, min(sum(heights) + 1.2 * len(panels), 40)),
                 layout="constrained")
    fig.suptitle(title)
    axes = fig.subplots(len(panels), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, (name, tokens, cells, values) in zip(axes, panels):
        image = ax.imshow(values, cmap="RdBu_r", vmin=-1.0, vmax=1.0, aspect="auto")
        _ticks(ax, tokens, cells)
        ax.set_title(name, fontsize="medium", loc="left")
        ax.set_ylabel("cell")
        fig.colorbar(image, ax=ax, label="tanh(c)", pad=0.01)
    return fig


def _ticks(ax: Any, columns: list[str], rows: list[str]) -> None:
    ax.set_xticks(range(len(columns)), [_plain(c) for c in columns], rotation=90,
                  fontsize="small")
    ax.set_yticks(range(len(rows)), [_plain(r) for r in rows], fontsize="small")


def _plain(text: str) -> str:
    """A token as a label: matplotlib reads text between two `$` as math."""
    return text.replace("$", r"\$")

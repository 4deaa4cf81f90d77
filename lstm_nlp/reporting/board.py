"""TensorBoard event files for a run (`train.tensorboard: true`), in `<run>/tensorboard/`: the
training loss and throughput at every log step, each validation's scores and learning rate,
histograms of the gate activations on validation text at each validation, and the report's
figures as images when the run ends. `tensorboard` is an optional extra (`lstm-nlp[tensorboard]`);
the Reporter (console.py) calls this object, the trainer knows nothing of it."""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any, Callable

from lstm_nlp.extras import require

FOLDER = "tensorboard"


def check_installed() -> None:
    """The one-line error naming the extra, asked before a run builds anything."""
    require("tensorboard", "tensorboard", "train.tensorboard")


def tag(name: str) -> str:
    """`encoder layer 0 forward` -> `encoder_layer_0_forward` (TensorBoard groups tags by `/`)."""
    return name.replace(" ", "_")


class Board:
    """One run's event writer. `gates` returns the gate traces (nn/gates.LayerTrace) of the
    model on validation text, for the histograms; None: no histograms."""

    def __init__(self, folder: Path, unit: str, gates: Callable[[], list[Any]] | None = None):
        check_installed()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder))
        self.unit, self.gates = unit, gates

    def train(self, step: int, loss: float, per_s: float) -> None:
        """A log step: the training loss (per token or text) and throughput."""
        self.writer.add_scalar("train/loss", loss, step)
        self.writer.add_scalar(f"train/{self.unit}_per_s", per_s, step)

    def validation(self, row: dict[str, Any]) -> None:
        """A validation's metrics row (val_* under valid/, lr and training accuracy under
        train/) and the gate histograms."""
        step = row["step"]
        for key, value in row.items():
            if not isinstance(value, numbers.Real) or not math.isfinite(value):
                continue
            if key.startswith("val_"):
                self.writer.add_scalar(f"valid/{key[4:]}", value, step)
            elif key in ("lr", "train_acc"):
                self.writer.add_scalar(f"train/{key.removeprefix('train_')}", value, step)
        if self.gates is not None:
            self.histograms(step, self.gates())
        self.writer.flush()

    def histograms(self, step: int, traces: list[Any]) -> None:
        """Each layer's input, forget and output gate values and tanh(cell), over all texts."""
        import torch

        grouped: dict[str, list[Any]] = {}
        for t in traces:
            grouped.setdefault(t.name, []).append(t.trace)
        for name, parts in grouped.items():
            values = {**{g: [p.gates()[g] for p in parts] for g in ("input", "forget", "output")},
                      "tanh_cell": [p.cell.tanh() for p in parts]}
            for kind, tensors in values.items():
                self.writer.add_histogram(f"gates/{tag(name)}/{kind}",
                                          torch.cat(tensors).float().flatten().cpu(), step)

    def images(self, step: int, paths: list[Path]) -> None:
        """PNG figures (the report's) as images, tagged by file name."""
        if not paths:
            return
        require("matplotlib", "plots", "figures in TensorBoard")
        from matplotlib.image import imread

        for path in paths:
            self.writer.add_image(f"figures/{Path(path).stem}", imread(path), step,
                                  dataformats="HWC")
        self.writer.flush()

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

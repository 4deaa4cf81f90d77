"""The optimizer and what works through its parameter groups: discriminative learning rates
(one group per layer group), gradual unfreezing, and setting the step's lr."""

from __future__ import annotations

import torch

from lstm_nlp.config.sections import TrainConfig


def layer_groups(model: torch.nn.Module) -> list[list[torch.nn.Parameter]]:
    """The model's parameters in groups from the input side to the output side (a model without
    `layer_groups()` is one group). Each parameter appears once, in its first group."""
    groups = model.layer_groups() if hasattr(model, "layer_groups") else [list(model.parameters())]
    seen: set[int] = set()
    out = []
    for group in groups:
        unique = [p for p in group if id(p) not in seen]
        seen.update(id(p) for p in unique)
        out.append(unique)
    return out


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """One parameter group per layer group; with layer_lr_decay d, each group below the top gets
    the lr of the one above divided by d (discriminative fine-tuning, Howard & Ruder 2018)."""
    groups = layer_groups(model)
    params = [{"params": g, "lr_mult": cfg.layer_lr_decay ** -(len(groups) - 1 - i)}
              for i, g in enumerate(groups)]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The schedule's lr for the top group; each group below gets it times its `lr_mult`."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)


def unfreeze(model: torch.nn.Module, cfg: TrainConfig, epoch: int) -> None:
    """Gradual unfreezing (Howard & Ruder 2018): in epoch e (from 0) only the top e + 1 layer
    groups are trained."""
    if not cfg.gradual_unfreezing:
        return
    groups = layer_groups(model)
    for i, group in enumerate(groups):
        for p in group:
            p.requires_grad_(i >= len(groups) - 1 - epoch)

"""The training loop, shared by every task. Nothing in this file knows what the model computes:
a task object says how to batch, how to compute the loss and how to validate.

Order of one step: zero-grad -> forward -> loss -> backward -> clip -> lr -> step; then maybe
validate, checkpoint (last + best), early-stop. The data position is (epoch, batch index), so
`resume` replays exactly what an uninterrupted run would have done.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from lstm_nlp.training import checkpoint
from lstm_nlp.training import runtime
from lstm_nlp.config.sections import TrainConfig
from lstm_nlp.errors import LstmNlpError, TrainingInterrupted
from lstm_nlp.tasks.base import TrainTask
from lstm_nlp.reporting.console import Reporter, truncate_metrics



@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    elapsed_s: float = 0.0
    best_score: float | None = None
    best_step: int = 0
    bad_validations: int = 0
    lr_scale: float = 1.0
    stopped_early: bool = False
    epoch_len: int = 0  # batches in the current epoch


@dataclass
class TrainResult:
    state: TrainState
    last_validation: dict[str, float]
    reason: str


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


def unfreeze(model: torch.nn.Module, cfg: TrainConfig, epoch: int) -> None:
    """Gradual unfreezing (Howard & Ruder 2018): in epoch e (from 0) only the top e + 1 layer
    groups are trained."""
    if not cfg.gradual_unfreezing:
        return
    groups = layer_groups(model)
    for i, group in enumerate(groups):
        for p in group:
            p.requires_grad_(i >= len(groups) - 1 - epoch)


def progress(cfg: TrainConfig, state: TrainState) -> float:
    """How much of the training budget is spent, 0..1: the nearest of the set limits."""
    done = [0.0]
    if cfg.max_steps:
        done.append(state.step / cfg.max_steps)
    if cfg.max_minutes:
        done.append(state.elapsed_s / (cfg.max_minutes * 60))
    if cfg.max_epochs:
        done.append((state.epoch + state.batch_in_epoch / max(state.epoch_len, 1))
                    / cfg.max_epochs)
    return min(max(done), 1.0)


def learning_rate(cfg: TrainConfig, state: TrainState) -> float:
    """Linear warmup over `warmup_steps`, then: constant; or times the plateau decays so far; or
    linear decay to min_lr over the budget (best for a fixed budget: Li et al. 2020); or times
    decay_factor for each epoch after the first decay_start_epoch (Zaremba et al. 2014); or
    slanted triangular: up from lr / slanted_ratio over the first cut_frac of the budget, then
    linearly down to it (Howard & Ruder 2018)."""
    warm = min(1.0, (state.step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    if cfg.schedule == "linear":
        return warm * max(cfg.lr * (1.0 - progress(cfg, state)), cfg.min_lr)
    if cfg.schedule == "slanted":
        p = progress(cfg, state)
        x = p / cfg.cut_frac if p < cfg.cut_frac else 1.0 - (p - cfg.cut_frac) / (1.0 - cfg.cut_frac)
        return warm * cfg.lr * (1.0 + x * (cfg.slanted_ratio - 1.0)) / cfg.slanted_ratio
    if cfg.schedule == "epoch_decay":
        decays = max(0, state.epoch + 1 - cfg.decay_start_epoch)
        return warm * max(cfg.lr * cfg.decay_factor ** decays, cfg.min_lr)
    lr = cfg.lr * state.lr_scale
    if state.lr_scale < 1.0:
        lr = max(lr, cfg.min_lr)
    return lr * warm


class _StopFlag:
    """First Ctrl-C asks the loop to save and stop after the current step; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "_StopFlag":
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: no handler, Ctrl-C raises as usual
            self._previous = None
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class WeightAverage:
    """Exponential moving average of the trainable weights (Polyak averaging; OpenNMT-py's
    average_decay): after each step avg <- avg + (1 - d) (w - avg), with d = min(decay,
    (1 + step) / (10 + step)) so early weights fade fast. Validation, best.pt and the test
    use the average; training continues from the raw weights."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.params = {k: p for k, p in model.named_parameters()}
        self.avg = {k: p.detach().clone() for k, p in self.params.items()}

    def update(self, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, p in self.params.items():
                if p.requires_grad:  # frozen groups (gradual unfreezing) keep their average
                    self.avg[k].lerp_(p.detach(), 1.0 - d)

    def swap(self) -> None:
        """Exchange the model's weights and the average (twice = back to where it was)."""
        with torch.no_grad():
            for k, p in self.params.items():
                raw = p.detach().clone()
                p.copy_(self.avg[k])
                self.avg[k] = raw


def fit(model: torch.nn.Module, task: TrainTask, cfg: TrainConfig, run_dir: Path,
        reporter: Reporter, extra: dict[str, Any], resume: bool, stopping: tuple[str, bool],
        on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Train until a limit or early stopping; `extra` (recipe, tokenizer) goes into checkpoints;
    `stopping`: (validation score that picks best.pt, higher is better)."""
    optimizer = build_optimizer(model, cfg)
    state = TrainState()
    average = WeightAverage(model, cfg.average_decay) if cfg.average_decay else None
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if resume:
        ckpt = checkpoint.load(last_path)
        checkpoint.load_state(model, ckpt["model"], last_path, "model weights")
        if average is not None:
            if "average" not in ckpt:
                raise LstmNlpError(f"--resume: {last_path} has no weight average; it was "
                                   "trained without train.average_decay")
            average.avg = {k: v.clone() for k, v in ckpt["average"].items()}
        optimizer.load_state_dict(ckpt["optimizer"])
        state = TrainState(**ckpt["train_state"])
        torch.set_rng_state(ckpt["rng"])
        task.load_state_dict(ckpt.get("task_state", {}))
        truncate_metrics(run_dir / "metrics.jsonl", state.step)
    metric_key, higher = stopping

    def save(path: Path) -> None:
        """The raw weights, and beside them the average (which best.pt holds as its model)."""
        extras = {"average": average.avg} if average is not None else {}
        checkpoint.save(path, {**extra, "model": model.state_dict(),
                               "optimizer": optimizer.state_dict(),
                               "train_state": asdict(state), "rng": torch.get_rng_state(),
                               "task_state": task.state_dict(), **extras})

    def save_best() -> None:
        if average is None:
            return save(best_path)
        average.swap()  # the model holds the average: best.pt's weights are the averaged ones
        try:
            checkpoint.save(best_path, {**extra, "model": model.state_dict(),
                                        "train_state": asdict(state)})
        finally:
            average.swap()

    window = {"loss": 0.0, "tokens": 0, "correct": 0, "time": 0.0}
    last_row: dict[str, float] = {}

    def validate() -> bool:
        """Validate, log, checkpoint; True when early stopping says stop."""
        nonlocal last_row
        model.eval()
        if average is not None:
            average.swap()
        try:
            with torch.inference_mode(), runtime.autocast(cfg.precision):
                scores = task.validate(model)
        finally:
            if average is not None:
                average.swap()
        model.train()
        metric = scores[metric_key]
        improved = state.best_score is None or (metric > state.best_score if higher
                                                else metric < state.best_score)
        if improved:
            state.best_score, state.best_step, state.bad_validations = metric, state.step, 0
        else:
            state.bad_validations += 1
            if cfg.schedule == "plateau" and state.bad_validations % (cfg.decay_patience + 1) == 0:
                state.lr_scale *= cfg.decay_factor
        stop = bool(cfg.patience) and state.bad_validations >= cfg.patience
        state.stopped_early = stop
        n = max(window["tokens"], 1)
        last_row = {"step": state.step, "epoch": state.epoch + 1,
                    "train_loss": window["loss"] / n, "train_acc": window["correct"] / n,
                    **scores, "lr": learning_rate(cfg, state),
                    "tokens_per_s": window["tokens"] / max(window["time"], 1e-9),
                    "elapsed_s": round(state.elapsed_s, 1)}
        save(last_path)
        if improved:
            save_best()
        reporter.validation(last_row, best=improved)
        window.update(loss=0.0, tokens=0, correct=0, time=0.0)
        return stop

    def limit_reached() -> str:
        if cfg.max_steps and state.step >= cfg.max_steps:
            return f"reached max_steps {cfg.max_steps}"
        if cfg.max_epochs and state.epoch >= cfg.max_epochs:
            return f"reached max_epochs {cfg.max_epochs}"
        if cfg.max_minutes and state.elapsed_s >= cfg.max_minutes * 60:
            return f"reached max_minutes {cfg.max_minutes:g}"
        return ""

    model.train()
    reason = limit_reached()
    batches = task.epoch_batches(state.epoch)
    state.epoch_len = len(batches)
    unfreeze(model, cfg, state.epoch)
    total = cfg.max_steps or (cfg.max_epochs * len(batches) if cfg.max_epochs else None)
    reporter.start(total, state.step)
    validated_at = -1
    clock = time.perf_counter()  # wall time (steps and validations) counts toward max_minutes

    def tick() -> None:
        nonlocal clock
        now = time.perf_counter()
        state.elapsed_s += now - clock
        clock = now

    try:
        with _StopFlag() as stop_flag:
            while not reason:
                if state.batch_in_epoch >= len(batches):
                    state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                    if (reason := limit_reached()):
                        break
                    batches = task.epoch_batches(state.epoch)
                    state.epoch_len = len(batches)
                    unfreeze(model, cfg, state.epoch)
                t0 = time.perf_counter()
                batch = task.collate(batches[state.batch_in_epoch])
                optimizer.zero_grad(set_to_none=True)
                with runtime.autocast(cfg.precision):
                    out = task.loss(model, batch)
                out.objective().backward()
                if cfg.clip_norm > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
                lr = learning_rate(cfg, state)
                for group in optimizer.param_groups:
                    group["lr"] = lr * group.get("lr_mult", 1.0)
                optimizer.step()
                if average is not None:
                    average.update(state.step)
                dt = time.perf_counter() - t0
                state.step += 1
                state.batch_in_epoch += 1
                tick()
                loss_value = out.loss.item()
                if not math.isfinite(loss_value):
                    raise LstmNlpError(f"training loss is {loss_value} at step {state.step}"
                                             "; lower train.lr or raise train.clip_norm")
                window["loss"] += loss_value
                window["tokens"] += out.n_tokens
                window["correct"] += out.n_correct
                window["time"] += dt
                spent = progress(cfg, state)  # the nearest limit, so the ETA follows it too
                estimate = int(state.step / spent) if spent > 0 else None
                reporter.advance(state.step, loss_value / max(out.n_tokens, 1),
                                 window["tokens"] / max(window["time"], 1e-9), estimate,
                                 log=state.step % cfg.log_every == 0 or state.step == 1)
                if on_step is not None:
                    on_step(state.step)
                if (state.step % cfg.valid_every == 0 if cfg.valid_every
                        else state.batch_in_epoch >= len(batches)):  # 0: at each epoch's end
                    validated_at = state.step
                    stop = validate()
                    tick()
                    if stop:
                        reason = f"early stopping: no better val {cfg.early_stopping_metric} " \
                                 f"in {cfg.patience} validations"
                        break
                if stop_flag.requested:
                    tick()
                    save(last_path)
                    raise TrainingInterrupted(f"interrupted at step {state.step}; saved "
                                              f"{last_path} (continue with --resume)")
                reason = reason or limit_reached()
            if validated_at != state.step and state.step > 0:
                validate()
    finally:
        reporter.stop()
    return TrainResult(state, last_row, reason)

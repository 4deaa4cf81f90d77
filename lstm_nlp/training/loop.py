"""The training loop, shared by every task. Nothing in this file knows what the model computes:
a task object says how to batch, how to compute the loss and how to validate.

A step: zero-grad -> (batch -> forward -> loss -> backward) for each of train.accum_steps batches
-> clip -> lr -> step -> average; then
maybe validate and checkpoint (last + best), then stop on early stopping, a stop signal (Ctrl-C,
SIGTERM, SIGHUP), divergence or a limit. The data position is (epoch, batch index), so `resume`
replays exactly what an uninterrupted run would have done; with accumulation the step counts
optimizer steps and the batch index batches. The parts live beside this file: the
position, window and clock (state.py), the schedules (schedules.py), the optimizer (optim.py),
the weight average (averaging.py), the stop signals (signals.py), the divergence rule
(divergence.py), the processes training together (distributed.py).

With several processes (ranks), a step's batches are the world_size * accum_steps next ones and
rank r takes its accum_steps of them (r * accum_steps onwards), so that a step of N ranks is
the step of one process with accum_steps N times as large; every rank makes the same decisions
(limits, validation scores, stop signals) from numbers they agree on, and rank 0 alone writes.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, NoReturn

import torch

from lstm_nlp.config.sections import TrainConfig
from lstm_nlp.errors import ConfigError, DivergenceError, LstmNlpError, TrainingInterrupted
from lstm_nlp.reporting.console import Reporter, info, truncate_metrics
from lstm_nlp.tasks.base import LossOutput, TrainTask, inference
from lstm_nlp.training import checkpoint, devices, distributed, runtime, threads
from lstm_nlp.training.averaging import WeightAverage
from lstm_nlp.training.divergence import LossMonitor
from lstm_nlp.training.optim import build_optimizer, set_lr, unfreeze
from lstm_nlp.training.schedules import learning_rate, plateau_decay, progress
from lstm_nlp.training.signals import StopSignals, describe
from lstm_nlp.training.state import Clock, TrainState, Window


@dataclass
class TrainResult:
    state: TrainState
    last_validation: dict[str, float]
    reason: str


class Trainer:
    """One run's training: the model, its task, optimizer, position, weight average, reporter and
    checkpoint paths, with one method per part of a step so that each can be tested alone.
    `extra` (recipe, tokenizer) goes into every checkpoint; `stopping` is (the validation score
    that picks best.pt, whether higher is better). The model is on the run's device already:
    batches, checkpoints read back and the gradient scaler follow it there. `group`: the
    processes training together (this one alone by default)."""

    def __init__(self, model: torch.nn.Module, task: TrainTask, cfg: TrainConfig, run_dir: Path,
                 reporter: Reporter, extra: dict[str, Any], stopping: tuple[str, bool],
                 group: distributed.Group = distributed.SINGLE):
        self.model, self.task, self.cfg, self.reporter, self.extra = \
            model, task, cfg, reporter, extra
        self.group = group
        self.replica = distributed.Replica(model, task, group)  # DDP with several processes
        self.replica.refresh()  # which gives every rank the weights of rank 0 at once
        self.metric, self.higher = stopping
        self.device = devices.device_of(model)
        self.optimizer = build_optimizer(model, cfg)
        self.scaler = runtime.grad_scaler(cfg.precision, self.device)  # fp16; else pass-through
        self.state = TrainState()
        self.average = WeightAverage(model, cfg.average_decay) if cfg.average_decay else None
        self.last_path, self.best_path = run_dir / "last.pt", run_dir / "best.pt"
        self.metrics_path, self.run_dir = run_dir / "metrics.jsonl", run_dir
        self.window = Window()
        self.clock = Clock()
        self.losses = LossMonitor()  # recent training losses, against divergence
        self.signals = StopSignals()  # handlers installed while fit() trains
        self.batches: list[Any] = []  # the current epoch's items (collated one at a time)
        self.last_row: dict[str, float] = {}  # the latest validation's metrics row
        self.saved_step: int | None = None  # the step last.pt holds (None: no last.pt yet)

    # -- checkpoints -------------------------------------------------------------------------

    def restore(self) -> None:
        """Continue from last.pt: weights, average, optimizer, gradient scale, position, RNG and
        the task's carried state, on this run's device (which may differ from the one that
        saved it); validations logged after that checkpoint are forgotten (replayed), the last
        one before it stays the last validation until the next. Every rank reads the same
        file and takes its own RNG and carried state from it."""
        ckpt = checkpoint.load(self.last_path, self.device)
        trained_by = ckpt.get("world_size", 1)
        if trained_by != self.group.size:
            raise ConfigError(
                f"--resume: {self.last_path} was trained by {trained_by} "
                f"process{'es' if trained_by > 1 else ''}, this run has {self.group.size}; "
                f"resume it with as many (--nproc {trained_by}): the batches of a step and "
                "the carried state are shared out by process")
        checkpoint.load_state(self.model, ckpt["model"], self.last_path, "model weights")
        if self.average is not None:
            if "average" not in ckpt:
                raise LstmNlpError(f"--resume: {self.last_path} has no weight average; it was "
                                   "trained without train.average_decay")
            self.average.load_state_dict(ckpt["average"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):  # absent: saved without fp16 (or by an older lstm-nlp)
            self.scaler.load_state_dict(ckpt["scaler"])
        self.state = TrainState(**ckpt["train_state"])
        own = ckpt["ranks"][self.group.rank] if self.group.several else ckpt
        torch.set_rng_state(own["rng"].cpu())  # map_location put it on the device
        devices.set_rng_state(self.device, own)
        self.task.load_state_dict(own.get("task_state", {}))
        self.saved_step = self.state.step
        self.last_row = self.group.from_main(self.truncate_metrics)

    def truncate_metrics(self) -> dict[str, float]:
        """Forget the validations logged after last.pt's step; the last one kept."""
        rows = truncate_metrics(self.metrics_path, self.state.step)
        return rows[-1] if rows else {}

    def _full_checkpoint(self, ranks: list[dict[str, Any]]) -> dict[str, Any]:
        """All that resume needs: the raw weights, and beside them the average; the gradient
        scaler's state when it scales (fp16); the RNG (the device's own besides the CPU's) and
        the task's carried state, rank 0's at the top level and, with several processes, every
        rank's in `ranks` with their number in `world_size`."""
        extras = {"average": self.average.state_dict()} if self.average is not None else {}
        if self.scaler.is_enabled():
            extras["scaler"] = self.scaler.state_dict()
        if self.group.several:
            extras.update(world_size=self.group.size, ranks=ranks)
        return {**self.extra, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "train_state": asdict(self.state),
                **ranks[0], **extras}

    def rank_state(self) -> dict[str, Any]:
        """What differs between ranks: the RNG and the task's carried state (on the CPU)."""
        return {"rng": torch.get_rng_state(), **devices.rng_state(self.device),
                "task_state": devices.to_device(self.task.state_dict(), devices.CPU)}

    def save_last(self) -> None:
        """last.pt, written by rank 0 with every rank's own state (all ranks call this)."""
        ranks = self.group.gather(self.rank_state())
        if self.group.is_main:
            checkpoint.save(self.last_path, self._full_checkpoint(ranks))
        self.saved_step = self.state.step

    def save_best(self) -> None:
        """best.pt is for inference and sharing: the weights validation scored (the average when
        averaging), the recipe, tokenizer and position; not the optimizer, RNG or task state,
        which only resume needs, and resume reads last.pt (Adam's two moments alone are twice
        the weights)."""
        if self.group.is_main:
            self._save_weights(self.best_path)

    def _save_weights(self, path: Path) -> None:
        """A weights-only checkpoint (best.pt's kind): the averaged weights when averaging."""
        averaged = self.average.applied() if self.average is not None else contextlib.nullcontext()
        with averaged:
            checkpoint.save(path, {**self.extra, "model": self.model.state_dict(),
                                   "train_state": asdict(self.state)})

    def keep_checkpoint(self) -> None:
        """train.keep_checkpoints > 0: this validation's weights as checkpoints/step-<step>.pt
        (for `lstm-nlp average`); the oldest beyond that many are deleted."""
        keep = self.cfg.keep_checkpoints
        if not keep or not self.group.is_main:
            return
        folder = self.run_dir / checkpoint.KEPT_FOLDER
        folder.mkdir(exist_ok=True)
        self._save_weights(folder / f"step-{self.state.step}.pt")
        for old in checkpoint.kept_checkpoints(self.run_dir)[:-keep]:
            old.unlink(missing_ok=True)

    # -- the data position -------------------------------------------------------------------

    def begin_epoch(self) -> None:
        """The current epoch's batches (a task may resample its data here) and trainable
        layer groups."""
        self.batches = self.task.epoch_batches(self.state.epoch)
        self.state.epoch_len = len(self.batches)
        unfreeze(self.model, self.cfg, self.state.epoch)
        self.replica.refresh()

    def roll_over(self) -> str:
        """At an epoch's end, begin the next one; the limit that ends the run there instead
        ('' to go on, also when the epoch has batches left)."""
        if self.state.batch_in_epoch < len(self.batches):
            return ""
        self.state.epoch, self.state.batch_in_epoch = self.state.epoch + 1, 0
        if (reason := self.limit_reached()):
            return reason
        self.begin_epoch()
        return ""

    def next_batch(self, ahead: int = 0) -> Any:
        """The next batch (or the one `ahead` after it), collated on the CPU and moved to the
        model's device."""
        batch = self.task.collate(self.batches[self.state.batch_in_epoch + ahead])
        return devices.to_device(batch, self.device)

    def next_batches(self) -> list[Any]:
        """This rank's batches of the next step: train.accum_steps of them (the step takes
        world_size times as many, or what is left of the epoch: a step never crosses an epoch's
        end; rank r takes the r-th share of them). Empty for a rank that an epoch's last step
        leaves without a batch."""
        k, rank = self.cfg.accum_steps, self.group.rank
        n = min(k * self.group.size, len(self.batches) - self.state.batch_in_epoch)
        return [self.next_batch(i) for i in range(k * rank, min(n, k * (rank + 1)))]

    def steps_per_epoch(self) -> int:
        """Optimizer steps in the current epoch."""
        return -(-len(self.batches) // (self.cfg.accum_steps * self.group.size))

    def planned_steps(self) -> int | None:
        """The progress bar's first total; steps re-estimate it from the nearest limit."""
        cfg = self.cfg
        return cfg.max_steps or (cfg.max_epochs * self.steps_per_epoch() if cfg.max_epochs
                                 else None)

    def limit_reached(self) -> str:
        """Which limit the run has reached ('' while none): steps, epochs or minutes."""
        cfg, state = self.cfg, self.state
        if cfg.max_steps and state.step >= cfg.max_steps:
            return f"reached max_steps {cfg.max_steps}"
        if cfg.max_epochs and state.epoch >= cfg.max_epochs:
            return f"reached max_epochs {cfg.max_epochs}"
        if cfg.max_minutes and state.elapsed_s >= cfg.max_minutes * 60:
            return (f"stopped by the time budget after {self.trained_so_far()} "
                    f"(max_minutes {cfg.max_minutes:g})")
        return ""

    def trained_so_far(self) -> str:
        """How far the run got toward its step or epoch limit (the nearer, when both are set),
        for a run the time budget ended first: '3 of 10 epochs', '1,200 of 5,000 steps', or
        '1,200 steps' with no other limit."""
        cfg, state = self.cfg, self.state
        epochs = state.epoch + state.batch_in_epoch / max(state.epoch_len, 1)
        by_epochs = cfg.max_epochs and (not cfg.max_steps
                                        or epochs / cfg.max_epochs >= state.step / cfg.max_steps)
        if by_epochs:
            return f"{round(epochs, 1):g} of {cfg.max_epochs} epochs"
        if cfg.max_steps:
            return f"{state.step:,} of {cfg.max_steps:,} steps"
        return f"{state.step:,} steps"

    # -- a step ------------------------------------------------------------------------------

    def train_step(self, *batches: Any) -> LossOutput:
        """One optimizer step on `batches` (consecutive ones of the epoch, as next_batches gives
        them), counted in the position: forward and backward of each, clip, the schedule's lr,
        step, then the weight average follows; their outputs combined. The scaler multiplies
        the loss and divides the gradients back before clipping, for fp16; for bf16 and fp32 it
        passes everything through (the same calls on every device).

        Several batches give the gradient of one batch made of all their items (see
        `accumulate`); with several processes, of all the ranks' batches of the step."""
        self.optimizer.zero_grad(set_to_none=True)
        out, n_batches = self.accumulate(batches)
        if self.cfg.clip_norm > 0:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_norm)
        set_lr(self.optimizer, learning_rate(self.cfg, self.state))
        self.scaler.step(self.optimizer)  # skipped when fp16 gradients overflowed
        self.scaler.update()
        if self.average is not None:
            self.average.update(self.state.step)
        self.state.step += 1
        self.state.batch_in_epoch += n_batches
        return out

    def accumulate(self, batches: tuple[Any, ...]) -> tuple[LossOutput, int]:
        """Forward and backward of each batch, leaving the gradient of their mean objective (each
        batch weighs its share: its tokens, or its normalizer), and their outputs combined.

        After each batch the gradients are the mean over the items so far: the earlier ones'
        rescaled by their share of the new total, the new batch's objective scaled by its share;
        a single batch is the plain objective (a share of exactly 1). With several processes
        the last batch's turn weighs against the whole step's total over all ranks (summed by
        an all-reduce before its backward), times their number, which DDP's average divides
        back: so the averaged gradient is that of one batch of all the ranks' items. A rank
        without a batch runs the step's first one, weighted 0, to take part in the average."""
        own = list(batches) or [self.next_batch()]  # without a batch: a stand-in
        outs: list[LossOutput] = []
        total, combined = 0, None
        for i, batch in enumerate(own):
            last = i == len(own) - 1
            with self.replica.syncing(last):
                with runtime.autocast(self.cfg.precision, self.device):
                    out = self.replica.loss(batch)
                if batches:
                    outs.append(out)
                total, before = total + out.share(), total
                mean = total  # the divisor of the mean the gradients hold after this batch
                if last and self.group.several:
                    combined = self.group.combined(outs)  # (the step's output, its batches)
                    mean = combined[0].share() / self.group.size
                objective = out.objective()
                if not batches:
                    objective = objective * 0.0
                elif mean != out.share():
                    if before:
                        self.rescale_gradients(before / mean)
                    objective = objective * (out.share() / mean)
                self.scaler.scale(objective).backward()
        return combined or (LossOutput.combined(outs), len(outs))

    def rescale_gradients(self, factor: float) -> None:
        for p in self.model.parameters():
            if p.grad is not None:
                p.grad.mul_(factor)

    def tick(self) -> None:
        self.state.elapsed_s += self.clock.lap()

    def record(self, out: LossOutput, seconds: float) -> None:
        """Count a finished step (`seconds` of step time) in the clock, the window and the
        progress bar; a loss that says the run diverged ends it (before anything is saved)."""
        self.tick()
        loss = out.loss.item()  # summed over the batch's tokens
        per_token = loss / max(out.n_tokens, 1)
        if (excess := self.losses.excess(per_token)):
            raise self.diverged(f"the training loss {excess}")
        self.losses.add(per_token)
        self.window.add(loss, out.n_tokens, out.n_correct, seconds)
        step = self.state.step
        spent = progress(self.cfg, self.state)  # the nearest limit, so the ETA follows it too
        self.reporter.advance(step, loss / max(out.n_tokens, 1), self.window.throughput(),
                              int(step / spent) if spent > 0 else None,
                              log=step % self.cfg.log_every == 0 or step == 1)

    # -- validation --------------------------------------------------------------------------

    def diverged(self, what: str) -> DivergenceError:
        """The error that ends a diverged run: where, what, the fix, and what is left. Nothing
        of the diverged state was saved, so last.pt and best.pt still hold the last good one."""
        cfg = self.cfg
        clip = (f"clip harder (train.clip_norm, now {cfg.clip_norm:g})" if cfg.clip_norm
                else "clip gradients (train.clip_norm, now off)")
        kept = (f"{self.last_path} holds step {self.saved_step}, the last good one"
                if self.saved_step is not None else "no checkpoint either")
        return DivergenceError(
            f"training diverged at step {self.state.step}: {what}; lower train.lr (now "
            f"{cfg.lr:g}), or warm up longer (train.warmup_steps, now {cfg.warmup_steps}) or "
            f"{clip}, and train again (--overwrite); nothing diverged was saved ({kept})")

    def check_scores(self, scores: dict[str, float]) -> None:
        """A validation score that is not finite, or a validation loss over the training
        loss's divergence bound, ends the run before it can be saved."""
        for key, value in scores.items():
            if isinstance(value, numbers.Real) and not math.isfinite(value):
                raise self.diverged(f"validation {key} is {value}")
        if "val_loss" in scores and (excess := self.losses.excess(scores["val_loss"])):
            raise self.diverged(f"the validation loss {excess}")

    def validation_due(self) -> bool:
        """Every valid_every steps; with valid_every 0, at each epoch's end."""
        if self.cfg.valid_every:
            return self.state.step % self.cfg.valid_every == 0
        return self.state.batch_in_epoch >= len(self.batches)

    def scores(self) -> dict[str, float]:
        """The task's validation scores, of the averaged weights when averaging."""
        averaged = self.average.applied() if self.average is not None else contextlib.nullcontext()
        with averaged, inference(self.model), runtime.autocast(self.cfg.precision, self.device):
            return self.task.validate(self.model)

    def judge(self, score: float) -> bool:
        """Whether `score` is the best so far (kept in the state); otherwise one more
        validation without improvement, which patience and the plateau schedule count."""
        s = self.state
        improved = s.best_score is None or (score > s.best_score if self.higher
                                            else score < s.best_score)
        if improved:
            s.best_score, s.best_step, s.bad_validations = score, s.step, 0
        else:
            s.bad_validations += 1
        return improved

    def row(self, scores: dict[str, float]) -> dict[str, float]:
        """The metrics row of a validation: the window's training side (left out when no step
        ran since the resume, rather than written as zeros), the scores, the lr of the next
        step (after any plateau decay)."""
        s, w = self.state, self.window
        trained = {"train_loss": w.mean_loss(), "train_acc": w.accuracy()} if w.tokens else {}
        speed = {"tokens_per_s": w.throughput()} if w.tokens else {}  # none since a resume
        return {"step": s.step, "epoch": self.epoch_of_last_step(), **trained, **scores,
                "lr": learning_rate(self.cfg, s), **speed, "elapsed_s": round(s.elapsed_s, 1)}

    def epoch_of_last_step(self) -> int:
        """The epoch (from 1) of the latest step: once an epoch's last step has rolled the
        position over to the next epoch's first batch, still the epoch that step ended, so
        the final row of max_epochs 10 says 10, not 11."""
        s = self.state
        return s.epoch if s.batch_in_epoch == 0 and s.epoch > 0 else s.epoch + 1

    def validate(self) -> bool:
        """Validate, update the best score and the schedule, log a row, checkpoint (best.pt
        when it improved); True when early stopping says stop. With several processes rank 0
        validates and the others wait for its scores, from which all decide alike."""
        scores = self.group.from_main(self.scores)
        self.check_scores(scores)
        improved = self.judge(scores[self.metric])
        plateau_decay(self.cfg, self.state, improved)
        stop = bool(self.cfg.patience) and self.state.bad_validations >= self.cfg.patience
        self.state.stopped_early = stop
        self.last_row = self.row(scores)
        with self.signals.saving():  # last.pt and best.pt both, or a second signal waits
            self.save_last()
            if improved:
                self.save_best()
            self.keep_checkpoint()
        self.reporter.validation(self.last_row, best=improved)
        self.window = Window()
        return stop

    def stop_signal(self) -> int | None:
        """The stop signal received (None while none); with several processes, by any rank,
        agreed on by all after the same step, together with the elapsed time (max_minutes)."""
        signum, self.state.elapsed_s = self.group.agree(self.signals.signum,
                                                        self.state.elapsed_s)
        return signum

    def interrupt(self, signum: int) -> NoReturn:
        """A stop signal: save where the run stands (unless a validation just did) and stop;
        resume continues from here. A second signal during this save changes nothing."""
        self.tick()
        if self.saved_step != self.state.step:
            with self.signals.saving(then_abort=False):
                self.save_last()
        raise TrainingInterrupted(f"stopped by {describe(signum)} at step {self.state.step}; "
                                  f"saved {self.last_path} (continue with --resume)", signum)

    # -- the loop ----------------------------------------------------------------------------

    def thread_governor(self) -> threads.ThreadGovernor | None:
        """CPU threads that follow the machine's load (train.threads 0, on the CPU); each change
        is said above the progress bar."""
        if self.device.type != devices.CPU.type:  # threads are a CPU matter
            return None

        def said(n: int, free: float) -> None:
            taken = f"{load.most - free:.1f} of {load.most} cores taken by other processes"
            info(f"[yellow]{taken}: training on {n} thread{'s' if n > 1 else ''}[/]"
                 if n < load.most else f"cores free again: training on {n} threads")

        load = threads.governor(self.cfg.threads, said, self.group.local_pids)
        return load

    def fit(self, on_step: Callable[[int], None] | None = None) -> TrainResult:
        """Train until a limit, early stopping, divergence or a stop signal (which saves and
        raises TrainingInterrupted, also when it comes during the final validation); the last
        step is always validated. `on_step(step)` is called after each step (tests use it to
        kill a run). A resumed run whose limit is already reached trains, validates and saves
        nothing."""
        self.model.train()
        self.begin_epoch()
        total = self.planned_steps()
        if (reason := self.limit_reached() or self.roll_over()):
            if self.state.step and self.last_row.get("step") != self.state.step:
                self.validate()  # stopped by a signal after its last step, unvalidated
            else:
                info(f"nothing left to train at step {self.state.step}: {reason} "
                     "(raise that limit to train on)")
            return TrainResult(self.state, self.last_row, reason)
        self.reporter.start(total, self.state.step)
        validated_at = -1
        load = self.thread_governor()
        self.clock.start()
        try:
            with self.signals:
                while not (reason := self.roll_over()):
                    started = time.perf_counter()
                    out = self.train_step(*self.next_batches())
                    self.record(out, time.perf_counter() - started)
                    if load is not None:
                        load.tick()
                    if on_step is not None:
                        on_step(self.state.step)
                    if self.validation_due():
                        validated_at = self.state.step
                        stop = self.validate()
                        self.tick()
                        if stop:
                            reason = (f"early stopping: no better val "
                                      f"{self.cfg.early_stopping_metric} "
                                      f"in {self.cfg.patience} validations")
                            break
                        if (reason := self.group.from_main(self.reporter.stop_reason)):
                            break  # a search's pruner (rank 0's reporter decides for all)
                    if (signum := self.stop_signal()):
                        self.interrupt(signum)
                    if (reason := self.limit_reached()):
                        break
                if validated_at != self.state.step:
                    self.validate()
                if (signum := self.stop_signal()):  # came during that validation: saved, stop
                    self.interrupt(signum)
        finally:
            self.reporter.stop()
            if load is not None:
                torch.set_num_threads(load.most)
        return TrainResult(self.state, self.last_row, reason)


def fit(model: torch.nn.Module, task: TrainTask, cfg: TrainConfig, run_dir: Path,
        reporter: Reporter, extra: dict[str, Any], resume: bool, stopping: tuple[str, bool],
        on_step: Callable[[int], None] | None = None,
        group: distributed.Group = distributed.SINGLE) -> TrainResult:
    """Train until a limit or early stopping (resuming from run_dir/last.pt with `resume`);
    `extra` (recipe, tokenizer) goes into checkpoints; `stopping`: (validation score that picks
    best.pt, higher is better); `group`: the processes training together."""
    trainer = Trainer(model, task, cfg, run_dir, reporter, extra, stopping, group)
    if resume:
        trainer.restore()
    return trainer.fit(on_step)

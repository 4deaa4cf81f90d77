"""Every learning-rate schedule in one place: `learning_rate` from the run's position, and
`plateau_decay`, the one schedule that also follows the validation outcomes."""

from __future__ import annotations

from lstm_nlp.config.sections import TrainConfig
from lstm_nlp.training.state import TrainState


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
        x = (p / cfg.cut_frac if p < cfg.cut_frac
             else 1.0 - (p - cfg.cut_frac) / (1.0 - cfg.cut_frac))  # 0 -> 1 -> 0
        return warm * cfg.lr * (1.0 + x * (cfg.slanted_ratio - 1.0)) / cfg.slanted_ratio
    if cfg.schedule == "epoch_decay":
        decays = max(0, state.epoch + 1 - cfg.decay_start_epoch)
        return warm * max(cfg.lr * cfg.decay_factor ** decays, cfg.min_lr)
    lr = cfg.lr * state.lr_scale
    if state.lr_scale < 1.0:
        lr = max(lr, cfg.min_lr)
    return lr * warm


def plateau_decay(cfg: TrainConfig, state: TrainState, improved: bool) -> None:
    """Schedule 'plateau': after each run of decay_patience + 1 validations without improvement
    (`state.bad_validations` already counts this one), the lr is multiplied by decay_factor. The
    scale lives in the state so that a resumed run keeps its decays."""
    if (cfg.schedule == "plateau" and not improved
            and state.bad_validations % (cfg.decay_patience + 1) == 0):
        state.lr_scale *= cfg.decay_factor

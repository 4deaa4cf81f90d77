"""`lstm-nlp train --nproc N`: N training processes on this machine, started by PyTorch's own
launcher exactly as `torchrun --standalone --nproc-per-node N -m lstm_nlp train ...` starts them
(`torch.distributed.run` is what the torchrun command runs). This process becomes torchrun's
agent: it watches the processes, passes Ctrl-C, SIGTERM and SIGHUP on to them (they save one
checkpoint and stop), and ends them all when one fails (SIGTERM, then SIGKILL after
TORCH_ELASTIC_SHUTDOWN_TIMEOUT, 30 s by default). The processes do the rest
(training/distributed.py); what is left here is what to check first and what to say at the end:
nothing when rank 0 said why it stopped, else one line naming the process that failed.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

from lstm_nlp.config import load_recipe
from lstm_nlp.errors import ConfigError
from lstm_nlp.reporting.console import error
from lstm_nlp.tasks import chain
from lstm_nlp.training import distributed, runtime, threads


def worker_args(recipe: Path, overrides: list[str], run_dir: Path | None, overwrite: bool,
                resume: bool, device: str | None) -> list[str]:
    """The `lstm-nlp train` command line each process runs (without --nproc)."""
    args = ["train", str(recipe)]
    for override in overrides:
        args += ["--set", override]
    if run_dir is not None:
        args += ["--run-dir", str(run_dir)]
    args += ["--overwrite"] * overwrite + ["--resume"] * resume
    return args + (["--device", device] if device else [])


def check(nproc: int, recipe_path: Path, overrides: list[str], device: str | None) -> None:
    """What can be refused before any process starts, in one line: a launch from inside
    torchrun, a chain recipe, a device that cannot take `nproc` processes (and the recipe's
    own errors)."""
    if distributed.started_by_torchrun():
        raise ConfigError("--nproc: this process was started by torchrun, which starts the "
                          "processes itself (its --nproc-per-node); leave --nproc out")
    recipe = load_recipe(recipe_path, [*overrides, *([f"train.device={device}"] if device else [])])
    if isinstance(recipe, chain.ChainRecipe):
        raise ConfigError(f"--nproc: {recipe_path} is a chain recipe, which trains in one "
                          "process; train its stages one by one with --nproc")
    where = runtime.training_device(recipe.train, device is not None)
    distributed.check_shareable(where, nproc, f"--nproc {nproc}", where.index is not None)


def launch(nproc: int, args: list[str]) -> int:
    """Run `lstm-nlp train` (`args`) in `nproc` processes through torch.distributed.run; the
    exit code: 0, 128 + a stop signal's number, or that of the process that failed."""
    import torch.distributed.run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    # each process's share of the cores (the trainer sets its threads itself; this only spares
    # torchrun's warning that it sets OMP_NUM_THREADS=1)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, threads.usable_cores() // nproc)))
    _quiet_torchrun()
    try:
        torchrun.main(["--standalone", f"--nproc-per-node={nproc}", "--module", "lstm_nlp",
                       *args])
    except SignalException as e:  # passed on to the processes: rank 0 said where it stopped
        return 128 + int(e.sigval)
    except ChildFailedError as e:
        return failed(e.failures)
    return 0


def failed(failures: dict[int, Any]) -> int:
    """The exit code of a run whose processes failed (torchrun's ProcessFailure by rank), with
    one line unless rank 0 said why it stopped: a process killed by a signal (not torchrun's
    SIGTERM) first, else the message the first failed rank left in its error file, or its exit
    code."""
    killed = {rank: f for rank, f in failures.items() if f.exitcode < 0}
    # once one failed, torchrun ends the others with SIGTERM: a process killed otherwise is
    # the cause
    cause = {rank: f for rank, f in killed.items() if -f.exitcode != signal.SIGTERM} or killed
    if cause:
        rank, f = min(cause.items(), key=lambda item: (item[1].timestamp, item[0]))
        error(f"rank {rank} (pid {f.pid}) was killed by {f.signal_name()}; the run's other "
              "processes were stopped; continue from the last checkpoint with --resume")
        return 1
    if 0 in failures:  # rank 0 prints its own errors and stops
        return failures[0].exitcode
    rank, f = min(failures.items(), key=lambda item: (item[1].timestamp, item[0]))
    message = f.error_file_data.get("message")  # a process's own line (distributed.reported)
    said = message if isinstance(message, str) else f"exited with code {f.exitcode}"
    error(said if said.startswith(f"rank {rank}:") else f"rank {rank}: {said}")
    return f.exitcode


def _quiet_torchrun() -> None:
    """torchrun's own log lines (its rendezvous, each signal it sends, its failure report) left
    out: what happened is said in one line, by rank 0 or by `failed`."""
    for name in ("torch.distributed.elastic", "torch.distributed.run",
                 "torch.distributed.launcher"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if name.startswith("torch.distributed.") and isinstance(logger, logging.Logger) \
                and logger.level:
            logger.setLevel(logging.CRITICAL)

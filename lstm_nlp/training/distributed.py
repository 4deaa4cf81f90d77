"""Training on several processes, on PyTorch's own engine: `torch.distributed` (gloo on the CPU,
NCCL on CUDA), `DistributedDataParallel` and its launcher `torchrun` (`torch.distributed.run`;
`lstm-nlp train --nproc N` calls it, training/launch.py). Nothing here starts processes.

A process started by torchrun reads its place from the environment (RANK, WORLD_SIZE,
LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and joins the group (`join`). The trainer
then sees the group through `Group`: which rank it is, and the few collectives a step needs,
each a no-op for a run of one process (whose arithmetic stays exactly as it was):

- every step's batches are shared out by the trainer (rank r takes its train.accum_steps of
  the step's world_size * accum_steps batches); `Replica` runs the task's loss through
  DistributedDataParallel, whose backward averages the gradients over the ranks;
- `combined` sums the step's losses and token counts over the ranks (all-reduce), so the
  gradient can be weighted as one batch of all the step's items, and every rank logs and
  judges divergence on the same numbers;
- `agree` makes a stop signal that reached any rank stop them all after the same step;
- `from_main` runs validation on rank 0 while the others wait for its scores;
- `gather` brings every rank's RNG and carried state to rank 0, which alone writes files.

A process waiting in a collective gives up after TIMEOUT (rank 0's validation and its set-up,
tokenizer training included, must fit in it). A rank that dies breaks its peers' connections at
once: their collectives fail, and `reported` turns that failure into one line.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterator, TypeVar

import torch
import torch.distributed as dist

from lstm_nlp.errors import ConfigError, LstmNlpError
from lstm_nlp.tasks.base import LossOutput
from lstm_nlp.training import devices

TIMEOUT = timedelta(minutes=30)
T = TypeVar("T")


class PeerLost(LstmNlpError):
    """Another process of the run stopped or died, so this one cannot go on."""


@dataclass(frozen=True)
class Place:
    """A process's place in the run, as torchrun's environment gives it (0 of 1: alone)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1  # processes of the run on this machine


def place() -> Place:
    """From torchrun's environment variables; a process started otherwise is 0 of 1."""
    env = os.environ
    size = int(env.get("WORLD_SIZE", "1"))
    if size <= 1:
        return Place()
    return Place(int(env["RANK"]), size, int(env.get("LOCAL_RANK", env["RANK"])),
                 int(env.get("LOCAL_WORLD_SIZE", str(size))))


def started_by_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or "WORLD_SIZE" in os.environ


def rank_device(device: torch.device, where: Place, source: str) -> torch.device:
    """The device of this rank: on CUDA, GPU LOCAL_RANK of this machine (NCCL wants one GPU per
    process); the CPU is shared. One GPU named (cuda:N) or MPS cannot take several processes."""
    if where.size == 1:
        return device
    check_shareable(device, where.local_size, source, explicit=device.index is not None)
    if device.type == "cuda":
        return torch.device("cuda", where.local_rank)
    return device


def check_shareable(device: torch.device, local_size: int, source: str,
                    explicit: bool) -> None:
    """`local_size` processes on this machine can train on `device`: the CPU, or CUDA with a GPU
    for each; the one-line error that says what to use otherwise."""
    if local_size == 1 or device.type == devices.CPU.type:
        return
    if device.type == "mps":
        raise ConfigError(f"{source}: mps trains in one process (DistributedDataParallel has no "
                          f"MPS backend); use --nproc 1, or cpu for {local_size} processes")
    if explicit:
        raise ConfigError(f"{source}: {device} is one GPU; {local_size} processes take one GPU "
                          f"each (cuda:0 to cuda:{local_size - 1}): use cuda or auto")
    gpus = torch.cuda.device_count()
    if local_size > gpus:
        raise ConfigError(f"{source}: {local_size} processes need a GPU each; "
                          f"{gpus} {'is' if gpus == 1 else 'are'} visible here")


@dataclass(frozen=True)
class Group:
    """The processes training one run together, seen from one of them. A Group of 1 (`SINGLE`)
    answers every collective at once, without torch.distributed."""

    rank: int = 0
    size: int = 1
    local_size: int = 1
    local_pids: tuple[int, ...] = ()  # every process of the run on this machine (threads.py)
    device: torch.device = devices.CPU  # where collectives' tensors live: the GPU for NCCL

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes the run's files and the console."""
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.size > 1

    def barrier(self) -> None:
        if self.several:
            dist.barrier()

    def agree(self, signum: int | None, elapsed_s: float) -> tuple[int | None, float]:
        """A stop signal received by any rank (the highest number when several), and the
        longest elapsed time of any rank (which max_minutes reads), the same on all ranks."""
        if not self.several:
            return signum, elapsed_s
        both = torch.tensor([float(signum or 0), elapsed_s], dtype=torch.float64,
                            device=self.device)
        dist.all_reduce(both, op=dist.ReduceOp.MAX)
        return int(both[0]) or None, float(both[1])

    def from_main(self, compute: Callable[[], T]) -> T:
        """`compute()` on rank 0, its result on every rank (the others wait for it)."""
        if not self.several:
            return compute()
        box = [compute() if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any] | None:
        """Every rank's `value` (picklable; tensors on the CPU), on rank 0; None on the others."""
        if not self.several:
            return [value]
        out = [None] * self.size if self.is_main else None
        dist.gather_object(value, out, dst=0)
        return out

    def combined(self, outs: list[LossOutput]) -> tuple[LossOutput, int]:
        """The step's outputs of all ranks as one, and the number of batches they came from:
        losses, tokens, correct predictions, shares and weighted penalties summed over the
        ranks (`outs` may be empty: a rank without a batch in an epoch's last step). The
        share() of the result is the divisor of the step's mean over all its items."""
        local = [sum(float(o.loss.detach()) for o in outs), sum(o.n_tokens for o in outs),
                 sum(o.n_correct for o in outs), sum(o.share() for o in outs),
                 sum(o.normalizer for o in outs),
                 sum(float(o.penalty.detach()) * o.share() for o in outs
                     if o.penalty is not None),
                 sum(o.penalty is not None for o in outs), len(outs)]
        sums = torch.tensor(local, dtype=torch.float64, device=self.device)
        if self.several:
            dist.all_reduce(sums)
        loss, tokens, correct, shares, normalizers, penalty, penalized, batches = sums.tolist()
        return LossOutput(torch.tensor(loss), int(tokens), int(correct),
                          int(shares) if normalizers else 0,
                          torch.tensor(penalty / shares) if penalized else None), int(batches)


SINGLE = Group()


def join(device: torch.device, where: Place) -> Group:
    """This process's Group: SINGLE alone; under torchrun, the process group (gloo on the CPU,
    NCCL on CUDA), joined once per process (a chain's stages share it), with its processes on
    this machine found out once."""
    if where.size == 1:
        return SINGLE
    if not dist.is_initialized():
        _end_with_parent()
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    hosts: list[Any] = [None] * where.size
    dist.all_gather_object(hosts, (socket.gethostname(), os.getpid()))
    mine = socket.gethostname()
    return Group(where.rank, where.size, where.local_size,
                 tuple(pid for host, pid in hosts if host == mine),
                 device if dist.get_backend() == "nccl" else devices.CPU)


def _end_with_parent() -> None:
    """End this process when torchrun's agent, its parent, is killed (kill -9 of `lstm-nlp train
    --nproc`): the agent starts each process in a session of its own, beyond the reach of its
    process group, so that they would train on unwatched. Linux only (prctl)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() == 1:  # the parent was gone before the call
        os.kill(os.getpid(), signal.SIGKILL)


def seed_rank(seed: int, group: Group) -> None:
    """Each rank its own RNG stream (dropout masks), drawn after the model's initialisation,
    which the seed makes the same everywhere; a run of one process keeps its stream."""
    if group.several:
        torch.manual_seed(seed * 1_000_003 + group.rank)


class _TaskLoss(torch.nn.Module):
    """The task's loss of a batch as a module's forward: DistributedDataParallel hooks its
    gradient averaging to its wrapped module's forward."""

    def __init__(self, model: torch.nn.Module, task: Any):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, batch: Any) -> LossOutput:
        return self.task.loss(self.model, batch)


class Replica:
    """The model as a step computes with it: the task's loss of a batch, and in a group of
    several processes through DistributedDataParallel (rebuilt when the set of trainable
    parameters changes, as gradual unfreezing does: DDP averages the gradients of those that
    were trainable when it was built)."""

    def __init__(self, model: torch.nn.Module, task: Any, group: Group):
        self.model, self.task, self.group = model, task, group
        self.ddp: torch.nn.parallel.DistributedDataParallel | None = None
        self.trainable: tuple[bool, ...] = ()

    def refresh(self) -> None:
        """(Re)build the DDP wrapper when the trainable parameters changed (every rank at once)."""
        trainable = tuple(p.requires_grad for p in self.model.parameters())
        if not self.group.several or trainable == self.trainable:
            return
        param = next(self.model.parameters())
        ids = [param.device.index] if param.device.type == "cuda" else None
        self.ddp = torch.nn.parallel.DistributedDataParallel(_TaskLoss(self.model, self.task),
                                                             device_ids=ids)
        self.trainable = trainable

    def loss(self, batch: Any) -> LossOutput:
        if self.ddp is None:
            return self.task.loss(self.model, batch)
        return self.ddp(batch)

    def syncing(self, sync: bool) -> contextlib.AbstractContextManager:
        """Around a batch's forward and backward: with `sync` False, DDP keeps the gradient to
        this rank (accumulation); the step's last batch averages everything accumulated."""
        if self.ddp is None or sync:
            return contextlib.nullcontext()
        return self.ddp.no_sync()


def lost_peer(error: BaseException) -> bool:
    """Whether `error` is a collective that failed because another process is gone: torch's
    distributed errors, or gloo's connection errors (plain RuntimeErrors)."""
    if isinstance(error, dist.DistError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(
        s in text for s in ("gloo/transport", "Connection reset by peer",
                            "Connection closed by peer", "Broken pipe"))


@contextlib.contextmanager
def reported(group: Group) -> Iterator[None]:
    """A collective that failed because another process stopped or died becomes one line
    (PeerLost). A rank other than 0 prints nothing (reporting.mute): its domain errors go to the
    error file torchrun gives each process, which torchrun, and `--nproc`, show when that rank
    failed first."""
    try:
        yield
    except Exception as e:
        if not group.several:
            raise
        if lost_peer(e):
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # ending anyway: let
                signal.signal(signum, signal.SIG_IGN)  # torchrun's SIGTERM not cut the line
            e = PeerLost(f"rank {group.rank}: another process of this run stopped or died, so "
                         "this one stops too; continue from the last checkpoint with --resume")
        if isinstance(e, LstmNlpError) and not group.is_main:
            _record_error(str(e))
        if isinstance(e, PeerLost):
            raise e from None
        raise


def _record_error(message: str) -> None:
    """The one-line message in torchrun's error file for this process (TORCHELASTIC_ERROR_FILE,
    read as a ProcessFailure's message); nothing when it gives none."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if path:
        with contextlib.suppress(OSError):
            with open(path, "w", encoding="utf-8") as f:
                json.dump({"message": message, "timestamp": int(time.time())}, f)

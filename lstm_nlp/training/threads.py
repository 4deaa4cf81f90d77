"""CPU threads that follow the machine's load, for `train.threads: 0`.

PyTorch's OpenMP threads wait for each other at every parallel region by spinning. When another
busy process takes one of the cores, a spinning thread burns its time slice waiting for a thread
that is not running, and every product waits for the slowest: with one CPU-bound process beside
it, a demo training on 2 threads ran at 2,100 target tokens/s, on 1 thread at 5,240 (7,900 on 2
threads on the idle machine). A passive wait policy (OMP_WAIT_POLICY=PASSIVE) helps the busy case
(4,460) but costs the idle one 20%, and can only be chosen before torch starts.

So the trainer asks, every few seconds, how much of the cores it may use is taken by other
processes (from /proc/stat, less its own CPU time), and trains on the cores that are free: all
of them on an idle machine, fewer while others compute, all again when they stop. A change needs
two readings in a row, so a short burst does not move it. Linux only; elsewhere, and with an
explicit `train.threads`, the thread count stays as set.

With several training processes on the machine (`--nproc`, torchrun), the cores and
train.threads are shared out among them: each reads the load of the whole machine less all of
their CPU time, and takes its share of the free cores.

Thread counts change the order of floating-point sums: a run whose threads changed matches an
uninterrupted run to rounding, not bit for bit (pin `train.threads` for that).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, NamedTuple

import torch

INTERVAL_S = 5.0  # seconds between readings
MARGIN = 0.3      # a core counts as free when less than 0.7 of it is taken by others


class Reading(NamedTuple):
    busy_s: float  # CPU seconds spent (not idle) on the cores this process may use, by anyone
    own_s: float   # CPU seconds of this process (of the run's processes here), all threads
    wall_s: float  # a monotonic clock


def usable_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def processes_cpu_seconds(pids: tuple[int, ...], proc: Path = Path("/proc")) -> float:
    """CPU seconds (user + system, all threads) of the processes `pids`; one that has ended
    counts nothing."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            text = (proc / str(pid) / "stat").read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()  # after "(name)": the fields from the 3rd on
        total += int(fields[11]) + int(fields[12])  # utime, stime: the 14th and 15th fields
    return total / tick


def read_proc_stat(cpus: set[int], stat: Path = Path("/proc/stat")) -> float | None:
    """Busy seconds (all but idle and iowait) of `cpus` since boot; None where unreadable."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = 0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        busy += sum(values) - values[3] - values[4]
    return busy / tick


def free_cores(before: Reading, after: Reading, cores: int) -> float:
    """Cores left to this process between two readings: all of them, less what others used."""
    wall = after.wall_s - before.wall_s
    if wall <= 0:
        return float(cores)
    others = (after.busy_s - before.busy_s) - (after.own_s - before.own_s)
    return min(max(cores - others / wall, 0.0), float(cores))


def choose(free: float, most: int) -> int:
    """Threads for `free` cores: the whole free cores (with MARGIN), at least 1, at most `most`."""
    return max(1, min(most, int(free + MARGIN)))


class ThreadGovernor:
    """Call `tick()` after each step; it reads the load every INTERVAL_S and sets torch's threads
    (`set_threads`) to the free cores once two readings in a row agree. `on_change(threads,
    free)` reports a change (the trainer prints a line). One of `processes` training processes
    on `cores` cores (those the readings cover; `most` when 0) takes its share of the free
    ones."""

    def __init__(self, most: int, read: Callable[[], Reading | None],
                 set_threads: Callable[[int], None] = torch.set_num_threads,
                 on_change: Callable[[int, float], None] | None = None,
                 interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic,
                 cores: int = 0, processes: int = 1):
        self.most, self.read, self.set_threads, self.on_change = most, read, set_threads, on_change
        self.cores, self.processes = cores or most, processes
        self.interval_s, self.clock = interval_s, clock
        self.threads = most
        self.last = read()
        self.next_at = clock() + interval_s
        self.pending: int | None = None  # a new count seen once, waiting for a second reading

    def tick(self) -> None:
        if self.last is None or self.clock() < self.next_at:
            return
        now = self.read()
        if now is None:
            self.last = None  # the readings stopped: keep the threads as they are
            return
        free = free_cores(self.last, now, self.cores) / self.processes
        self.last, self.next_at = now, self.clock() + self.interval_s
        wanted = choose(free, self.most)
        if wanted == self.threads:
            self.pending = None
        elif wanted == self.pending:
            self.threads, self.pending = wanted, None
            self.set_threads(wanted)
            if self.on_change is not None:
                self.on_change(wanted, free)
        else:
            self.pending = wanted


def governor(configured: int, on_change: Callable[[int, float], None],
             pids: tuple[int, ...] = ()) -> ThreadGovernor | None:
    """A governor over this process's cores for `train.threads: 0` on Linux with more than one
    core for it; None otherwise (threads pinned by the recipe, or no /proc/stat to read).
    `pids`: the training processes on this machine when there are several (this one among
    them), which share the cores."""
    if configured > 0 or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = os.sched_getaffinity(0)
    most = torch.get_num_threads()
    if len(cpus) < 2 or most < 2 or read_proc_stat(cpus) is None:
        return None
    several = len(pids) > 1

    def read() -> Reading | None:
        busy = read_proc_stat(cpus)
        own = processes_cpu_seconds(pids) if several else time.process_time()
        return None if busy is None else Reading(busy, own, time.monotonic())

    if several:
        return ThreadGovernor(most, read, on_change=on_change, cores=len(cpus),
                              processes=len(pids))
    return ThreadGovernor(min(most, len(cpus)), read, on_change=on_change)

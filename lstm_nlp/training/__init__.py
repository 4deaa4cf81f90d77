"""Training, the same for every task: the run (training/run.py), the loop and its parts (loop.py:
the Trainer; state.py, schedules.py, optim.py, averaging.py), checkpoints and the process set-up
(seeds, threads, allocator, precision)."""

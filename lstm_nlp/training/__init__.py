"""Training, the same for every task: the run (training/run.py), the loop, checkpoints and the
process set-up (seeds, threads, allocator, precision)."""

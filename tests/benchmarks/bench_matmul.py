"""fp32 matrix products: PyTorch's default (MKL sgemm) against oneDNN, as `lstm_nlp.nn.kernels.matmul` uses.

The shapes are the products of a translation training step (batch 64-200, hidden 512, 8k
vocabulary): the input-feeding decoder's per-step products, the weight gradients after the loop,
and the output layer's chunks. Prints GFLOP/s of each and the largest difference (rounding order).

    python tests/benchmarks/bench_matmul.py [--repeats 50]
"""

from __future__ import annotations

import argparse
import time

import torch

from lstm_nlp.nn.kernels import matmul

SHAPES = [  # (rows, inner, cols, what)
    (64, 1024, 2048, "decoder step, gates (B 64)"),
    (200, 1024, 2048, "decoder step, gates (B 200)"),
    (200, 2048, 1024, "decoder step backward (B 200)"),
    (2048, 3000, 1024, "gate weight gradient (T*B 3000)"),
    (1024, 512, 8000, "output layer chunk"),
]


def timed(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    if not matmul.ONEDNN:
        raise SystemExit("oneDNN's fp32 linear is not available in this PyTorch build")
    print(f"{torch.get_num_threads()} threads; GFLOP/s, fp32")
    for rows, inner, cols, what in SHAPES:
        a, b = torch.randn(rows, inner), torch.randn(cols, inner)
        flops = 2 * rows * inner * cols
        t_mkl = timed(lambda: a @ b.t(), args.repeats)
        t_dnnl = timed(lambda: matmul.mm_nt(a, b), args.repeats)
        diff = (a @ b.t() - matmul.mm_nt(a, b)).abs().max().item()
        print(f"{what:34s} ({rows}x{inner} @ {inner}x{cols}): default {flops / t_mkl / 1e9:6.0f}, "
              f"oneDNN {flops / t_dnnl / 1e9:6.0f}, ratio {t_mkl / t_dnnl:.2f}, "
              f"max difference {diff:.1e}")


if __name__ == "__main__":
    main()

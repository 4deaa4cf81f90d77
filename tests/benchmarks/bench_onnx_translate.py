"""Decoding speed of `translate --backend onnxruntime` against the PyTorch backend, in one
process: the model is exported to ONNX (fp32), then each round translates the same source file
with PyTorch in fp32, PyTorch in bf16 and onnxruntime, one after the other, so that machine noise
hits all three alike. Prints sentences/s per round and their medians, the onnxruntime/PyTorch
ratios, and the share of lines onnxruntime translates exactly as PyTorch fp32 (and bf16) does.

    python tests/benchmarks/bench_onnx_translate.py --model runs/en-de-10min \\
        --src ../shared/data/multi30k/test2016.en [--beams 1,5] [--rounds 3] [--limit N]
        [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lstm_nlp.export.verb import export
from lstm_nlp.tasks.translate import onnx_backend
from lstm_nlp.tasks.translate.task import translate_lines
from lstm_nlp.tasks.translate.verbs import decode_options
from lstm_nlp.training import checkpoint, devices, runtime

PRECISION = {"torch fp32": "fp32", "torch bf16": "bf16", "onnxruntime": "fp32"}
BACKENDS = tuple(PRECISION)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a translation run folder or checkpoint")
    p.add_argument("--src", required=True, help="source sentences, one a line")
    p.add_argument("--beams", default="1,5")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--limit", type=int, default=0, help="only the first N lines (0 = all)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = PyTorch's default)")
    args = p.parse_args()
    runtime.set_threads(args.threads)  # before the sessions are made: they take as many
    lines = Path(args.src).read_text(encoding="utf-8").splitlines()
    lines = lines[: args.limit] if args.limit else lines
    model, tok, recipe = checkpoint.load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        export(args.model, "onnx", Path(tmp) / "onnx")
        ort_model = onnx_backend.load(Path(tmp) / "onnx")[0]
    models = {"torch fp32": model, "torch bf16": model, "onnxruntime": ort_model}
    print(f"{len(lines)} sentences, {torch.get_num_threads()} threads (onnxruntime the same)")
    for beam in (int(b) for b in args.beams.split(",")):
        speeds: dict[str, list[float]] = {name: [] for name in BACKENDS}
        outputs: dict[str, list[str]] = {}
        for r in range(args.rounds):
            for name in BACKENDS:
                opts = decode_options(recipe, devices.CPU, beam=beam, precision=PRECISION[name])
                start = time.perf_counter()
                with torch.inference_mode():
                    outputs[name] = translate_lines(models[name], tok, lines, opts)
                speeds[name].append(len(lines) / (time.perf_counter() - start))
            print(f"beam {beam} round {r + 1}: " + ", ".join(
                f"{name} {speeds[name][-1]:,.1f}" for name in BACKENDS) + " sentences/s")
        median = {name: statistics.median(v) for name, v in speeds.items()}
        same = {ref: sum(a == b for a, b in zip(outputs["onnxruntime"], outputs[ref]))
                for ref in ("torch fp32", "torch bf16")}
        print(f"beam {beam} median: " + ", ".join(f"{n} {median[n]:,.1f}" for n in BACKENDS)
              + f"; onnxruntime / torch fp32 {median['onnxruntime'] / median['torch fp32']:.2f}, "
              f"/ torch bf16 {median['onnxruntime'] / median['torch bf16']:.2f}")
        print(f"beam {beam} identical to onnxruntime's: torch fp32 {same['torch fp32']}/"
              f"{len(lines)}, torch bf16 {same['torch bf16']}/{len(lines)}")


if __name__ == "__main__":
    main()

"""Decoding speed of translation models: sentences/s with greedy search in bf16, beam 5 in bf16
and beam 5 in fp32, on a test set, through `translate_lines` (what `lstm-nlp translate` runs,
batch size and length limits from each model's recipe).

With two --model paths the models alternate in rounds, so that machine noise hits both alike.
To compare two versions of the code, run this file under each one's PYTHONPATH in turns; it
uses only functions every version has, and --hyp-dir writes the hypotheses for a diff:

    python tests/benchmarks/bench_decode_speed.py --model runs/multi30k-en-de \
        [--model OTHER] [--src ../shared/data/multi30k/test2016.en] [--rounds 3] [--hyp-dir DIR]

Without --src: the test split of the first model's recipe. Prints one line per model and
setting: the median sentences/s over the rounds, and every round's figure; then, for the first
model, the arithmetic each sentence needs: decoder steps per sentence (hypothesis rows summed
over the steps, counted in one untimed pass) times the multiply-adds of one step's matrix
products (the decoder's LSTM and attention-output weights and the output layer; attention over
the source, softmax and search are left out), and the GFLOP/s the median speed is, to hold
against what the machine's matrix products reach (bench_matmul.py).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from lstm_nlp.data.corpora import load_split, read_lines
from lstm_nlp.tasks.translate.task import DecodeOptions, translate_lines
from lstm_nlp.training import runtime
from lstm_nlp.training.checkpoint import load_model

SETTINGS = [("greedy bf16", 1, "bf16"), ("beam 5 bf16", 5, "bf16"), ("beam 5 fp32", 5, "fp32")]


def sentences(args, recipe) -> tuple[list[str], str]:
    if args.src is not None:
        lines = read_lines(args.src)
        return lines[: args.limit or len(lines)], str(args.src)
    pairs = load_split(recipe.data, recipe.data.test)
    return pairs.src[: args.limit or len(pairs)], pairs.origin


def timed(model, tok, recipe, lines: list[str], beam: int, precision: str
          ) -> tuple[float, list[str]]:
    d = recipe.decode
    opts = DecodeOptions(beam, d.length_penalty, d.max_len_ratio, d.batch_size, precision)
    start = time.perf_counter()
    hyps = translate_lines(model, tok, lines, opts)
    return len(lines) / (time.perf_counter() - start), hyps


def step_macs(model) -> int:
    """Multiply-adds of one decoder step for one hypothesis: the decoder's weight matrices
    (not its embedding, not the attention keys' projection, which runs once per source) and
    the output layer."""
    decoder = sum(p.numel() for name, p in model.decoder.named_parameters(remove_duplicate=False)
                  if p.dim() == 2 and "embed" not in name and "key_proj" not in name)
    return decoder + model.output.weight.numel()


def rows_per_sentence(model, tok, recipe, lines: list[str], beam: int, precision: str) -> float:
    """Hypothesis rows the decoder steps through per sentence (an untimed pass)."""
    cls, counted = type(model), [0]
    plain = cls.decode_step

    def counting(self, prev, *args, **kwargs):
        counted[0] += prev.numel()
        return plain(self, prev, *args, **kwargs)

    cls.decode_step = counting
    try:
        timed(model, tok, recipe, lines, beam, precision)
    finally:
        cls.decode_step = plain
    return counted[0] / len(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, action="append", required=True,
                    help="run folder or .pt file; give two to compare them")
    ap.add_argument("--src", type=Path, help="source sentences, one per line [recipe's test]")
    ap.add_argument("--limit", type=int, default=0, help="only the first N sentences")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hyp-dir", type=Path, help="write each model's hypotheses here")
    args = ap.parse_args()
    runtime.tune_allocator()
    loaded = [load_model(path) for path in args.model]
    lines, origin = sentences(args, loaded[0][2])
    print(f"{origin}: {len(lines)} sentences; {torch.get_num_threads()} threads")
    for model, tok, recipe in loaded:  # warm-up: first calls allocate and pick kernels
        timed(model, tok, recipe, lines[:50], 5, "bf16")
    speeds = {(m, name): [] for m in range(len(loaded)) for name, _, _ in SETTINGS}
    for _ in range(args.rounds):
        for name, beam, precision in SETTINGS:
            for m, (model, tok, recipe) in enumerate(loaded):
                speed, hyps = timed(model, tok, recipe, lines, beam, precision)
                speeds[m, name].append(speed)
                if args.hyp_dir:
                    args.hyp_dir.mkdir(parents=True, exist_ok=True)
                    out = args.hyp_dir / f"model{m}-{name.replace(' ', '-')}.hyp"
                    out.write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    for (m, name), values in speeds.items():
        rounds = " ".join(f"{v:.1f}" for v in values)
        print(f"{args.model[m]}: {name}: {statistics.median(values):,.1f} sentences/s "
              f"(median of {args.rounds} rounds: {rounds})")
    model, tok, recipe = loaded[0]
    macs = step_macs(model)
    print(f"{args.model[0]}: {2 * macs / 1e6:.1f} MFLOP of matrix products per decoder row")
    for name, beam, precision in SETTINGS:
        rows = rows_per_sentence(model, tok, recipe, lines, beam, precision)
        flop = 2 * macs * rows
        speed = statistics.median(speeds[0, name])
        print(f"  {name}: {rows:.1f} decoder rows per sentence, {flop / 1e9:.2f} GFLOP per "
              f"sentence; {speed:,.1f} sentences/s is {speed * flop / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()

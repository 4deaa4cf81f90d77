"""Corpora larger than memory: generate a plain-text corpus (words drawn from a Zipf law), train
the demo language-model recipe on it for --steps under `/usr/bin/time -v`, and report the peak
resident memory, the tokenization throughput and the start-up time of a first start against
starts that reuse the token store (--resume, then a second run of the recipe).

    python tests/benchmarks/bench_token_store.py --gigabytes 2 --steps 500 --workdir /tmp/tsb

Start-up is the time from the process's start to the line that reports the device, printed
when the data, tokenizer and model are ready and training begins. The corpus and the runs are
deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "demo-lm.yaml"


def zipf_words(vocab: int) -> list[str]:
    """`vocab` distinct lowercase words of 2 to 9 letters (always the same ones)."""
    rng = np.random.default_rng(0)
    letters = rng.integers(ord("a"), ord("z") + 1, size=(2 * vocab, 9), dtype=np.uint8)
    lengths = rng.integers(2, 10, size=2 * vocab)
    words = dict.fromkeys(row[:n].tobytes().decode() for row, n in zip(letters, lengths))
    return list(words)[:vocab]


def write_corpus(path: Path, n_bytes: int, words: list[str], seed: int) -> int:
    """A text file of about `n_bytes`: the words with Zipf frequencies (exponent 1.1), lines of
    20 words on average (geometric). Returns its line count."""
    vocab, rng = len(words), np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1) ** 1.1
    # each word with a space after it, or a newline (the line's end)
    pieces = np.array([w + " " for w in words] + [w + "\n" for w in words], dtype=object)
    written, lines = 0, 0
    with open(path, "w", encoding="utf-8") as f:
        while written < n_bytes:
            n_words = min(1 << 20, max((n_bytes - written) // 6, 1))  # ~6 bytes a word
            ids = rng.choice(vocab, size=n_words, p=p / p.sum())
            ends = rng.random(len(ids)) < 1 / 20
            ends[-1] = True
            text = "".join(pieces[ids + vocab * ends].tolist())
            f.write(text)
            written += len(text)
            lines += int(ends.sum())
    return lines


@dataclass
class Run:
    """One `lstm-nlp train` under /usr/bin/time -v: its stderr lines with the seconds since the
    process started, its peak resident memory and its wall time."""

    what: str
    lines: list[tuple[float, str]] = field(default_factory=list)
    peak_kb: int = 0
    wall_s: float = 0.0

    def seconds_to(self, marker: str) -> float | None:
        return next((t for t, line in self.lines if marker in line), None)

    def line(self, marker: str) -> str:
        return next((line for _, line in self.lines if marker in line), "")


def train(what: str, args: list[str], env: dict[str, str]) -> Run:
    timed = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    command = [*timed, sys.executable, "-m", "lstm_nlp", "train", *args]
    print("$", " ".join(command), flush=True)
    run = Run(what)
    start = time.perf_counter()
    child = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             text=True, env=env, cwd=ROOT)

    def read() -> None:
        for line in child.stderr:
            run.lines.append((time.perf_counter() - start, line.rstrip("\n")))
            print(f"  | {run.lines[-1][0]:7.1f}s {run.lines[-1][1]}", flush=True)

    reader = threading.Thread(target=read)
    reader.start()
    child.wait()
    reader.join()
    run.wall_s = time.perf_counter() - start
    if child.returncode:
        sys.exit(f"{what} failed:\n" + "\n".join(line for _, line in run.lines[-30:]))
    peak = run.line("Maximum resident set size")
    run.peak_kb = int(peak.rsplit(":", 1)[1]) if peak else 0
    return run


def report(run: Run) -> None:
    startup = run.seconds_to("device: ")
    print(f"\n{run.what}: start-up {startup:.1f} s, wall {run.wall_s:.1f} s, peak resident "
          f"{run.peak_kb / 1e6:.2f} GB ({run.peak_kb:,} kB)")
    for marker in ("tokenizer: ", "token store: "):
        for _, line in run.lines:
            if line.startswith(marker):
                print("   ", line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.0, help="training text size")
    parser.add_argument("--steps", type=int, default=500, help="training steps of the first run")
    parser.add_argument("--more-steps", type=int, default=10,
                        help="steps the resumed run and the second run train")
    parser.add_argument("--vocab", type=int, default=8000, help="the recipe's word vocabulary")
    parser.add_argument("--eval-kb", type=int, default=100, help="validation and test text size")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench-token-store"))
    parser.add_argument("--keep", action="store_true", help="keep the corpus and the runs")
    args = parser.parse_args()

    data, run_dir = args.workdir / "data", args.workdir / "run"
    data.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    words = zipf_words(50_000)
    n_lines = write_corpus(data / "train.txt", int(args.gigabytes * 1e9), words, seed=1)
    for name, seed in (("valid", 2), ("test", 3)):
        write_corpus(data / f"{name}.txt", args.eval_kb * 1000, words, seed)
    size = (data / "train.txt").stat().st_size
    print(f"corpus: {data / 'train.txt'}: {size / 1e9:.2f} GB, {n_lines:,} lines, written in "
          f"{time.perf_counter() - start:.0f} s", flush=True)

    env = {k: v for k, v in os.environ.items() if k != "LSTM_NLP_TOKEN_CACHE"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    common = [str(RECIPE), "--run-dir", str(run_dir), "--set", f"data.dir={data}",
              "--set", "data.train=train", "--set", "data.valid=valid", "--set", "data.test=test",
              "--set", f"tokenizer.vocab_size={args.vocab}", "--set", "train.max_epochs=0",
              "--set", "eval.samples=1", "--set", "train.log_every=100"]
    try:
        first = train("first start", [*common, "--set", f"train.max_steps={args.steps}"], env)
        resumed = train("--resume", [*common, "--resume", "--set",
                                     f"train.max_steps={args.steps + args.more_steps}"], env)
        second = train("second start (--overwrite)", [*common, "--overwrite", "--set",
                                                      f"train.max_steps={args.more_steps}"], env)
        store = sum(p.stat().st_size for p in (run_dir / "tokens").glob("*.tokens"))
        print(f"\ntoken stores: {store / 1e9:.2f} GB in {run_dir / 'tokens'}")
        for run in (first, resumed, second):
            report(run)
        reused = all("token store: reused" in r.line("token store: ") for r in (resumed, second))
        print(f"\nstores reused by --resume and the second start: {reused}")
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

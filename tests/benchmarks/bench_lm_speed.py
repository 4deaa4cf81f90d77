"""Training speed of lstm-nlp's language model against a plain PyTorch loop, in one process.

The model is recipes/ptb-small.yaml (Zaremba et al. 2014 "small": 2x200 LSTM, 10k words, batch
20, bptt 20, SGD, clip 5). The plain loop is `nn.Embedding` + 2-layer `nn.LSTM` + `nn.Linear` with
`F.cross_entropy`, the same shapes, windows and hidden-state carrying. Both see the same PTB
windows (random ids with PTB's vocabulary size when ../shared/data/ptb is absent) and alternate
in rounds, so machine noise hits both alike. Prints tokens/s of each and the ratio, per precision:
the tool's figure is the one it prints during training; "wall" also counts everything the
trainer does between steps (progress bar, bookkeeping).

    python tests/benchmarks/bench_lm_speed.py [--steps 300] [--rounds 3] [--recipe R.yaml]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lstm_nlp.config import load_recipe
from lstm_nlp.reporting.console import Reporter
from lstm_nlp.tasks.lm.model import build_lm
from lstm_nlp.tasks.lm.task import LanguageModelTask, batchify, bptt_windows, token_stream, window
from lstm_nlp.training import loop as trainer
from lstm_nlp.training import runtime

ROOT = Path(__file__).resolve().parents[2]
PTB = ROOT.parent / "shared" / "data" / "ptb"


class PlainLM(nn.Module):
    def __init__(self, vocab: int, emb: int, hidden: int, layers: int, init_range: float):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, hidden, layers)
        self.out = nn.Linear(hidden, vocab)
        for p in self.parameters():
            nn.init.uniform_(p, -init_range, init_range)

    def forward(self, x, state):
        y, state = self.lstm(self.emb(x), state)
        return self.out(y), state


def load_data(recipe_path: Path):
    overrides = [f"data.dir={PTB}"] if (PTB / "ptb.train.txt").is_file() else []
    recipe = load_recipe(recipe_path, overrides)
    if overrides:
        from lstm_nlp.data.corpora import load_text_split
        from lstm_nlp.data.tokenizer import WordTokenizer

        lines = load_text_split(recipe.data, recipe.data.train).lines
        tok = WordTokenizer.train(lines, recipe.tokenizer.vocab_size, recipe.tokenizer.min_freq)
        stream, origin = token_stream(tok, lines), f"PTB train, {tok.vocab_size:,} words"
        vocab = tok.vocab_size
    else:
        vocab = 10_004
        stream = torch.randint(4, vocab, (200_000,), generator=torch.Generator().manual_seed(0))
        origin = "random ids (no ../shared/data/ptb)"
    return recipe, stream, vocab, origin


def time_tool(recipe, stream, vocab: int, steps: int, precision: str) -> tuple[float, float]:
    """(tokens/s the trainer prints, tokens/s of wall time from step 1 to the last step)."""
    train = recipe.train.model_copy(update={"max_steps": steps, "max_epochs": 0,
                                            "valid_every": 10**9, "precision": precision})
    recipe = recipe.model_copy(update={"train": train})
    torch.manual_seed(0)
    model = build_lm(recipe.model, vocab)
    task = LanguageModelTask(recipe, stream, stream[:1000])
    task.validate = lambda model: {"val_ppl": 0.0, "val_loss": 0.0, "val_acc": 0.0}
    stamps = []
    with tempfile.TemporaryDirectory() as run_dir:
        reporter = Reporter(None)
        reporter.validation = lambda row, best: None  # keep the benchmark output clean
        result = trainer.fit(model, task, recipe.train, Path(run_dir), reporter, {}, False,
                             ("val_ppl", False), on_step=lambda step: stamps.append(time.perf_counter()))
    tokens = recipe.train.batch_size * recipe.train.bptt * (steps - 1)
    return result.last_validation["tokens_per_s"], tokens / (stamps[-1] - stamps[0])


def time_plain(recipe, stream, vocab: int, steps: int, precision: str) -> float:
    m, tr = recipe.model, recipe.train
    torch.manual_seed(0)
    model = PlainLM(vocab, m.emb_size, m.hidden_size, m.layers, m.init_range or 0.1)
    opt = torch.optim.SGD(model.parameters(), lr=tr.lr)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" \
        else contextlib.nullcontext
    data = batchify(stream, tr.batch_size)
    state = None
    tokens, seconds = 0, 0.0
    for start, length in bptt_windows(data.size(0), tr.bptt, False, 0, 0)[:steps]:
        w = window(data, start, length)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast():
            logits, state = model(w.inputs, state)
            loss = F.cross_entropy(logits.float().view(-1, vocab), w.targets.reshape(-1))
        (loss * length).backward()  # summed over the window, mean over streams
        state = tuple(s.detach() for s in state)
        torch.nn.utils.clip_grad_norm_(model.parameters(), tr.clip_norm)
        opt.step()
        loss.item()
        seconds += time.perf_counter() - t0
        tokens += w.targets.numel()
    return tokens / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="timed steps per loop per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "ptb-small.yaml")
    args = ap.parse_args()
    runtime.tune_allocator()
    recipe, stream, vocab, origin = load_data(args.recipe)
    print(f"model: {args.recipe.name}; data: {origin}; {args.steps} steps of "
          f"{recipe.train.batch_size}x{recipe.train.bptt} tokens; {torch.get_num_threads()} threads")
    for precision in args.precision:
        time_tool(recipe, stream, vocab, 20, precision)
        time_plain(recipe, stream, vocab, 20, precision)
        tool, wall, plain = [], [], []
        for _ in range(args.rounds):
            printed, walled = time_tool(recipe, stream, vocab, args.steps, precision)
            tool.append(printed)
            wall.append(walled)
            plain.append(time_plain(recipe, stream, vocab, args.steps, precision))
        t, w, p = statistics.median(tool), statistics.median(wall), statistics.median(plain)
        print(f"{precision}: lstm-nlp {t:,.0f} tokens/s (wall {w:,.0f}), plain PyTorch "
              f"{p:,.0f} tokens/s, ratio {t / p:.2f} (wall {w / p:.2f}; median of "
              f"{args.rounds} rounds)")


if __name__ == "__main__":
    main()

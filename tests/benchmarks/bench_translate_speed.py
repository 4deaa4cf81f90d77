"""Training speed of lstm-nlp against a plain PyTorch loop of the same model, in one process.

The model is the OpenNMT-py reference setup: 8k joint sentencepiece vocabulary, embeddings 256,
1-layer bidirectional LSTM encoder (512 total), 1-layer LSTM decoder 512 with Luong "general"
attention and input feeding, dropout 0.3, label smoothing 0.1, Adam, clipping 5. Both loops see
the same token batches (Multi30k de->en when ../shared/data/multi30k exists, else random ids with
Multi30k's length profile); they alternate in rounds so that machine noise hits both alike.
Prints target tokens/s of each and the ratio, in fp32 and bf16.

    python tests/benchmarks/bench_translate_speed.py [--steps 30] [--rounds 3]

Decoding speed: bench_decode_speed.py.
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
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstm_nlp.data.batching import seq2seq_batch, token_batches
from lstm_nlp.reporting.console import Reporter
from lstm_nlp.tasks.translate.config import TranslateTrainConfig
from lstm_nlp.tasks.translate.model import Seq2SeqModel
from lstm_nlp.training import loop as trainer
from lstm_nlp.training import runtime

MULTI30K = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "multi30k"
V, E, H, PAD, BOS, EOS = 8000, 256, 512, 0, 2, 3


class PlainSeq2Seq(nn.Module):
    """The same model written the obvious way: nn.LSTM encoder, nn.LSTMCell decoder loop."""

    def __init__(self):
        super().__init__()
        self.src_emb = nn.Embedding(V, E, padding_idx=PAD)
        self.tgt_emb = nn.Embedding(V, E, padding_idx=PAD)
        self.enc = nn.LSTM(E, H // 2, batch_first=True, bidirectional=True)
        self.cell = nn.LSTMCell(E + H, H)
        self.w_a = nn.Linear(H, H, bias=False)
        self.w_c = nn.Linear(2 * H, H, bias=False)
        self.out = nn.Linear(H, V)
        self.drop = nn.Dropout(0.3)

    def loss(self, b):
        emb = self.drop(self.src_emb(b.src))
        packed = pack_padded_sequence(emb, b.src_lengths, batch_first=True, enforce_sorted=False)
        out, (h, c) = self.enc(packed)
        mem, _ = pad_packed_sequence(out, batch_first=True, total_length=b.src.size(1))
        h, c = torch.cat([h[0], h[1]], 1), torch.cat([c[0], c[1]], 1)
        mask = b.src != PAD
        keys = self.w_a(mem)
        feed = torch.zeros_like(h)
        temb = self.drop(self.tgt_emb(b.tgt_in))
        outs = []
        for t in range(b.tgt_in.size(1)):
            h, c = self.cell(torch.cat([temb[:, t], feed], 1), (h, c))
            scores = torch.bmm(keys, h.unsqueeze(2)).squeeze(2).masked_fill(~mask, float("-inf"))
            ctx = torch.bmm(torch.softmax(scores, 1).unsqueeze(1).to(mem.dtype), mem).squeeze(1)
            feed = self.drop(torch.tanh(self.w_c(torch.cat([ctx, h], 1))))
            outs.append(feed)
        logits = self.out(torch.stack(outs, 1)).float()
        return F.cross_entropy(logits.view(-1, V), b.tgt_out.view(-1), ignore_index=PAD,
                               label_smoothing=0.1, reduction="sum")


def make_batches(n: int):
    if (MULTI30K / "train.de").is_file():
        from lstm_nlp.config.sections import TokenizerConfig
        from lstm_nlp.data.corpora import load_parallel_files
        from lstm_nlp.data.tokenizer import train_or_load

        pairs = load_parallel_files(MULTI30K / "train.de", MULTI30K / "train.en")
        tok = train_or_load(Path(tempfile.mkdtemp()), TokenizerConfig(vocab_size=V),
                            pairs.src, pairs.tgt, seed=1)
        src, tgt = tok.src.encode(pairs.src), tok.tgt.encode(pairs.tgt)
        origin = f"Multi30k de-en, {tok.src.vocab_size} joint pieces"
    else:
        g = torch.Generator().manual_seed(0)
        lens = torch.randint(8, 30, (29000,), generator=g).tolist()
        src = [torch.randint(4, V, (n_,), generator=g).tolist() for n_ in lens]
        tgt = [torch.randint(4, V, (max(n_ - 1, 1),), generator=g).tolist() for n_ in lens]
        origin = "random ids (no ../shared/data/multi30k)"
    order = token_batches([len(s) for s in src], [len(t) for t in tgt], 3000, 1, 0)
    batches = [seq2seq_batch([src[i] for i in idx], [tgt[i] for i in idx], PAD, BOS, EOS)
               for idx in order[:n]]
    return batches, origin


class _Task:
    """The trainer's task interface over a fixed list of batches."""

    def __init__(self, model, batches):
        self.model, self.batches = model, batches

    def epoch_batches(self, epoch):
        return list(range(len(self.batches)))

    def collate(self, i):
        return self.batches[i]

    def loss(self, model, batch):
        return model.loss(batch, 0.1)

    def validate(self, model):
        return {"val_bleu": 0.0}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def time_tool(batches, precision: str) -> float:
    """tokens/s as lstm-nlp's trainer measures and prints it (steps only, not validation)."""
    torch.manual_seed(0)
    model = Seq2SeqModel(V, V, PAD, E, H, 1, 1, True, "general", True, 0.3, False, False)
    cfg = TranslateTrainConfig(max_steps=len(batches), valid_every=10**9, clip_norm=5.0,
                               label_smoothing=0.1, precision=precision, valid_bleu=True)
    with tempfile.TemporaryDirectory() as run_dir:
        reporter = Reporter(None)
        reporter.validation = lambda row, best: None  # keep the benchmark output clean
        result = trainer.fit(model, _Task(model, batches), cfg, Path(run_dir), reporter, {}, False,
                             ("val_bleu", True))
    return result.last_validation["tokens_per_s"]


def time_plain(batches, precision: str) -> float:
    torch.manual_seed(0)
    model = PlainSeq2Seq()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" \
        else contextlib.nullcontext
    tokens, seconds = 0, 0.0
    for b in batches:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = model.loss(b)
        n = int((b.tgt_out != PAD).sum())
        (loss / n).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        seconds += time.perf_counter() - t0
        tokens += n
    return tokens / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30, help="timed steps per loop per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    args = ap.parse_args()
    runtime.tune_allocator()
    batches, origin = make_batches(args.steps + 3)
    warm, timed = batches[:3], batches[3:]
    n_tok = sum(int((b.tgt_out != PAD).sum()) for b in timed)
    print(f"batches: {origin}; {len(timed)} timed batches of about {n_tok // len(timed):,} "
          f"target tokens; {torch.get_num_threads()} threads")
    for precision in args.precision:
        time_tool(warm, precision), time_plain(warm, precision)
        tool, plain = [], []
        for _ in range(args.rounds):
            tool.append(time_tool(timed, precision))
            plain.append(time_plain(timed, precision))
        t, p = statistics.median(tool), statistics.median(plain)
        print(f"{precision}: lstm-nlp {t:,.0f} target tokens/s, plain PyTorch {p:,.0f} "
              f"target tokens/s, ratio {t / p:.2f} (median of {args.rounds} rounds)")


if __name__ == "__main__":
    main()

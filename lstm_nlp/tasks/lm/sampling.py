"""Sampling continuations of prompts from a language model: temperature, top-k and nucleus
(top-p) filtering, batched prompts."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lstm_nlp.data.tokenizer import BOS_ID, PAD_ID, Tokenizer
from lstm_nlp.tasks.base import inference
from lstm_nlp.tasks.lm.model import LanguageModel
from lstm_nlp.training import runtime
from lstm_nlp.training.devices import device_of


@dataclass
class SampleOptions:
    max_tokens: int = 50
    temperature: float = 1.0  # 0: always the most likely token
    top_k: int = 0            # 0: no limit
    top_p: float = 1.0        # nucleus sampling (Holtzman et al. 2020); 1: no limit
    batch_size: int = 64
    seed: int = 1
    precision: str = "fp32"


def next_token(logits: torch.Tensor, opts: SampleOptions, generator: torch.Generator
               ) -> torch.Tensor:
    """logits (B, V) -> sampled ids (B,), after temperature, top-k and top-p filtering."""
    logits = logits.clone()
    logits[:, [PAD_ID, BOS_ID]] = float("-inf")  # never produced in the training stream
    if opts.temperature == 0.0:
        return logits.argmax(-1)
    logits /= opts.temperature
    if 0 < opts.top_k < logits.size(-1):
        kth = logits.topk(opts.top_k, dim=-1).values[:, -1:]                     # (B, 1)
        logits[logits < kth] = float("-inf")
    if opts.top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        before = probs.cumsum(-1) - probs             # mass of the tokens ranked above
        sorted_logits[before >= opts.top_p] = float("-inf")  # the first token always stays
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def generate(model: LanguageModel, tok: Tokenizer, prompts: list[str], opts: SampleOptions,
             generator: torch.Generator) -> list[str]:
    """One continuation per prompt (prompt text not repeated), stopping at <eos> or max_tokens.
    An empty prompt starts from the start-of-text state (after <eos>). `generator` is on the
    model's device."""
    out = []
    device = device_of(model)
    with inference(model), runtime.autocast(opts.precision, device):
        for i in range(0, len(prompts), opts.batch_size):
            chunk = prompts[i: i + opts.batch_size]
            seqs = [[tok.eos_id] + ids for ids in tok.encode(chunk)]
            logits, state = model.prime(seqs)
            done = torch.zeros(len(seqs), dtype=torch.bool, device=device)
            rows: list[list[int]] = [[] for _ in seqs]
            for _ in range(opts.max_tokens):
                ids = next_token(logits, opts, generator)
                done |= ids == tok.eos_id
                picked = ids.tolist()
                for j in (~done).nonzero().flatten().tolist():
                    rows[j].append(picked[j])
                if bool(done.all()):
                    break
                logits, state = model.step(ids, state)
            out.extend(tok.decode(rows))
    return out

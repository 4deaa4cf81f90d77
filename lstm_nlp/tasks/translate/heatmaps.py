"""Attention heatmaps of `eval`'s sample sentences: the weights the decoder's attention gives
each source piece while the model reads its own translation back (teacher forcing through
`decode_step`, the step decoding uses), one PNG per sample beside the report."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from lstm_nlp.data.textio import report_file
from lstm_nlp.data.tokenizer import TokenizerPair
from lstm_nlp.reporting import console as reporting
from lstm_nlp.reporting import figures
from lstm_nlp.tasks.base import inference
from lstm_nlp.tasks.translate.model import Seq2SeqModel
from lstm_nlp.training.devices import device_of


def attention_matrix(model: Seq2SeqModel, tok: TokenizerPair, src: list[int], tgt: list[int]
                     ) -> torch.Tensor:
    """Source ids (S,) and target ids (T,), neither with BOS/EOS -> attention weights (T + 1, S):
    row t the step that predicts target piece t (the last one EOS)."""
    device = device_of(model)
    with inference(model):
        enc = model.encode(torch.tensor([src], device=device), torch.tensor([len(src)]))
        rows = []
        for prev in [tok.tgt.bos_id] + tgt:
            _, enc, weights = model.decode_step(torch.tensor([prev], device=device), enc)
            rows.append(weights[0])                                             # (S,)
        return torch.stack(rows).float().cpu()                                  # (T + 1, S)


def section(model: Seq2SeqModel, tok: TokenizerPair, samples: list[dict[str, str]],
            stem: Path) -> str:
    """The heatmaps of the samples (src, hyp) as `<stem>-attention-<i>.png`, and the Markdown
    section that shows them ('' when there are none, or no matplotlib: said in a warning)."""
    start, shown = time.perf_counter(), []
    for i, sample in enumerate(samples, start=1):
        src, hyp = tok.src.encode([sample["src"]])[0], tok.tgt.encode([sample["hyp"]])[0]
        if not src:
            continue
        weights = attention_matrix(model, tok, src, hyp)
        shown.append(figures.embedded(
            report_file(stem, f"-attention-{i}.png"), f"attention, sample {i}",
            lambda: figures.attention(weights.tolist(), tok.src.id_to_piece(src),
                                      tok.tgt.id_to_piece(hyp + [tok.tgt.eos_id]),
                                      f"sample {i}: {sample['src']}")))
        if not shown[-1]:  # the warning said why; the next ones would say it again
            return ""
    if not shown:
        return ""
    reporting.info(f"attention heatmaps: {len(shown)} in {time.perf_counter() - start:.2f}s")
    return "## Attention\n\n" + "\n".join(shown)

"""The lm task's verbs: set up training, rebuild from a checkpoint, score the test split,
evaluate perplexity, generate (the functions tasks/registry.py names)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

import torch

from lstm_nlp.data.corpora import TextLines, load_text_split, read_lines
from lstm_nlp.data.sources import language_corpora
from lstm_nlp.data.textio import (HELD_OUT, check_input, read_input_lines, report_file,
                                   report_folder, split_name)
from lstm_nlp.data.token_store import TokenCache
from lstm_nlp.data.tokenizer import Tokenizer, tokenizer_state
from lstm_nlp.errors import ConfigError
from lstm_nlp.reporting import console as reporting
from lstm_nlp.reporting import markdown
from lstm_nlp.tasks.base import EvalRequest, overridden
from lstm_nlp.tasks.lm import sampling
from lstm_nlp.tasks.lm.config import LMRecipe
from lstm_nlp.tasks.lm.model import LanguageModel, build_lm
from lstm_nlp.tasks.lm.task import LanguageModelTask, stream_nll, token_stream
from lstm_nlp.tasks.lm.transfer import load_weights, tokenizer_for_run
from lstm_nlp.training import checkpoint, runtime
from lstm_nlp.training.devices import device_of


def setup(recipe: LMRecipe, run_dir: Path, resume: bool):
    """The training and validation streams come from token stores (data/token_store.py): the
    text is tokenized once, in parallel, and memory-mapped, not held."""
    train_text, valid_text = language_corpora(recipe.data, recipe.seed)
    cache = TokenCache.for_run(run_dir)
    tok, pretrained = tokenizer_for_run(run_dir / "tokenizer" / "lm.model", recipe.model,
                                        recipe.tokenizer, train_text, recipe.seed, resume,
                                        cache.train_tokenizer)
    stores = cache.stores(tok, tok.eos_id, {"lm-train": train_text, "lm-valid": valid_text})
    train_ids, valid_ids = stores["lm-train"].stream(), stores["lm-valid"].stream()
    reporting.info(f"data: {train_ids.numel():,} training tokens ({train_text.origin}), "
                   f"{valid_ids.numel():,} validation tokens ({_unk_rate(tok, valid_ids):.2%} "
                   f"unknown)")
    task = LanguageModelTask(recipe, train_ids, valid_ids)
    runtime.set_seed(recipe.seed)
    model = build_lm(recipe.model, tok.vocab_size)
    if pretrained is not None:  # target-domain fine-tuning: every weight from the given LM
        load_weights(model, pretrained)
        reporting.info(f"starting from the language model {pretrained.path}")
    n_params = sum(p.numel() for p in model.parameters())
    tr = recipe.train
    reporting.info(f"model: {n_params:,} parameters; {tok.kind} vocabulary {tok.vocab_size:,}; "
                   f"{reporting.counted(task.data.size(1), 'stream')} of {task.data.size(0):,} tokens, "
                   f"bptt {tr.bptt}"
                   f"{' (variable)' if tr.variable_bptt else ''}; run folder {run_dir}")
    extra = {"task": recipe.task, "recipe": recipe.to_dict(),
             "tokenizer": tokenizer_state(tok)}
    return task, model, extra


def _held_out(recipe: LMRecipe) -> TextLines:
    """The validation lines held out of the training text (`valid: ""`), read line by line:
    only they are kept."""
    valid = language_corpora(recipe.data, recipe.seed)[1]
    return TextLines(list(valid), valid.origin)


def _unk_rate(tok: Tokenizer, ids: torch.Tensor, block: int = 1 << 24) -> float:
    """The share of <unk> in a stream, counted a block at a time (a store's stream is large)."""
    unknown = sum(int((ids[i: i + block] == tok.unk_id).sum())
                  for i in range(0, ids.numel(), block))
    return unknown / ids.numel() if ids.numel() else 0.0


def rebuild(ckpt: dict, recipe: LMRecipe, path: Path) -> tuple[LanguageModel, Tokenizer]:
    tok = checkpoint.tokenizer_of(ckpt, path)
    return build_lm(recipe.model, tok.vocab_size), tok


def test_report(model: LanguageModel, tok: Tokenizer, recipe: LMRecipe) -> dict | None:
    text = load_text_split(recipe.data, recipe.data.test)
    test = _perplexity(model, tok, text, recipe.eval.batch_size, recipe)
    prompts = list(recipe.eval.prompts) or [""] * recipe.eval.samples
    opts = _sampling(recipe, recipe.seed)
    generator = torch.Generator(device=device_of(model)).manual_seed(recipe.seed)
    texts = sampling.generate(model, tok, prompts, opts, generator)
    test["samples"] = [{"prompt": p, "text": t} for p, t in zip(prompts, texts)]
    test["markdown"] = [_perplexity_md(test), "## Samples\n",
                        "".join(f"- *{s['prompt'] or '(start of text)'}* {s['text']}\n"
                                for s in test["samples"])
                        or "_none_\n"]
    return test


def _sampling(recipe: LMRecipe, seed: int) -> sampling.SampleOptions:
    """The recipe's sampling settings (its `generate` section, its training precision)."""
    g = recipe.generate
    return sampling.SampleOptions(g.max_tokens, g.temperature, g.top_k, g.top_p, g.batch_size,
                                  seed, recipe.train.precision)


def _perplexity(model: LanguageModel, tok: Tokenizer, text: TextLines, batch_size: int,
                recipe: LMRecipe, precision: str | None = None) -> dict:
    precision = precision or recipe.train.precision
    stream = token_stream(tok, text.lines)
    start = time.perf_counter()
    with runtime.autocast(precision, device_of(model)):
        stats = stream_nll(model, stream, batch_size, recipe.eval.bptt)
    seconds = time.perf_counter() - start
    result = {"data": text.origin, "lines": len(text), "tokens": stats["tokens"],
              "ppl": round(stats["ppl"], 3), "nll": round(stats["nll"], 4),
              "bits_per_token": round(stats["bits_per_token"], 4),
              "accuracy": round(stats["acc"], 4), "unk_rate": round(_unk_rate(tok, stream), 4),
              "batch_size": batch_size, "bptt": recipe.eval.bptt, "precision": precision,
              "tokens_per_s": round(stats["tokens"] / max(seconds, 1e-9), 1)}
    reporting.info(f"perplexity of {text.origin}: {reporting.counted(len(text), 'line')}, "
                   f"batch size {batch_size}")
    reporting.print_scores("perplexity", {
        k: result[k] for k in ("tokens", "ppl", "bits_per_token", "accuracy", "unk_rate",
                               "tokens_per_s")})
    return result


def _perplexity_md(r: dict) -> str:
    return (f"## Perplexity: {r['data']}\n\n"
            + markdown.metric_table({
                "perplexity": f"**{r['ppl']:.2f}**", "bits per token": f"{r['bits_per_token']:.4f}",
                "mean NLL": f"{r['nll']:.4f}", "next-token accuracy": f"{r['accuracy']:.2%}",
                "tokens": f"{r['tokens']:,}", "unknown tokens": f"{r['unk_rate']:.2%}",
                "tokens/s": f"{r['tokens_per_s']:,.0f}"}) + "\n"
            f"{reporting.counted(r['lines'], 'line')}, batch size {r['batch_size']}, bptt {r['bptt']}, "
            f"{r['precision']}\n")


def evaluate(request: EvalRequest, loaded: tuple[LanguageModel, Tokenizer, LMRecipe]) -> dict:
    """Perplexity of a split, a file, or the text on stdin (when it is not a terminal)."""
    model, tok, recipe = loaded
    model_path = request.single_model("language")
    request.refuse(("src", "ref", "beam"), "are for translation models")
    split, input_path = request.split, request.input
    batch_size, precision = request.batch_size, request.precision
    if split is not None and input_path is not None:
        raise ConfigError("give either --split or --input, not both")
    if input_path is not None:  # the report is named after the file: eval-doc.txt.md
        text, name = TextLines(read_lines(input_path), str(input_path)), Path(input_path).name
    elif (lines := request.piped_lines()) is not None:
        text, name = TextLines(lines, "stdin"), "stdin"
    else:
        name = split_name(recipe, split or "test")
        text = _held_out(recipe) if name == HELD_OUT else load_text_split(recipe.data, name)
    precision = runtime.inference_precision(precision, recipe.train.precision, device_of(model))
    result = _perplexity(model, tok, text, batch_size or recipe.eval.batch_size, recipe,
                         precision)
    result["checkpoint"] = str(checkpoint.resolve(model_path))
    stem = report_folder(model_path, request.out_dir) / f"eval-{name}"
    reporting.write_json(report_file(stem, ".json"), result)
    report_file(stem, ".md").write_text(f"# Evaluation\n\ncheckpoint `{result['checkpoint']}`"
                                       f"\n\n{_perplexity_md(result)}", encoding="utf-8")
    reporting.info(f"report: {report_file(stem, '.md')}")
    return result


def generate(model_path: Path, input_path: Path | None, output: TextIO, stdin: TextIO,
             max_tokens: int | None = None, temperature: float | None = None,
             top_k: int | None = None, top_p: float | None = None, seed: int = 1,
             batch_size: int | None = None, precision: str | None = None,
             device: str | None = None) -> None:
    """One sampled continuation per input line (prompt), in order; same seed, same text (on a
    device of the same kind)."""
    check_input(input_path)  # refused before the model loads, as is a device not here
    where = runtime.prepare_inference(device, precision)
    model, tok, recipe = checkpoint.load_for(model_path, "lm", "generate", where)
    opts = overridden(_sampling(recipe, seed), max_tokens=max_tokens, temperature=temperature,
                      top_k=top_k, top_p=top_p, batch_size=batch_size,
                      precision=runtime.inference_precision(precision, recipe.train.precision,
                                                            where))
    generator = torch.Generator(device=where).manual_seed(seed)
    n, start = 0, time.perf_counter()
    for lines in read_input_lines(stdin, input_path, max(opts.batch_size * 8, 512)):
        for text in sampling.generate(model, tok, lines, opts, generator):
            output.write(text + "\n")
        output.flush()
        n += len(lines)
    dt = time.perf_counter() - start
    reporting.info(f"generated {reporting.counted(n, 'continuation')} in {dt:.1f}s ({n / max(dt, 1e-9):,.1f}/s, "
                   f"temperature {opts.temperature:g}, top-k {opts.top_k}, top-p {opts.top_p:g}, "
                   f"seed {seed})")

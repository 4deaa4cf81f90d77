"""The whole story, one function per verb: train, translate, generate, evaluate. Each verb
loads what it needs and hands the work to its task module (translation.py, lm.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator, TextIO

import torch

from lstm_nlp import checkpoint, lm, reporting, runtime, trainer
from lstm_nlp.config import LMRecipe, Recipe, TranslateRecipe, load_recipe, save_recipe
from lstm_nlp.data import (ParallelText, TextLines, load_parallel_files, load_split,
                           load_text_split, read_lines)
from lstm_nlp.errors import ConfigError, DataError
from lstm_nlp.language_model import LanguageModel, build_lm
from lstm_nlp.lm import LanguageModelTask, token_stream
from lstm_nlp.models import Seq2SeqModel, build_model
from lstm_nlp.tokenizer import Tokenizer, TokenizerPair, train_or_load, train_or_load_one
from lstm_nlp.translation import DecodeOptions, TranslationTask, score, translate_lines

# Recipe keys that may change when a run is resumed (limits and logging, not the experiment).
RESUMABLE_CHANGES = {"name", "train.max_steps", "train.max_epochs", "train.max_minutes",
                     "train.valid_every", "train.log_every", "train.threads", "train.patience"}


def train(recipe_path: Path, overrides: list[str], run_dir: Path | None = None,
          overwrite: bool = False, resume: bool = False,
          on_step: Callable[[int], None] | None = None) -> Path:
    recipe = load_recipe(recipe_path, overrides)
    run_dir = Path(run_dir) if run_dir else Path("runs") / recipe.name
    if resume:
        _check_resumable(run_dir, recipe)
    run_dir = runtime.prepare_run_dir(run_dir, overwrite, resume)
    save_recipe(recipe, run_dir / "recipe.yaml")
    runtime.tune_allocator()
    runtime.set_threads(recipe.train.threads)
    runtime.set_seed(recipe.seed)

    setup = _setup_translate if recipe.task == "translate" else _setup_lm
    task, model, extra = setup(recipe, run_dir)
    n_params = sum(p.numel() for p in model.parameters())
    reporter = reporting.Reporter(run_dir / "metrics.jsonl")
    result = trainer.fit(model, task, recipe.train, run_dir, reporter, extra, resume, on_step)
    reporting.info(f"training stopped: {result.reason or 'done'}; best val "
                   f"{recipe.train.early_stopping_metric} {result.state.best_score:.4g} "
                   f"at step {result.state.best_step}")

    model, tok, recipe = load_model(checkpoint.resolve(run_dir))
    test = _test_translate(model, tok, recipe) if recipe.task == "translate" else \
        _test_lm(model, tok, recipe)
    _write_train_report(run_dir, recipe, result, n_params, test)
    return run_dir


def _setup_translate(recipe: TranslateRecipe, run_dir: Path):
    d = recipe.data
    train_split, valid_split = load_split(d, d.train), load_split(d, d.valid)
    reporting.info(f"data: {len(train_split):,} training pairs ({train_split.origin}), "
                   f"{len(valid_split):,} validation pairs")
    tok = train_or_load(run_dir / "tokenizer", recipe.tokenizer, train_split.src,
                        train_split.tgt, recipe.seed)
    task = TranslationTask(recipe, tok, train_split, valid_split)
    if task.dropped:
        reporting.info(f"length filter: dropped {task.dropped:,} training pairs")
    runtime.set_seed(recipe.seed)
    model = build_model(recipe.model, tok.src.vocab_size, tok.tgt.vocab_size, tok.tgt.pad_id)
    n_params = sum(p.numel() for p in model.parameters())
    reporting.info(f"model: {n_params:,} parameters; vocabulary {tok.src.vocab_size:,} source, "
                   f"{tok.tgt.vocab_size:,} target{' (joint)' if tok.joint else ''}; "
                   f"run folder {run_dir}")
    extra = {"task": recipe.task, "recipe": recipe.to_dict(), "tokenizer": tok.to_state()}
    return task, model, extra


def _setup_lm(recipe: LMRecipe, run_dir: Path):
    d = recipe.data
    train_text, valid_text = load_text_split(d, d.train), load_text_split(d, d.valid)
    tok = train_or_load_one(run_dir / "tokenizer" / "lm.model", recipe.tokenizer,
                            train_text.lines, recipe.seed)
    train_ids, valid_ids = token_stream(tok, train_text.lines), token_stream(tok, valid_text.lines)
    reporting.info(f"data: {train_ids.numel():,} training tokens ({train_text.origin}), "
                   f"{valid_ids.numel():,} validation tokens ({_unk_rate(tok, valid_ids):.2%} "
                   f"unknown)")
    task = LanguageModelTask(recipe, train_ids, valid_ids)
    runtime.set_seed(recipe.seed)
    model = build_lm(recipe.model, tok.vocab_size)
    n_params = sum(p.numel() for p in model.parameters())
    tr = recipe.train
    reporting.info(f"model: {n_params:,} parameters; {tok.kind} vocabulary {tok.vocab_size:,}; "
                   f"{tr.batch_size} streams x {task.data.size(0):,} steps, bptt {tr.bptt}"
                   f"{' (variable)' if tr.variable_bptt else ''}; run folder {run_dir}")
    extra = {"task": recipe.task, "recipe": recipe.to_dict(),
             "tokenizer": {"kind": tok.kind, "model": tok.proto}}
    return task, model, extra


def _unk_rate(tok: Tokenizer, ids: torch.Tensor) -> float:
    return float((ids == tok.unk_id).float().mean()) if ids.numel() else 0.0


def _test_translate(model: Seq2SeqModel, tok: TokenizerPair, recipe: TranslateRecipe
                    ) -> dict | None:
    try:
        test_split = load_split(recipe.data, recipe.data.test)
    except DataError as e:
        reporting.info(f"no test evaluation: {e}")
        return None
    test, hyps = _score(model, tok, test_split, _decode_options(recipe), recipe)
    reporting.print_scores(f"test ({recipe.data.test}, beam {recipe.decode.beam_size})", {
        k: test[k] for k in ("sentences", "bleu", "chrf", "ppl", "sentences_per_s")})
    test["samples"] = _samples(test_split, hyps, recipe.eval.samples)
    test["markdown"] = [
        f"## Test: {test['data']}\n",
        f"beam {test['beam_size']}: **BLEU {test['bleu']:.2f}**, chrF {test['chrf']:.2f}, "
        f"perplexity {test['ppl']:.3f}, {test['sentences_per_s']:.1f} sentences/s\n",
        f"`{test['bleu_detail']}`\n\n`{test['bleu_signature']}`\n",
        "## Samples\n", _samples_md(test["samples"])]
    return test


def _test_lm(model: LanguageModel, tok: Tokenizer, recipe: LMRecipe) -> dict | None:
    try:
        text = load_text_split(recipe.data, recipe.data.test)
    except DataError as e:
        reporting.info(f"no test evaluation: {e}")
        return None
    test = _perplexity(model, tok, text, recipe.eval.batch_size, recipe)
    prompts = list(recipe.eval.prompts) or [""] * recipe.eval.samples
    g = recipe.generate
    opts = lm.SampleOptions(g.max_tokens, g.temperature, g.top_k, g.top_p, g.batch_size,
                            recipe.seed, recipe.train.precision)
    texts = lm.generate(model, tok, prompts, opts, torch.Generator().manual_seed(recipe.seed))
    test["samples"] = [{"prompt": p, "text": t} for p, t in zip(prompts, texts)]
    test["markdown"] = [_perplexity_md(test), "## Samples\n",
                        "".join(f"- *{s['prompt'] or '(start of text)'}* {s['text']}\n"
                                for s in test["samples"])
                        or "_none_\n"]
    return test


def _perplexity(model: LanguageModel, tok: Tokenizer, text: TextLines, batch_size: int,
                recipe: LMRecipe, precision: str | None = None) -> dict:
    stream = token_stream(tok, text.lines)
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16,
                        enabled=(precision or recipe.train.precision) == "bf16"):
        stats = lm.stream_nll(model, stream, batch_size, recipe.eval.bptt)
    seconds = time.perf_counter() - start
    result = {"data": text.origin, "lines": len(text), "tokens": stats["tokens"],
              "ppl": round(stats["ppl"], 3), "nll": round(stats["nll"], 4),
              "bits_per_token": round(stats["bits_per_token"], 4),
              "accuracy": round(stats["acc"], 4), "unk_rate": round(_unk_rate(tok, stream), 4),
              "batch_size": batch_size, "bptt": recipe.eval.bptt,
              "precision": precision or recipe.train.precision,
              "tokens_per_s": round(stats["tokens"] / max(seconds, 1e-9), 1)}
    reporting.info(f"perplexity of {text.origin}: {len(text):,} lines, batch size {batch_size}")
    reporting.print_scores("perplexity", {
        k: result[k] for k in ("tokens", "ppl", "bits_per_token", "accuracy", "unk_rate",
                               "tokens_per_s")})
    return result


def _perplexity_md(r: dict) -> str:
    return (f"## Perplexity: {r['data']}\n\n"
            f"| metric | value |\n|---|---:|\n| perplexity | **{r['ppl']:.2f}** |\n"
            f"| bits per token | {r['bits_per_token']:.4f} |\n| mean NLL | {r['nll']:.4f} |\n"
            f"| next-token accuracy | {r['accuracy']:.2%} |\n| tokens | {r['tokens']:,} |\n"
            f"| unknown tokens | {r['unk_rate']:.2%} |\n| tokens/s | {r['tokens_per_s']:,.0f} |\n\n"
            f"{r['lines']:,} lines, batch size {r['batch_size']}, bptt {r['bptt']}, "
            f"{r['precision']}\n")


def _check_resumable(run_dir: Path, recipe: Recipe) -> None:
    saved_path = run_dir / "recipe.yaml"
    if not (run_dir / "last.pt").is_file():
        raise ConfigError(f"--resume: no last.pt in {run_dir}; nothing to resume")
    if not saved_path.is_file():
        raise ConfigError(f"--resume: {saved_path} not found; is {run_dir} a run folder?")
    saved = _flatten(load_recipe(saved_path).to_dict())
    new = _flatten(recipe.to_dict())
    changed = [k for k in new if new[k] != saved.get(k) and k not in RESUMABLE_CHANGES]
    if changed:
        k = changed[0]
        raise ConfigError(f"--resume: the recipe differs from the run's at {k} "
                          f"({saved.get(k)!r} in the run, {new[k]!r} now); only "
                          f"{', '.join(sorted(RESUMABLE_CHANGES))} may change")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def load_model(model_path: Path):
    """A run folder (its best checkpoint) or a checkpoint file -> (model in eval mode, tokenizer
    or tokenizer pair, recipe), whatever the task."""
    path = checkpoint.resolve(model_path)
    ckpt = checkpoint.load(path)
    recipe = checkpoint.recipe_of(ckpt, path)
    if recipe.task == "translate":
        tok = checkpoint.tokenizers_of(ckpt, path)
        model = build_model(recipe.model, tok.src.vocab_size, tok.tgt.vocab_size, tok.tgt.pad_id)
    else:
        tok = checkpoint.tokenizer_of(ckpt, path)
        model = build_lm(recipe.model, tok.vocab_size)
    checkpoint.load_state(model, ckpt["model"], path, "model weights")
    model.eval()
    return model, tok, recipe


def _load_for(model_path: Path, task: str, verb: str):
    model, tok, recipe = load_model(model_path)
    if recipe.task != task:
        names = {"translate": "translation", "lm": "language"}
        verbs = {"translate": "translate, eval", "lm": "generate, eval"}[recipe.task]
        raise ConfigError(f"{model_path} is a {names[recipe.task]} model; {verb} needs a "
                          f"{names[task]} model (this one works with: {verbs})")
    return model, tok, recipe


def split_name(recipe: Recipe, split: str) -> str:
    """`train`, `valid`, `test` mean the recipe's splits of that role; anything else is a name."""
    return getattr(recipe.data, split) if split in ("train", "valid", "test") else split


def _decode_options(recipe: Recipe, beam: int | None = None, length_penalty: float | None = None,
                    max_len_ratio: float | None = None, batch_size: int | None = None,
                    precision: str | None = None) -> DecodeOptions:
    """Command-line values where given, else the recipe's (precision: the training precision)."""
    d = recipe.decode
    opts = DecodeOptions(d.beam_size if beam is None else beam,
                         d.length_penalty if length_penalty is None else length_penalty,
                         d.max_len_ratio if max_len_ratio is None else max_len_ratio,
                         d.batch_size if batch_size is None else batch_size,
                         recipe.train.precision if precision is None else precision)
    if opts.beam_size < 1 or opts.batch_size < 1 or opts.max_len_ratio <= 0:
        raise ConfigError("--beam and --batch-size must be >= 1, --max-len-ratio > 0")
    return opts


def read_input_lines(stream: TextIO | None, path: Path | None, chunk: int) -> Iterator[list[str]]:
    """Chunks of lines from a file or stdin, LF or CRLF; bad UTF-8 is reported with its line."""
    source = open(path, "rb") if path else stream.buffer
    origin = str(path) if path else "stdin"
    try:
        lines = []
        for lineno, raw in enumerate(source, start=1):
            try:
                lines.append(raw.decode("utf-8").rstrip("\r\n"))
            except UnicodeDecodeError as e:
                raise DataError(f"{origin}: line {lineno}, byte {e.start + 1}: not valid UTF-8 "
                                f"(0x{raw[e.start]:02x})") from None
            if len(lines) >= chunk:
                yield lines
                lines = []
        if lines:
            yield lines
    finally:
        if path:
            source.close()


def translate(model_path: Path, input_path: Path | None, output: TextIO, stdin: TextIO,
              beam: int | None = None, length_penalty: float | None = None,
              max_len_ratio: float | None = None, batch_size: int | None = None,
              precision: str | None = None) -> None:
    runtime.tune_allocator()
    model, tok, recipe = _load_for(model_path, "translate", "translate")
    opts = _decode_options(recipe, beam, length_penalty, max_len_ratio, batch_size, precision)
    n, start = 0, time.perf_counter()
    with torch.inference_mode():
        for lines in read_input_lines(stdin, input_path, max(opts.batch_size * 8, 1024)):
            for hyp in translate_lines(model, tok, lines, opts):
                output.write(hyp + "\n")
            output.flush()
            n += len(lines)
    dt = time.perf_counter() - start
    reporting.info(f"translated {n:,} lines in {dt:.1f}s ({n / max(dt, 1e-9):,.1f} sentences/s, "
                   f"beam {opts.beam_size}, {opts.precision})")


def evaluate(model_path: Path, split: str | None = None, src: Path | None = None,
             ref: Path | None = None, beam: int | None = None, out_dir: Path | None = None,
             precision: str | None = None, input_path: Path | None = None,
             stdin: TextIO | None = None, batch_size: int | None = None) -> dict:
    runtime.tune_allocator()
    model, tok, recipe = load_model(model_path)
    if recipe.task == "lm":
        if src is not None or ref is not None or beam is not None:
            raise ConfigError("--src/--ref/--beam are for translation models; a language model "
                              "takes --split, --input or text on stdin")
        return _evaluate_lm(model, tok, recipe, model_path, split, input_path, stdin,
                            batch_size, out_dir, precision)
    if input_path is not None:
        raise ConfigError("--input is for language models; score a translation model with "
                          "--src and --ref, or --split")
    if (src is None) != (ref is None):
        raise ConfigError("--src and --ref go together")
    if src is not None and split is not None:
        raise ConfigError("give either --split or --src/--ref, not both")
    pairs = load_parallel_files(src, ref) if src is not None else \
        load_split(recipe.data, split_name(recipe, split or "test"))
    if len(pairs) == 0:
        raise DataError(f"{pairs.origin}: no sentences to evaluate")
    opts = _decode_options(recipe, beam, batch_size=batch_size, precision=precision)
    result, hyps = _score(model, tok, pairs, opts, recipe)
    result["checkpoint"] = str(checkpoint.resolve(model_path))
    name = Path(src).stem if src is not None else split_name(recipe, split or "test")
    stem = _report_folder(model_path, out_dir) / f"eval-{name}-beam{opts.beam_size}"
    stem.with_suffix(".hyp").write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    reporting.write_json(stem.with_suffix(".json"), result)
    stem.with_suffix(".md").write_text(_eval_markdown(result, _samples(pairs, hyps,
                                                                       recipe.eval.samples)),
                                       encoding="utf-8")
    reporting.print_scores(f"{name} (beam {opts.beam_size})", {
        k: result[k] for k in ("sentences", "bleu", "chrf", "ppl", "sentences_per_s")})
    reporting.info(f"BLEU signature: {result['bleu_signature']}")
    reporting.info(f"report: {stem.with_suffix('.md')}")
    return result


def _evaluate_lm(model: LanguageModel, tok: Tokenizer, recipe: LMRecipe, model_path: Path,
                 split: str | None, input_path: Path | None, stdin: TextIO | None,
                 batch_size: int | None, out_dir: Path | None, precision: str | None) -> dict:
    """Perplexity of a split, a file, or the text on stdin (when it is not a terminal)."""
    if split is not None and input_path is not None:
        raise ConfigError("give either --split or --input, not both")
    if input_path is not None:
        text, name = TextLines(read_lines(input_path), str(input_path)), Path(input_path).stem
    elif split is None and stdin is not None and not stdin.isatty():
        lines = [line for chunk in read_input_lines(stdin, None, 1 << 16) for line in chunk]
        if not lines:
            raise DataError("stdin: no text to evaluate (pipe some text, or give --split or "
                            "--input)")
        text, name = TextLines(lines, "stdin"), "stdin"
    else:
        name = split_name(recipe, split or "test")
        text = load_text_split(recipe.data, name)
    if batch_size is not None and batch_size < 1:
        raise ConfigError("--batch-size must be >= 1")
    result = _perplexity(model, tok, text, batch_size or recipe.eval.batch_size, recipe,
                         precision)
    result["checkpoint"] = str(checkpoint.resolve(model_path))
    stem = _report_folder(model_path, out_dir) / f"eval-{Path(name).name}"
    reporting.write_json(stem.with_suffix(".json"), result)
    stem.with_suffix(".md").write_text(f"# Evaluation\n\ncheckpoint `{result['checkpoint']}`"
                                       f"\n\n{_perplexity_md(result)}", encoding="utf-8")
    reporting.info(f"report: {stem.with_suffix('.md')}")
    return result


def generate(model_path: Path, input_path: Path | None, output: TextIO, stdin: TextIO,
             max_tokens: int | None = None, temperature: float | None = None,
             top_k: int | None = None, top_p: float | None = None, seed: int = 1,
             batch_size: int | None = None, precision: str | None = None) -> None:
    """One sampled continuation per input line (prompt), in order; same seed, same text."""
    runtime.tune_allocator()
    model, tok, recipe = _load_for(model_path, "lm", "generate")
    g = recipe.generate
    opts = lm.SampleOptions(
        g.max_tokens if max_tokens is None else max_tokens,
        g.temperature if temperature is None else temperature,
        g.top_k if top_k is None else top_k, g.top_p if top_p is None else top_p,
        g.batch_size if batch_size is None else batch_size, seed,
        precision or recipe.train.precision)
    if opts.max_tokens < 1 or opts.temperature < 0 or opts.top_k < 0 or opts.batch_size < 1 \
            or not 0.0 < opts.top_p <= 1.0:
        raise ConfigError("--max-tokens and --batch-size must be >= 1, --temperature and "
                          "--top-k >= 0, --top-p in (0, 1]")
    generator = torch.Generator().manual_seed(seed)
    n, start = 0, time.perf_counter()
    for lines in read_input_lines(stdin, input_path, max(opts.batch_size * 8, 512)):
        for text in lm.generate(model, tok, lines, opts, generator):
            output.write(text + "\n")
        output.flush()
        n += len(lines)
    dt = time.perf_counter() - start
    reporting.info(f"generated {n:,} continuations in {dt:.1f}s ({n / max(dt, 1e-9):,.1f}/s, "
                   f"temperature {opts.temperature:g}, top-k {opts.top_k}, top-p {opts.top_p:g}, "
                   f"seed {seed})")


def _score(model, tok, pairs: ParallelText, opts: DecodeOptions, recipe: Recipe
           ) -> tuple[dict, list[str]]:
    start = time.perf_counter()
    result, hyps = score(model, tok, pairs, opts, recipe)
    result["seconds"] = round(time.perf_counter() - start, 2)
    result["sentences_per_s"] = round(len(pairs) / max(result["seconds"], 1e-9), 1)
    return result, hyps


def _report_folder(model_path: Path, out_dir: Path | None) -> Path:
    model_path = Path(model_path)
    folder = Path(out_dir) if out_dir else model_path if model_path.is_dir() else model_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _samples(pairs: ParallelText, hyps: list[str], n: int) -> list[dict[str, str]]:
    return [{"src": pairs.src[i], "ref": pairs.tgt[i], "hyp": hyps[i]}
            for i in range(min(n, len(hyps)))]


def _samples_md(samples: list[dict[str, str]]) -> str:
    out = []
    for s in samples:
        out.append(f"- **src** {s['src']}\n  **ref** {s['ref']}\n  **hyp** {s['hyp']}")
    return "\n".join(out) + "\n" if out else "_none_\n"


def _eval_markdown(result: dict, samples: list[dict[str, str]]) -> str:
    return (f"# Evaluation: {result['data']}\n\n"
            f"checkpoint `{result.get('checkpoint', '')}`, {result['sentences']} sentences, "
            f"beam {result['beam_size']}, length penalty {result['length_penalty']}, "
            f"{result['precision']}\n\n"
            f"| metric | value |\n|---|---:|\n| BLEU | {result['bleu']:.2f} |\n"
            f"| chrF | {result['chrf']:.2f} |\n| perplexity | {result['ppl']:.3f} |\n"
            f"| token accuracy | {result['token_accuracy']:.2%} |\n"
            f"| sentences/s | {result['sentences_per_s']:.1f} |\n\n"
            f"BLEU: `{result['bleu_detail']}`\n\nsacrebleu signatures: `{result['bleu_signature']}`"
            f", `{result['chrf_signature']}`\n\n## Samples\n\n{_samples_md(samples)}")


def _write_train_report(run_dir: Path, recipe: Recipe, result: trainer.TrainResult,
                        n_params: int, test: dict | None) -> None:
    rows = reporting.read_metrics(run_dir / "metrics.jsonl")
    s = result.state
    test_md = test.pop("markdown") if test else []
    summary = {"recipe": recipe.name, "task": recipe.task, "parameters": n_params,
               "steps": s.step, "epochs": s.epoch,
               "train_seconds": round(s.elapsed_s, 1), "stop_reason": result.reason,
               "best_step": s.best_step, "best_" + recipe.train.early_stopping_metric: s.best_score,
               "last_validation": result.last_validation, "test": test}
    reporting.write_json(run_dir / "report.json", summary)
    tps = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r]
    unit = "target tokens/s" if recipe.task == "translate" else "tokens/s"
    md = [f"# Run report: {recipe.name}\n",
          f"task `{recipe.task}`, {n_params:,} parameters, {s.step:,} steps in "
          f"{s.elapsed_s / 60:.1f} min of training ({result.reason or 'done'}); "
          f"median {sorted(tps)[len(tps) // 2] if tps else 0:,.0f} {unit}; "
          f"precision {recipe.train.precision}.\n",
          f"Best validation {recipe.train.early_stopping_metric}: {s.best_score:.4g} at step "
          f"{s.best_step} (`best.pt`); last checkpoint `last.pt`; resolved recipe "
          f"`recipe.yaml`.\n", "## Validation curve\n", reporting.curve_table_md(rows), *test_md]
    (run_dir / "report.md").write_text("\n".join(md), encoding="utf-8")
    reporting.info(f"report: {run_dir / 'report.md'}")

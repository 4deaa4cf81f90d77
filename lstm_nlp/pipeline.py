"""The whole story, one function per verb: train, translate, evaluate."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator, TextIO

from lstm_nlp import checkpoint, reporting, runtime, trainer
from lstm_nlp.config import Recipe, load_recipe, save_recipe
from lstm_nlp.data import ParallelText, load_parallel_files, load_split
from lstm_nlp.errors import ConfigError, DataError
from lstm_nlp.models import Seq2SeqModel, build_model
from lstm_nlp.tokenizer import TokenizerPair, train_or_load
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
    reporter = reporting.Reporter(run_dir / "metrics.jsonl")
    result = trainer.fit(model, task, recipe.train, run_dir, reporter, extra, resume, on_step)
    reporting.info(f"training stopped: {result.reason or 'done'}; best val "
                   f"{recipe.train.early_stopping_metric} {result.state.best_score:.4g} "
                   f"at step {result.state.best_step}")

    best = checkpoint.resolve(run_dir)
    model, tok, recipe = load_model(best)
    test = None
    try:
        test_split = load_split(recipe.data, recipe.data.test)
    except DataError as e:
        reporting.info(f"no test evaluation: {e}")
    else:
        test, hyps = _score(model, tok, test_split, _decode_options(recipe), recipe)
        reporting.print_scores(f"test ({recipe.data.test}, beam {recipe.decode.beam_size})", {
            k: test[k] for k in ("sentences", "bleu", "chrf", "ppl", "sentences_per_s")})
        test["samples"] = _samples(test_split, hyps, recipe.eval.samples)
    _write_train_report(run_dir, recipe, result, n_params, test)
    return run_dir


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


def load_model(model_path: Path) -> tuple[Seq2SeqModel, TokenizerPair, Recipe]:
    """A run folder (its best checkpoint) or a checkpoint file -> model in eval mode + tokenizers."""
    path = checkpoint.resolve(model_path)
    ckpt = checkpoint.load(path)
    recipe = checkpoint.recipe_of(ckpt, path)
    tok = checkpoint.tokenizers_of(ckpt, path)
    model = build_model(recipe.model, tok.src.vocab_size, tok.tgt.vocab_size, tok.tgt.pad_id)
    checkpoint.load_state(model, ckpt["model"], path, "model weights")
    model.eval()
    return model, tok, recipe


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
    import torch

    runtime.tune_allocator()
    model, tok, recipe = load_model(model_path)
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


def evaluate(model_path: Path, split: str | None, src: Path | None, ref: Path | None,
             beam: int | None, out_dir: Path | None, precision: str | None = None) -> dict:
    runtime.tune_allocator()
    model, tok, recipe = load_model(model_path)
    if (src is None) != (ref is None):
        raise ConfigError("--src and --ref go together")
    if src is not None and split is not None:
        raise ConfigError("give either --split or --src/--ref, not both")
    pairs = load_parallel_files(src, ref) if src is not None else \
        load_split(recipe.data, split or recipe.data.test)
    if len(pairs) == 0:
        raise DataError(f"{pairs.origin}: no sentences to evaluate")
    opts = _decode_options(recipe, beam, precision=precision)
    result, hyps = _score(model, tok, pairs, opts, recipe)
    result["checkpoint"] = str(checkpoint.resolve(model_path))
    name = Path(src).stem if src is not None else (split or recipe.data.test)
    folder = Path(out_dir) if out_dir else _report_folder(model_path)
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"eval-{name}-beam{opts.beam_size}"
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


def _score(model, tok, pairs: ParallelText, opts: DecodeOptions, recipe: Recipe
           ) -> tuple[dict, list[str]]:
    start = time.perf_counter()
    result, hyps = score(model, tok, pairs, opts, recipe)
    result["seconds"] = round(time.perf_counter() - start, 2)
    result["sentences_per_s"] = round(len(pairs) / max(result["seconds"], 1e-9), 1)
    return result, hyps


def _report_folder(model_path: Path) -> Path:
    model_path = Path(model_path)
    return model_path if model_path.is_dir() else model_path.parent


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
    summary = {"recipe": recipe.name, "task": recipe.task, "parameters": n_params,
               "steps": s.step, "epochs": s.epoch,
               "train_seconds": round(s.elapsed_s, 1), "stop_reason": result.reason,
               "best_step": s.best_step, "best_" + recipe.train.early_stopping_metric: s.best_score,
               "last_validation": result.last_validation, "test": test}
    reporting.write_json(run_dir / "report.json", summary)
    tps = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r]
    md = [f"# Run report: {recipe.name}\n",
          f"task `{recipe.task}`, {n_params:,} parameters, {s.step:,} steps in "
          f"{s.elapsed_s / 60:.1f} min of training ({result.reason or 'done'}); "
          f"median {sorted(tps)[len(tps) // 2] if tps else 0:,.0f} target tokens/s; "
          f"precision {recipe.train.precision}.\n",
          f"Best validation {recipe.train.early_stopping_metric}: {s.best_score:.4g} at step "
          f"{s.best_step} (`best.pt`); last checkpoint `last.pt`; resolved recipe "
          f"`recipe.yaml`.\n", "## Validation curve\n", reporting.curve_table_md(rows)]
    if test:
        md += [f"## Test: {test['data']}\n",
               f"beam {test['beam_size']}: **BLEU {test['bleu']:.2f}**, chrF {test['chrf']:.2f}, "
               f"perplexity {test['ppl']:.3f}, {test['sentences_per_s']:.1f} sentences/s\n",
               f"`{test['bleu_detail']}`\n\n`{test['bleu_signature']}`\n",
               "## Samples\n", _samples_md(test["samples"])]
    (run_dir / "report.md").write_text("\n".join(md), encoding="utf-8")
    reporting.info(f"report: {run_dir / 'report.md'}")


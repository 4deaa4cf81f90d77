"""The translate task's verbs: set up training, rebuild from a checkpoint, score the test split,
translate, evaluate (the functions tasks/registry.py names)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

import torch

from lstm_nlp.data.corpora import ParallelText, load_parallel_files, load_split
from lstm_nlp.data.sources import parallel_corpora
from lstm_nlp.data.textio import (check_input, read_input_lines, report_file, report_folder,
                                   split_name)
from lstm_nlp.data.token_store import TokenCache
from lstm_nlp.data.tokenizer import TokenizerPair, UnknownText, train_or_load
from lstm_nlp.errors import ConfigError, DataError
from lstm_nlp.reporting import console as reporting
from lstm_nlp.reporting import figures, markdown
from lstm_nlp.tasks.base import EvalRequest, overridden
from lstm_nlp.tasks.translate import heatmaps
from lstm_nlp.tasks.translate.config import TranslateRecipe
from lstm_nlp.tasks.translate.ensemble import Ensemble, check_members
from lstm_nlp.tasks.translate.output import Details, detailed_lines
from lstm_nlp.tasks.translate.model import Seq2SeqModel, build_model
from lstm_nlp.tasks.translate.task import (DecodeOptions, TokenizedPairs, TranslationTask, score,
                                           translate_lines)
from lstm_nlp.training import checkpoint, runtime
from lstm_nlp.training.devices import device_of


def setup(recipe: TranslateRecipe, run_dir: Path, resume: bool):
    """The training pairs come from token stores (data/token_store.py): tokenized once, in
    parallel, memory-mapped; the validation pairs are read and tokenized here (BLEU needs
    their text)."""
    d = recipe.data
    src_text, tgt_text = parallel_corpora(d, d.train)
    valid_split = load_split(d, d.valid)
    cache = TokenCache.for_run(run_dir)
    tok = train_or_load(run_dir / "tokenizer", recipe.tokenizer, src_text, tgt_text,
                        recipe.seed, cache.train_tokenizer)
    train = TokenizedPairs(cache.stores(tok.src, None, {"translate-src": src_text})
                           ["translate-src"],
                           cache.stores(tok.tgt, None, {"translate-tgt": tgt_text})
                           ["translate-tgt"], f"{src_text.origin} + {tgt_text.origin}")
    if train.src.n_lines != train.tgt.n_lines:
        raise DataError(f"misaligned files: {src_text.origin} has {train.src.n_lines} lines, "
                        f"{tgt_text.origin} has {train.tgt.n_lines}")
    reporting.info(f"data: {train.src.n_lines:,} training pairs ({train.origin}), "
                   f"{len(valid_split):,} validation pairs")
    task = TranslationTask(recipe, tok, train, valid_split)
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


def rebuild(ckpt: dict, recipe: TranslateRecipe, path: Path
            ) -> tuple[Seq2SeqModel, TokenizerPair]:
    tok = checkpoint.tokenizers_of(ckpt, path)
    return build_model(recipe.model, tok.src.vocab_size, tok.tgt.vocab_size, tok.tgt.pad_id), tok


def test_report(model: Seq2SeqModel, tok: TokenizerPair, recipe: TranslateRecipe
                ) -> dict | None:
    test_split = load_split(recipe.data, recipe.data.test)
    test, hyps = _score(model, tok, test_split, decode_options(recipe, device_of(model)), recipe)
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


def decode_options(recipe: TranslateRecipe, device: torch.device, beam: int | None = None,
                   length_penalty: float | None = None, max_len_ratio: float | None = None,
                   batch_size: int | None = None, precision: str | None = None
                   ) -> DecodeOptions:
    """Command-line values where given, else the recipe's (precision: the training precision,
    as far as `device` has it)."""
    d = recipe.decode
    return overridden(DecodeOptions(d.beam_size, d.length_penalty, d.max_len_ratio,
                                    d.batch_size, recipe.train.precision),
                      beam_size=beam, length_penalty=length_penalty,
                      max_len_ratio=max_len_ratio, batch_size=batch_size,
                      precision=runtime.inference_precision(precision, recipe.train.precision,
                                                            device))


def load_translator(paths: list[Path], verb: str, device: torch.device,
                    first: tuple[Seq2SeqModel, TokenizerPair, TranslateRecipe] | None = None
                    ) -> tuple[Seq2SeqModel | Ensemble, TokenizerPair, TranslateRecipe]:
    """One translation model, or several decoded as an Ensemble (with the first one's
    tokenizers and recipe; `first`: paths[0], loaded already)."""
    loaded = [first] if first else []
    loaded += [checkpoint.load_for(p, "translate", verb, device) for p in paths[len(loaded):]]
    if len(loaded) == 1:
        return loaded[0]
    check_members(paths, [tok for _, tok, _ in loaded])
    return Ensemble([model for model, _, _ in loaded]), loaded[0][1], loaded[0][2]


def translate(model_paths: list[Path], input_path: Path | None, output: TextIO, stdin: TextIO,
              beam: int | None = None, length_penalty: float | None = None,
              max_len_ratio: float | None = None, batch_size: int | None = None,
              precision: str | None = None, device: str | None = None,
              details: Details | None = None, backend: str = "torch") -> None:
    """Translations of stdin's (or the file's) lines, one per line; `details` asks for n-best
    lists, scores, alignments or attention instead (output.py). backend "onnxruntime": the
    model is an ONNX export folder, decoded by onnxruntime through the same search code
    (onnx_backend.py)."""
    check_input(input_path)  # refused before the model loads, as is a device not here
    details = details or Details()
    if details.wanted and beam is not None:
        details.check(beam)  # an impossible request is refused before the model loads
    if backend == "onnxruntime":
        from lstm_nlp.tasks.translate import onnx_backend

        if len(model_paths) > 1:
            raise ConfigError("--backend onnxruntime takes one exported model (-m DIR); "
                              "ensembles decode with the torch backend")
        where = onnx_backend.prepare(device, precision)
        model, tok, recipe = onnx_backend.load(model_paths[0])
        precision = onnx_backend.PRECISION
    else:
        where = runtime.prepare_inference(device, precision)
        model, tok, recipe = load_translator(model_paths, "translate", where)
    opts = decode_options(recipe, where, beam, length_penalty, max_len_ratio, batch_size,
                          precision)
    details.check(opts.beam_size)
    n, start, unknown = 0, time.perf_counter(), UnknownText(tok.src)
    with torch.inference_mode():
        for lines in read_input_lines(stdin, input_path, max(opts.batch_size * 8, 1024)):
            out = detailed_lines(model, tok, lines, opts, details, first=n) if details.wanted \
                else (hyp + "\n" for hyp in translate_lines(model, tok, lines, opts))
            for text in out:  # an output file (atomic) has write, not writelines
                output.write(text)
            output.flush()
            unknown.check(lines, first_line=n + 1)
            n += len(lines)
    dt = time.perf_counter() - start
    models = f", {len(model_paths)} models" if len(model_paths) > 1 else ""
    reporting.info(f"translated {reporting.counted(n, 'line')} in {dt:.1f}s "
                   f"({n / max(dt, 1e-9):,.1f} sentences/s, beam {opts.beam_size}, "
                   f"{opts.precision} on {where}, {backend}{models})")
    if unknown.lines:
        reporting.warning(unknown.summary(n))


def evaluate(request: EvalRequest, loaded: tuple[Seq2SeqModel, TokenizerPair, TranslateRecipe]
             ) -> dict:
    """BLEU and chrF (sacrebleu) and perplexity of a split or of --src/--ref files; with
    several models, of their ensemble (the data and decoding options come from the first one's
    recipe)."""
    model_paths = request.models
    model, tok, recipe = load_translator(model_paths, "eval", device_of(loaded[0]), first=loaded)
    request.refuse(("input",), "is for language models and classifiers; score a translation "
                   "model with --src and --ref, or --split")
    split, src, ref = request.split, request.src, request.ref
    if (src is None) != (ref is None):
        raise ConfigError("--src and --ref go together")
    if src is not None and split is not None:
        raise ConfigError("give either --split or --src/--ref, not both")
    pairs = load_parallel_files(src, ref) if src is not None else \
        load_split(recipe.data, split_name(recipe, split or "test"))
    if len(pairs) == 0:
        raise DataError(f"{pairs.origin}: no sentences to evaluate")
    opts = decode_options(recipe, device_of(model), request.beam, batch_size=request.batch_size,
                          precision=request.precision)
    if recipe.eval.samples:
        figures.warm_up()  # the heatmaps' matplotlib loads while the split is translated
    result, hyps = _score(model, tok, pairs, opts, recipe)
    result["checkpoint"] = str(checkpoint.resolve(model_paths[0]))
    name = Path(src).name if src is not None else split_name(recipe, split or "test")
    stem = f"eval-{name}-beam{opts.beam_size}"
    if len(model_paths) > 1:
        result["ensemble"] = [str(checkpoint.resolve(p)) for p in model_paths]
        stem += f"-ensemble{len(model_paths)}"
    stem = report_folder(model_paths[0], request.out_dir) / stem
    report_file(stem, ".hyp").write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    reporting.write_json(report_file(stem, ".json"), result)
    samples = _samples(pairs, hyps, recipe.eval.samples)
    report_file(stem, ".md").write_text(_eval_markdown(result, samples)
                                        + heatmaps.section(model, tok, samples, stem),
                                        encoding="utf-8")
    reporting.print_scores(f"{name} (beam {opts.beam_size})", {
        k: result[k] for k in ("sentences", "bleu", "chrf", "ppl", "sentences_per_s")})
    reporting.info(f"BLEU signature: {result['bleu_signature']}")
    reporting.info(f"report: {report_file(stem, '.md')}")
    return result


def _score(model, tok, pairs: ParallelText, opts: DecodeOptions, recipe: TranslateRecipe
           ) -> tuple[dict, list[str]]:
    start = time.perf_counter()
    result, hyps = score(model, tok, pairs, opts, recipe)
    result["seconds"] = round(time.perf_counter() - start, 2)
    result["sentences_per_s"] = round(len(pairs) / max(result["seconds"], 1e-9), 1)
    return result, hyps


def _samples(pairs: ParallelText, hyps: list[str], n: int) -> list[dict[str, str]]:
    return [{"src": pairs.src[i], "ref": pairs.tgt[i], "hyp": hyps[i]}
            for i in range(min(n, len(hyps)))]


def _samples_md(samples: list[dict[str, str]]) -> str:
    out = []
    for s in samples:
        out.append(f"- **src** {s['src']}\n  **ref** {s['ref']}\n  **hyp** {s['hyp']}")
    return "\n".join(out) + "\n" if out else "_none_\n"


def _eval_markdown(result: dict, samples: list[dict[str, str]]) -> str:
    shown = f"checkpoint `{result.get('checkpoint', '')}`"
    if "ensemble" in result:
        shown = "ensemble (mean next-token probabilities) of " + ", ".join(
            f"`{p}`" for p in result["ensemble"])
    return (f"# Evaluation: {result['data']}\n\n"
            f"{shown}, {result['sentences']} sentences, "
            f"beam {result['beam_size']}, length penalty {result['length_penalty']}, "
            f"{result['precision']}\n\n"
            + markdown.metric_table({
                "BLEU": f"{result['bleu']:.2f}", "chrF": f"{result['chrf']:.2f}",
                "perplexity": f"{result['ppl']:.3f}",
                "token accuracy": f"{result['token_accuracy']:.2%}",
                "sentences/s": f"{result['sentences_per_s']:.1f}"}) + "\n"
            f"BLEU: `{result['bleu_detail']}`\n\nsacrebleu signatures: `{result['bleu_signature']}`"
            f", `{result['chrf_signature']}`\n\n## Samples\n\n{_samples_md(samples)}")

"""The classify task's verbs: set up training (from scratch or from a language model), rebuild
from a checkpoint, score the test split, classify lines, evaluate with accuracy, macro-F1 and a
confusion matrix (the functions tasks/registry.py names)."""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path
from typing import TextIO

import torch

from lstm_nlp import metrics
from lstm_nlp.data.corpora import (LabeledText, load_labeled_file, load_labeled_split,
                                   split_off_validation)
from lstm_nlp.data.sources import Corpus, LineList
from lstm_nlp.data.textio import (HELD_OUT, check_input, read_input_lines, report_file,
                                   report_folder, split_name)
from lstm_nlp.data.token_store import TokenCache
from lstm_nlp.data.tokenizer import Tokenizer, tokenizer_state
from lstm_nlp.errors import CheckpointError, ConfigError, DataError
from lstm_nlp.reporting import console as reporting
from lstm_nlp.reporting import figures, markdown
from lstm_nlp.tasks.base import EvalRequest
from lstm_nlp.tasks.classify import explain
from lstm_nlp.tasks.classify.config import ClassifyRecipe
from lstm_nlp.tasks.classify.model import Classifier, build_classifier
from lstm_nlp.tasks.classify.task import (ClassificationTask, class_names, encode_texts, label_ids,
                                          predict)
from lstm_nlp.tasks.lm.transfer import ENCODER, load_weights, tokenizer_for_run
from lstm_nlp.training import checkpoint, runtime
from lstm_nlp.training.devices import device_of


def _splits(recipe: ClassifyRecipe) -> tuple[LabeledText, LabeledText]:
    """Training and validation rows; without a validation split, a seeded random
    `valid_fraction` of the training rows is held out."""
    d = recipe.data
    train = load_labeled_split(d, d.train)
    if d.valid:
        valid = load_labeled_split(d, d.valid)
    else:
        train, valid = split_off_validation(train, d.valid_fraction, recipe.seed)
    if d.max_train_examples and d.max_train_examples < len(train):  # a seeded random subset
        train = train.subset(sorted(random.Random(recipe.seed + 1).sample(
            range(len(train)), d.max_train_examples)))
    return train, valid


def setup(recipe: ClassifyRecipe, run_dir: Path, resume: bool):
    train, valid = _splits(recipe)
    classes = class_names(train.labels)
    if len(classes) < 2:
        raise DataError(f"{train.origin}: one label only ({classes[0]!r}); a classifier needs "
                        "at least two")
    texts = Corpus([LineList(train.texts, train.origin, None)], train.origin)
    cache = TokenCache.for_run(run_dir)
    tok, pretrained = tokenizer_for_run(run_dir / "tokenizer" / "classify.model", recipe.model,
                                        recipe.tokenizer, texts, recipe.seed, resume,
                                        cache.train_tokenizer)
    store = cache.stores(tok, None, {"classify-train": texts})["classify-train"]
    task = ClassificationTask(recipe, tok, train, valid, classes, store)
    counts = {c: train.labels.count(c) for c in classes}
    reporting.info(f"data: {len(train):,} training texts ({train.origin}), {len(valid):,} "
                   f"validation texts; classes: "
                   + ", ".join(f"{c} ({n:,})" for c, n in counts.items()))
    runtime.set_seed(recipe.seed)
    model = build_classifier(recipe.model, tok.vocab_size, classes)
    if pretrained is not None:  # ULMFiT: embedding and LSTM layers from the language model
        n = load_weights(model, pretrained, ENCODER)
        reporting.info(f"encoder ({n} tensors) from the language model {pretrained.path}")
    n_params = sum(p.numel() for p in model.parameters())
    lengths = sorted(task.lengths)
    reporting.info(f"model: {n_params:,} parameters; {tok.kind} vocabulary {tok.vocab_size:,}; "
                   f"median text {lengths[len(lengths) // 2]:,} tokens; run folder {run_dir}")
    extra = {"task": recipe.task, "recipe": recipe.to_dict(), "classes": classes,
             "tokenizer": tokenizer_state(tok)}
    return task, model, extra


Member = tuple[Classifier, Tokenizer, ClassifyRecipe]  # one model of an ensemble


def load_members(paths: list[Path], device: torch.device, first: Member | None = None
                 ) -> list[Member]:
    """Classifiers to average (an ensemble; `first`: paths[0], loaded already), on `device`;
    they must share their classes, in order."""
    members = [first] if first else []
    members += [checkpoint.load_for(p, "classify", "classify", device)
                for p in paths[len(members):]]
    classes = members[0][0].classes
    for path, (model, _, _) in zip(paths[1:], members[1:]):
        if model.classes != classes:
            raise ConfigError(f"{path}: classes {', '.join(model.classes)} differ from those of "
                              f"{paths[0]} ({', '.join(classes)}); an ensemble needs the same "
                              "classes")
    return members


def ensemble_probs(members: list[Member], texts: list[str], batch_size: int, precision: str
                   ) -> torch.Tensor:
    """The members' mean class probabilities (N, C); each reads the texts with its own
    tokenizer and truncation."""
    total = None
    for model, tok, recipe in members:
        m = recipe.model
        with runtime.autocast(precision, device_of(model)):
            probs = predict(model, encode_texts(tok, texts, m.max_tokens, m.long_text),
                            batch_size, tok.pad_id)
        total = probs if total is None else total + probs
    return total / len(members)


def _score(members: list[Member], data: LabeledText, batch_size: int, precision: str
           ) -> tuple[dict, torch.Tensor]:
    classes = members[0][0].classes
    gold = label_ids(data, classes)
    start = time.perf_counter()
    probs = ensemble_probs(members, data.texts, batch_size, precision)
    seconds = time.perf_counter() - start
    scores = metrics.classification_scores(gold, probs.argmax(1).tolist(), classes)
    result = {"data": data.origin, "texts": len(data), "classes": classes,
              "accuracy": round(scores["accuracy"], 4), "macro_f1": round(scores["macro_f1"], 4),
              "per_class": scores["per_class"], "confusion": scores["confusion"],
              "precision": precision, "texts_per_s": round(len(data) / max(seconds, 1e-9), 1)}
    _print_scores(result)
    return result, probs


def _print_scores(r: dict) -> None:
    reporting.print_scores("classification", {
        "texts": r["texts"], "accuracy": f"{r['accuracy']:.2%}",
        "macro-F1": f"{r['macro_f1']:.2%}", "texts/s": r["texts_per_s"]})
    reporting.print_confusion(r["classes"], r["confusion"], r["per_class"])


def _scores_md(r: dict) -> str:
    classes = r["classes"]
    lines = [f"## Classification: {r['data']}\n",
             f"**accuracy {r['accuracy']:.2%}**, macro-F1 {r['macro_f1']:.2%}, {r['texts']:,} "
             f"texts, {r['texts_per_s']:,.0f} texts/s ({r['precision']})\n",
             markdown.table(["class", "precision", "recall", "F1", "support"], (
                 [name, *(f"{r['per_class'][name][k]:.2%}" for k in ("precision", "recall", "f1")),
                  f"{r['per_class'][name]['support']:,}"] for name in classes)),
             "Confusion matrix (rows: true class, columns: predicted class):\n",
             markdown.table(["true \\ predicted", *classes],
                            ([name, *(f"{v:,}" for v in row)]
                             for name, row in zip(classes, r["confusion"])))]
    return "\n".join(lines)


def _errors_md(data: LabeledText, probs: torch.Tensor, classes: list[str], n: int) -> str:
    wrong = [i for i in range(len(data)) if classes[int(probs[i].argmax())] != data.labels[i]]
    if not wrong or not n:
        return "_none_\n"
    out = []
    for i in wrong[:n]:
        p = int(probs[i].argmax())
        text = data.texts[i] if len(data.texts[i]) <= 300 else data.texts[i][:300] + " ..."
        out.append(f"- true **{data.labels[i]}**, predicted **{classes[p]}** "
                   f"({float(probs[i, p]):.2f}): {text}")
    return "\n".join(out) + "\n"


def rebuild(ckpt: dict, recipe: ClassifyRecipe, path: Path) -> tuple[Classifier, Tokenizer]:
    tok = checkpoint.tokenizer_of(ckpt, path)
    classes = ckpt.get("classes")
    if not isinstance(classes, list) or len(classes) < 2:
        raise CheckpointError(f"{path}: class names missing from checkpoint")
    return build_classifier(recipe.model, tok.vocab_size, [str(c) for c in classes]), tok


def test_report(model: Classifier, tok: Tokenizer, recipe: ClassifyRecipe) -> dict | None:
    data = load_labeled_split(recipe.data, recipe.data.test)
    result, probs = _score([(model, tok, recipe)], data, recipe.eval.batch_size,
                           recipe.train.precision)
    result["markdown"] = [_scores_md(result), "## Misclassified examples\n",
                          _errors_md(data, probs, model.classes, recipe.eval.samples)]
    return result


def evaluate(request: EvalRequest, loaded: Member) -> dict:
    """Accuracy, macro-F1, per-class scores and the confusion matrix of a split or a file; with
    several models, of their averaged probabilities (the data comes from the first one's
    recipe)."""
    request.refuse(("src", "ref", "beam"), "are for translation models")
    model_paths = request.models
    members = load_members(model_paths, device_of(loaded[0]), first=loaded)
    split, input_path, batch_size = request.split, request.input, request.batch_size
    precision, out_dir = request.precision, request.out_dir
    if split is not None and input_path is not None:
        raise ConfigError("give either --split or --input, not both")
    recipe = members[0][2]
    if input_path is not None:  # the report is named after the file: eval-my.tsv.md
        data, name = load_labeled_file(input_path, recipe.data), Path(input_path).name
    elif (lines := request.piped_lines()) is not None:
        data, name = _labeled_stdin(lines, recipe), "stdin"
    else:
        name = split_name(recipe, split or "test")
        data = _splits(recipe)[1] if name == HELD_OUT else load_labeled_split(recipe.data, name)
    precision = runtime.inference_precision(precision, recipe.train.precision,
                                            device_of(members[0][0]))
    figures.warm_up()  # the confusion matrix's matplotlib loads while the texts are scored
    result, probs = _score(members, data, batch_size or recipe.eval.batch_size, precision)
    result["checkpoint"] = str(checkpoint.resolve(model_paths[0]))
    stem = f"eval-{name}"
    shown = f"checkpoint `{result['checkpoint']}`"
    if len(members) > 1:
        result["ensemble"] = [str(checkpoint.resolve(p)) for p in model_paths]
        stem += f"-ensemble{len(members)}"
        shown = "ensemble (mean probabilities) of " + ", ".join(f"`{p}`"
                                                               for p in result["ensemble"])
    stem = report_folder(model_paths[0], out_dir) / stem
    reporting.write_json(report_file(stem, ".json"), result)
    figure = figures.embedded(report_file(stem, "-confusion.png"), "confusion matrix",
                              lambda: figures.confusion(result["classes"], result["confusion"],
                                                        f"{data.origin}: confusion matrix"))
    report_file(stem, ".md").write_text(
        f"# Evaluation\n\n{shown}\n\n{_scores_md(result)}\n{figure}\n"
        f"## Misclassified examples\n\n"
        f"{_errors_md(data, probs, result['classes'], recipe.eval.samples)}", encoding="utf-8")
    reporting.info(f"report: {report_file(stem, '.md')}")
    return result


def _labeled_stdin(lines: list[str], recipe: ClassifyRecipe) -> LabeledText:
    """Labeled texts piped on stdin, in the recipe's format and columns (TSV with a header row
    when the recipe reads parquet, a saved dataset or the hub)."""
    fmt = recipe.data.format if recipe.data.format in ("tsv", "csv", "jsonl") else "tsv"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"stdin.{fmt}"
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        try:
            return load_labeled_file(path, recipe.data)
        except DataError as e:  # name stdin, not the temporary file
            raise DataError(str(e).replace(str(path), f"stdin ({fmt})")
                            .replace(folder, "stdin")) from None


def _labeled_line(classes: list[str], probs: list[float] | None, fmt: str,
                  extra: dict | None = None) -> str:
    """One output line: `label<TAB>probability`, or JSON with every class's probability (and
    the fields of `extra`: an explanation); an empty input line (probs None) gives an empty
    line, or JSON nulls."""
    extra = extra or {}
    if probs is None:
        return json.dumps({"label": None, "probability": None, "probs": None, **extra}) + "\n" \
            if fmt == "jsonl" else "\n"
    best = max(range(len(probs)), key=probs.__getitem__)
    if fmt == "jsonl":
        return json.dumps({"label": classes[best], "probability": probs[best],
                           "probs": dict(zip(classes, probs)), **extra}) + "\n"
    return f"{classes[best]}\t{probs[best]:.4f}\n"


def _explanations(member: Member, lines: list[str], texts: list[str], batch_size: int
                  ) -> list[dict]:
    """Per input line, its explanation's fields (nulls for an empty line)."""
    found = iter(explain.explain(member[0], member[1], texts, batch_size) if texts else [])
    empty = {"tokens": None, "weights": None, "explanation": None}
    return [next(found) if line.strip() else empty for line in lines]


def classify(model_paths: list[Path], input_path: Path | None, output: TextIO, stdin: TextIO,
             fmt: str = "tsv", batch_size: int | None = None, precision: str | None = None,
             device: str | None = None, explaining: bool = False) -> None:
    """One line out per line in: `label<TAB>probability` or JSON with every class's
    probability; several models are averaged (an ensemble). `explaining`: per-token weights
    in the JSON (explain.py), for one model."""
    if explaining and fmt != "jsonl":
        raise ConfigError("--explain adds per-token weights to JSON lines: give --format jsonl")
    if explaining and len(model_paths) > 1:
        raise ConfigError("--explain explains one model's predictions; give one --model")
    check_input(input_path)  # refused before the model loads, as is a device not here
    where = runtime.prepare_inference(device, precision)
    members = load_members(model_paths, where)
    classes, recipe = members[0][0].classes, members[0][2]
    batch_size = batch_size or recipe.eval.batch_size
    precision = runtime.inference_precision(precision, recipe.train.precision, where)
    n, empty, start = 0, 0, time.perf_counter()
    for lines in read_input_lines(stdin, input_path, max(batch_size * 16, 1024)):
        texts = [line for line in lines if line.strip()]  # an empty line has nothing to classify
        rows = iter(ensemble_probs(members, texts, batch_size, precision).tolist() if texts
                    else [])
        notes = _explanations(members[0], lines, texts, batch_size) if explaining \
            else [None] * len(lines)
        for line, note in zip(lines, notes):
            output.write(_labeled_line(classes, next(rows) if line.strip() else None, fmt, note))
        output.flush()
        n, empty = n + len(texts), empty + len(lines) - len(texts)
    dt = time.perf_counter() - start
    models = f", {len(members)} models" if len(members) > 1 else ""
    empties = f" ({reporting.counted(empty, 'empty line')} left empty)" if empty else ""
    reporting.info(f"classified {reporting.counted(n, 'text')}{empties} in {dt:.1f}s "
                   f"({n / max(dt, 1e-9):,.1f} texts/s, {precision} on {where}{models})")

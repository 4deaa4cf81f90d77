"""Shared fixtures: a tiny generated corpus, tiny recipes, one tiny trained run per session."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "data"))

import make_demo  # noqa: E402  (the project's demo-corpus generator)


def write_corpus(folder: Path, n_train: int = 400, n_eval: int = 40, seed: int = 3) -> Path:
    """A small en->de corpus from the demo grammar, as parallel files train/valid/test.{en,de}."""
    rng = random.Random(seed)
    pairs = [make_demo.sentence(rng) for _ in range(n_train + 2 * n_eval)]
    splits = {"train": pairs[:n_train], "valid": pairs[n_train:n_train + n_eval],
              "test": pairs[n_train + n_eval:]}
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        (folder / f"{name}.en").write_text("".join(r[0] + "\n" for r in rows), encoding="utf-8")
        (folder / f"{name}.de").write_text("".join(r[1] + "\n" for r in rows), encoding="utf-8")
    return folder


def tiny_recipe(data_dir: Path, **sections) -> dict:
    """A recipe dict for a model that trains in seconds; `sections` update its sections."""
    recipe = {
        "task": "translate", "seed": 1,
        "data": {"dir": str(data_dir), "src_lang": "en", "tgt_lang": "de"},
        "tokenizer": {"vocab_size": 120},
        "model": {"emb_size": 32, "hidden_size": 64, "dropout": 0.1},
        "train": {"lr": 0.01, "batch_tokens": 600, "max_steps": 30, "valid_every": 10,
                  "log_every": 5, "label_smoothing": 0.0},
        "decode": {"beam_size": 3, "batch_size": 16},
    }
    return with_sections(recipe, sections)


def with_sections(recipe: dict, sections: dict) -> dict:
    """`recipe` with each of `sections` merged into the section of that name."""
    for name, values in sections.items():
        recipe.setdefault(name, {}).update(values)
    return recipe


def write_recipe(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, corpus) -> Path:
    """One tiny translate run (train -> best.pt), shared by the inference tests."""
    from lstm_nlp.training.run import train as train_run

    folder = tmp_path_factory.mktemp("run")
    recipe = write_recipe(folder / "tiny.yaml", tiny_recipe(corpus))
    return train_run(recipe, [], run_dir=folder / "run")


def write_text_corpus(folder: Path, n_train: int = 300, n_eval: int = 30, seed: int = 5) -> Path:
    """Running English text from the demo grammar: train/valid/test.txt, one sentence a line."""
    rng = random.Random(seed)
    lines = [make_demo.sentence(rng)[0] for _ in range(n_train + 2 * n_eval)]
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", lines[:n_train]), ("valid", lines[n_train:n_train + n_eval]),
                       ("test", lines[n_train + n_eval:])):
        (folder / f"{name}.txt").write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return folder


def tiny_lm_recipe(data_dir: Path, **sections) -> dict:
    recipe = {
        "task": "lm", "seed": 1,
        "data": {"dir": str(data_dir)},
        "tokenizer": {"type": "word", "vocab_size": 0},
        "model": {"emb_size": 24, "hidden_size": 32, "layers": 2, "dropout": 0.2,
                  "dropout_input": 0.1, "dropout_hidden": 0.1, "dropout_embedding": 0.1,
                  "weight_drop": 0.2},
        "train": {"lr": 0.01, "batch_size": 8, "bptt": 12, "max_epochs": 3,
                  "ar_alpha": 1.0, "tar_beta": 1.0, "log_every": 5},
        "generate": {"max_tokens": 8},
        "eval": {"samples": 2, "bptt": 16},
    }
    return with_sections(recipe, sections)


@pytest.fixture(scope="session")
def text_corpus(tmp_path_factory) -> Path:
    return write_text_corpus(tmp_path_factory.mktemp("text"))


@pytest.fixture(scope="session")
def trained_lm(tmp_path_factory, text_corpus) -> Path:
    """One tiny language-model run, shared by the inference tests."""
    from lstm_nlp.training.run import train as train_run

    folder = tmp_path_factory.mktemp("lm")
    recipe = write_recipe(folder / "tiny-lm.yaml", tiny_lm_recipe(text_corpus))
    return train_run(recipe, [], run_dir=folder / "run")

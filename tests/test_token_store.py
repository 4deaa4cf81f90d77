"""The token store (data/token_store.py, data/sources.py): a corpus tokenized once, in parallel,
into a memory-mapped file that a second start and --resume reuse; the same batches as text
tokenized in memory, for every task; damaged stores, unwritable caches and interrupted writes.

Pieces are made tiny (a few kB) so that even data/demo is read by several worker processes."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from lstm_nlp.config import recipe_from_dict
from lstm_nlp.config.sections import TokenizerConfig
from lstm_nlp.data import sources, token_store
from lstm_nlp.data.batching import length_batches, seq2seq_batch, token_batches
from lstm_nlp.data.corpora import (ParallelText, TextLines, load_labeled_split, read_lines,
                                   split_off_validation)
from lstm_nlp.data.sources import Corpus, HeldOut, LineList, TextFile
from lstm_nlp.data.token_store import TokenCache, TokenStore, id_dtype
from lstm_nlp.data.tokenizer import (WORD_SPECIALS, WordTokenizer, train_tokenizer)
from lstm_nlp.errors import DataError, FileSystemError
from lstm_nlp.tasks.classify.task import ClassificationTask, collate, encode_texts
from lstm_nlp.tasks.lm.task import LanguageModelTask, token_stream, window
from lstm_nlp.tasks.translate.task import TokenizedPairs, TranslationTask
from lstm_nlp.training import checkpoint
from lstm_nlp.training.run import train as train_run

from conftest import tiny_lm_recipe, write_recipe
from test_faults import FillingFile, one_error_line, read_only

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo"


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch):
    monkeypatch.setattr(sources, "PIECE_BYTES", 4000)
    monkeypatch.setattr(sources, "PIECE_LINES", 300)
    monkeypatch.delenv(token_store.CACHE_ENV, raising=False)


def word_tok(lines, vocab_size=0):
    return WordTokenizer.train(lines, vocab_size, 1)


def one_store(cache, tok, corpus, eos=None, name="x"):
    return cache.stores(tok, eos, {name: corpus})[name]


def said(capsys) -> str:
    """What went to stderr, on one line (the console wraps long lines)."""
    return " ".join(capsys.readouterr().err.split())


def no_tokenizing(monkeypatch):
    """From here on, tokenizing or training a tokenizer fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("tokenized again")
    monkeypatch.setattr(token_store, "map_pieces", refuse)
    monkeypatch.setattr(token_store.tokenizers, "train_tokenizer", refuse)


# -- the store ----------------------------------------------------------------------------------

def test_store_round_trip_equals_direct_tokenization(tmp_path):
    """CRLF, empty lines, a last line without newline, multi-byte characters across piece
    boundaries: the rows are the tokenizer's, the LM layout is token_stream, word and
    sentencepiece alike."""
    lines = read_lines(DEMO / "train.en")[:2000]
    lines[5], lines[6], lines[7] = "", "  ", "Grüße, ünïcödé — ok"
    path = tmp_path / "text.txt"
    path.write_bytes(("\r\n".join(lines)).encode("utf-8"))  # CRLF, no final newline
    assert read_lines(path) == lines
    corpus = Corpus([TextFile(path, "no text")], str(path))
    assert len(corpus.scan()[0].pieces) > 10
    cache = TokenCache(tmp_path / "cache", own=True)
    for tok in (word_tok(lines), train_tokenizer(lines, TokenizerConfig(vocab_size=150), 1)):
        plain = one_store(cache, tok, corpus, name=f"plain-{tok.kind}")
        assert plain.rows() == tok.encode(lines)
        stream = one_store(cache, tok, corpus, tok.eos_id, name=f"lm-{tok.kind}")
        assert torch.equal(stream.stream().long(), token_stream(tok, lines))
        assert stream.rows() == tok.encode(lines) and stream.n_lines == len(lines)


def test_ids_are_uint16_when_the_vocabulary_fits_else_uint32(tmp_path):
    assert id_dtype(65_536) == np.uint16 and id_dtype(65_537) == np.uint32
    words = [f"w{i}" for i in range(70_000)]
    path = tmp_path / "big.txt"
    path.write_text("w1 w69999 w65536\nw3\n")
    cache = TokenCache(tmp_path / "cache", own=True)
    big = WordTokenizer(list(WORD_SPECIALS) + words)
    small = WordTokenizer(list(WORD_SPECIALS) + words[:1000])
    wide = one_store(cache, big, Corpus([TextFile(path, "")], "big"), name="big")
    narrow = one_store(cache, small, Corpus([TextFile(path, "")], "small"), name="small")
    assert wide.ids.dtype == np.uint32 and narrow.ids.dtype == np.uint16
    assert wide.rows() == [[5, 70_003, 65_540], [7]]
    assert narrow.rows() == [[5, 1, 1], [7]]
    for store in (wide, narrow):  # the header says so: a reopened file maps the same ids
        assert Path(store.path).stat().st_size == (token_store.HEADER_SIZE + 8 * 3
                                                   + -(-4 * store.ids.itemsize // 8) * 8)


def test_second_start_reuses_the_store_and_a_changed_file_or_tokenizer_does_not(
        tmp_path, monkeypatch, capsys):
    path = tmp_path / "train.txt"
    path.write_text("".join(line + "\n" for line in read_lines(DEMO / "train.en")[:500]))
    tok = word_tok(read_lines(path))
    cache = TokenCache(tmp_path / "cache", own=True)
    first = one_store(cache, tok, Corpus([TextFile(path, "")], "a"), tok.eos_id)
    stamp = os.stat(first.path).st_mtime_ns
    with monkeypatch.context() as patched:
        no_tokenizing(patched)
        again = one_store(cache, tok, Corpus([TextFile(path, "")], "a"), tok.eos_id)
    assert again.path == first.path and os.stat(again.path).st_mtime_ns == stamp
    assert f"token store: reused {first.path} (500 lines" in said(capsys)

    other_tok = word_tok(read_lines(path), vocab_size=20)
    by_tokenizer = one_store(cache, other_tok, Corpus([TextFile(path, "")], "a"), tok.eos_id)
    assert by_tokenizer.path != first.path and by_tokenizer.rows()[0] == \
        other_tok.encode(read_lines(path)[:1])[0]
    with open(path, "a") as f:
        f.write("one more line\n")
    by_data = one_store(cache, tok, Corpus([TextFile(path, "")], "a"), tok.eos_id)
    assert by_data.n_lines == 501
    stores = sorted(p.name for p in (tmp_path / "cache").glob("*.tokens"))
    assert stores == [by_data.path.name]  # the run's own cache keeps one store of a name


def test_held_out_lines_go_to_their_own_store_in_one_pass(tmp_path):
    lines = read_lines(DEMO / "train.en")[:3000]
    path = tmp_path / "t.txt"
    path.write_text("".join(line + "\n" for line in lines))
    sources_ = [TextFile(path, "")]
    kept = Corpus(sources_, "t", HeldOut(0.1, 5, held=False))
    held = Corpus(sources_, "t (held-out)", HeldOut(0.1, 5, held=True))
    tok = word_tok(lines)
    stores = TokenCache(tmp_path / "c", True).stores(tok, tok.eos_id, {"k": kept, "h": held})
    train, valid = split_off_validation(TextLines(lines, "t"), 0.1, 5)
    assert list(kept) == train.lines and list(held) == valid.lines
    assert torch.equal(stores["k"].stream().long(), token_stream(tok, train.lines))
    assert torch.equal(stores["h"].stream().long(), token_stream(tok, valid.lines))


def test_tokenizers_trained_from_a_streamed_corpus_equal_those_from_a_list(tmp_path, capsys):
    lines = read_lines(DEMO / "train.de")
    corpus = Corpus([TextFile(DEMO / "train.de", "")], "de")
    cache = TokenCache(tmp_path / "c", own=True)
    for cfg in (TokenizerConfig(type="word", vocab_size=0, lowercase=True),
                TokenizerConfig(type="bpe", vocab_size=300, max_sentences=1000)):
        assert cache.train_tokenizer(corpus, cfg, 3).proto == \
            train_tokenizer(lines, cfg, 3).proto
        assert cache.train_tokenizer(corpus, cfg, 3).proto == \
            train_tokenizer(lines, cfg, 3).proto  # the second time from the cache
    assert said(capsys).count("tokenizer: reused") == 2


def test_a_bad_byte_is_named_by_its_line_in_any_piece(tmp_path):
    path = tmp_path / "bad.txt"
    good = "".join(f"line {i} with some words\n" for i in range(2000))
    path.write_bytes(good.encode() + b"bad \xc3\x28 here\n" + b"fine\n")
    with pytest.raises(DataError, match=r"bad.txt: line 2001, byte 5: not valid UTF-8"):
        Corpus([TextFile(path, "")], "bad").scan()


# -- the same batches as text tokenized in memory ----------------------------------------------

def test_language_model_windows_equal_the_in_memory_stream(tmp_path):
    lines = read_lines(DEMO / "train.en")
    tok = word_tok(lines)
    store = one_store(TokenCache(tmp_path, True), tok, Corpus([TextFile(DEMO / "train.en", "")],
                                                             "en"), tok.eos_id)
    recipe = recipe_from_dict({"task": "lm", "seed": 3, "train": {
        "batch_size": 7, "bptt": 9, "variable_bptt": True, "max_epochs": 1}})
    task = LanguageModelTask(recipe, store.stream(), store.stream()[:100])
    before = token_stream(tok, lines)  # the stream as it was built in memory, and batchified
    steps = before.numel() // 7
    data = before[: steps * 7].view(7, steps).t().contiguous()
    for epoch in (0, 1):
        batches = task.epoch_batches(epoch)
        assert len(batches) > 50
        for start, length, part in batches:  # one part: one process, no accumulation
            assert part == 0
            w = task.collate((start, length, part))
            assert w.inputs.dtype == torch.long and w.inputs.is_contiguous()
            assert torch.equal(w.inputs, data[start: start + length])
            assert torch.equal(w.targets, data[start + 1: start + 1 + length])
    assert torch.equal(window(data, 5, 9).inputs, task.collate((5, 9, 0)).inputs)


def test_translation_batches_equal_the_in_memory_ones(tmp_path):
    src_lines, tgt_lines = read_lines(DEMO / "train.en"), read_lines(DEMO / "train.de")
    recipe = recipe_from_dict({"task": "translate", "seed": 4, "data": {
        "max_src_len": 18, "max_tgt_len": 20, "max_train_examples": 3000},
        "train": {"batch_tokens": 300, "max_steps": 1}})
    from lstm_nlp.data.tokenizer import TokenizerPair
    joint = train_tokenizer(src_lines + tgt_lines, TokenizerConfig(vocab_size=200), 1)
    tok = TokenizerPair(joint, joint)
    cache = TokenCache(tmp_path, True)
    pairs = TokenizedPairs(one_store(cache, joint, Corpus([TextFile(DEMO / "train.en", "")], "s"),
                                     name="s"),
                           one_store(cache, joint, Corpus([TextFile(DEMO / "train.de", "")], "t"),
                                     name="t"), "demo")
    valid = ParallelText(src_lines[:5], tgt_lines[:5], "v")
    task = TranslationTask(recipe, tok, pairs, valid)
    # the in-memory path as it was: encode, filter by length, bucket, collate lists
    src, tgt = joint.encode(src_lines), joint.encode(tgt_lines)
    keep = [i for i, (s, t) in enumerate(zip(src, tgt)) if 0 < len(s) <= 18 and 0 < len(t) <= 20]
    assert 3000 < len(keep) < len(src_lines)  # the length filter drops some, then the limit
    src, tgt = [src[i] for i in keep[:3000]], [tgt[i] for i in keep[:3000]]
    assert task.dropped == len(src_lines) - 3000
    for epoch in (0, 1):
        batches = token_batches([len(s) for s in src], [len(t) for t in tgt], 300, 4, epoch)
        assert task.epoch_batches(epoch) == batches
        for idx in batches:
            ours = task.collate(idx)
            theirs = seq2seq_batch([src[i] for i in idx], [tgt[i] for i in idx], 0, 2, 3)
            for field in ("src", "src_lengths", "tgt_in", "tgt_out"):
                assert torch.equal(getattr(ours, field), getattr(theirs, field))
            assert ours.n_tokens == theirs.n_tokens
    in_memory = TranslationTask(recipe, tok, ParallelText(src_lines, tgt_lines, "m"), valid)
    assert in_memory.epoch_batches(1) == task.epoch_batches(1)


@pytest.mark.parametrize("long_text", ["head", "tail", "chunk"])
def test_classifier_batches_equal_the_in_memory_ones(tmp_path, long_text):
    recipe = recipe_from_dict({"task": "classify", "seed": 2, "data": {
        "format": "tsv", "dir": str(DEMO / "sentiment")},
        "model": {"max_tokens": 6, "long_text": long_text, "bidirectional": False},
        "train": {"batch_size": 16, "max_steps": 1}})
    train = load_labeled_split(recipe.data, "train")
    tok = word_tok(train.texts)
    classes = sorted(set(train.labels))
    texts = Corpus([LineList(train.texts, "sentiment", None)], "sentiment")
    store = one_store(TokenCache(tmp_path, True), tok, texts)
    task = ClassificationTask(recipe, tok, train, train, classes, store)
    ids = encode_texts(tok, train.texts, 6, long_text)  # the in-memory path as it was
    labels = [classes.index(label) for label in train.labels]
    assert task.train_ids == ids
    for epoch in (0, 1):
        batches = length_batches([len(s) for s in ids], 16, 2, epoch)
        assert task.epoch_batches(epoch) == batches
        for idx in batches[:50]:
            ours, theirs = task.collate(idx), collate([ids[i] for i in idx],
                                                      [labels[i] for i in idx], tok.pad_id)
            assert torch.equal(ours.ids, theirs.ids) and torch.equal(ours.labels, theirs.labels)


# -- runs -----------------------------------------------------------------------------------

def test_second_run_and_resume_reuse_the_store_with_the_same_result(tmp_path, text_corpus,
                                                                     monkeypatch, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_lm_recipe(
        text_corpus, train={"max_epochs": 0, "max_steps": 6, "valid_every": 3}))
    run = train_run(recipe, [], run_dir=tmp_path / "run")
    assert "token store: tokenized" in said(capsys)
    first = checkpoint.load(run / "last.pt")["model"]
    with monkeypatch.context() as patched:
        no_tokenizing(patched)
        train_run(recipe, ["train.max_steps=8"], run_dir=run, resume=True)
        assert "token store: reused" in said(capsys)
        train_run(recipe, [], run_dir=run, overwrite=True)
        err = said(capsys)
    assert "tokenizer: reused" in err and err.count("token store: reused") == 2
    second = checkpoint.load(run / "last.pt")["model"]
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_a_shared_cache_serves_runs_in_other_folders(tmp_path, text_corpus, monkeypatch):
    monkeypatch.setenv(token_store.CACHE_ENV, str(tmp_path / "shared"))
    recipe = write_recipe(tmp_path / "r.yaml", tiny_lm_recipe(
        text_corpus, train={"max_epochs": 0, "max_steps": 2}))
    train_run(recipe, [], run_dir=tmp_path / "a")
    assert not (tmp_path / "a" / "tokens").exists()
    assert len(list((tmp_path / "shared").glob("lm-*.tokens"))) == 2
    no_tokenizing(monkeypatch)
    train_run(recipe, [], run_dir=tmp_path / "b")


def test_misaligned_parallel_files_are_refused(tmp_path, corpus):
    from conftest import tiny_recipe

    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.en", "train.de", "valid.en", "valid.de", "test.en", "test.de"):
        (data / name).write_bytes((corpus / name).read_bytes())
    with open(data / "train.de", "a") as f:
        f.write("one more\n")
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(data))
    with pytest.raises(DataError, match=r"misaligned files: .*train.en has 400 lines, "
                                        r".*train.de has 401"):
        train_run(recipe, [], run_dir=tmp_path / "run")


# -- damage and refusals -------------------------------------------------------------------

@pytest.mark.parametrize("damage, reason", [
    (lambda data: data[:-5], "truncated"),
    (lambda data: b"garbage!" + data[8:], "not a token store"),
    (lambda data: data[:8] + (99).to_bytes(4, "little") + data[12:], "format version 99"),
    (lambda data: data[:40], "shorter than a header"),
])
def test_a_damaged_store_is_tokenized_again_with_a_warning(tmp_path, capsys, damage, reason):
    lines = read_lines(DEMO / "train.en")[:300]
    path = tmp_path / "t.txt"
    path.write_text("".join(line + "\n" for line in lines))
    tok, cache = word_tok(lines), TokenCache(tmp_path / "c", True)
    store = one_store(cache, tok, Corpus([TextFile(path, "")], "t"), tok.eos_id)
    store_path = Path(store.path)
    del store
    store_path.write_bytes(damage(store_path.read_bytes()))
    capsys.readouterr()
    again = one_store(cache, tok, Corpus([TextFile(path, "")], "t"), tok.eos_id)
    err = said(capsys)
    assert f"warning: token store {store_path} is damaged" in err and reason in err
    assert "token store: tokenized" in err
    assert torch.equal(again.stream().long(), token_stream(tok, lines))


def test_an_interrupted_write_leaves_no_store_and_the_next_start_writes_it(tmp_path, monkeypatch):
    lines = read_lines(DEMO / "train.en")[:2000]
    path = tmp_path / "t.txt"
    path.write_text("".join(line + "\n" for line in lines))
    tok, cache = word_tok(lines), TokenCache(tmp_path / "c", True)
    added = []
    real_add = token_store.StoreWriter.add

    def add_then_die(self, ids, lengths):
        added.append(1)
        if len(added) == 5:
            raise KeyboardInterrupt  # Ctrl-C in the middle of tokenizing
        real_add(self, ids, lengths)

    with monkeypatch.context() as patched:
        patched.setattr(token_store.StoreWriter, "add", add_then_die)
        with pytest.raises(KeyboardInterrupt):
            one_store(cache, tok, Corpus([TextFile(path, "")], "t"), tok.eos_id)
    assert list((tmp_path / "c").iterdir()) == []  # no half store, no temporary file
    (tmp_path / "c" / ".lm-x.tokens.999.tmp").write_bytes(b"left by a killed process")
    store = one_store(cache, tok, Corpus([TextFile(path, "")], "t"), tok.eos_id)
    assert torch.equal(store.stream().long(), token_stream(tok, lines))
    assert [p.name for p in (tmp_path / "c").iterdir()] == [Path(store.path).name]


def test_a_full_disk_while_writing_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    lines = read_lines(DEMO / "train.en")[:2000]
    path = tmp_path / "t.txt"
    path.write_text("".join(line + "\n" for line in lines))
    real_open = open

    def filling(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        return FillingFile(handle, 2000) if str(file).endswith(".tmp") else handle

    monkeypatch.setattr("builtins.open", filling)
    tok, cache = word_tok(lines), TokenCache(tmp_path / "c", True)
    with pytest.raises(FileSystemError, match=r"cannot write token store .*lm-x-\w+.tokens: "
                                              r"disk full"):
        one_store(cache, tok, Corpus([TextFile(path, "")], "t"), tok.eos_id, name="lm-x")
    assert list((tmp_path / "c").iterdir()) == []


def test_an_unwritable_cache_folder_is_one_line(tmp_path, text_corpus, monkeypatch):
    from typer.testing import CliRunner

    from lstm_nlp.cli import app

    recipe = write_recipe(tmp_path / "r.yaml", tiny_lm_recipe(
        text_corpus, train={"max_epochs": 0, "max_steps": 2}))
    shared = tmp_path / "shared"
    monkeypatch.setenv(token_store.CACHE_ENV, str(shared))
    result = CliRunner().invoke(app, ["train", str(recipe), "--run-dir", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    (shared / "x").write_text("")
    read_only(monkeypatch, shared)
    # everything is there: a read-only cache serves
    result = CliRunner().invoke(app, ["train", str(recipe), "--run-dir", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    # a new store cannot be written there
    result = CliRunner().invoke(app, ["train", str(recipe), "--run-dir", str(tmp_path / "c"),
                                      "--set", "seed=2"])
    one_error_line(result, f"cannot write token store folder {shared}: Read-only file system")
    monkeypatch.setenv(token_store.CACHE_ENV, str(shared / "x" / "cache"))
    result = CliRunner().invoke(app, ["train", str(recipe), "--run-dir", str(tmp_path / "d")])
    one_error_line(result, f"cannot create token store folder {shared / 'x' / 'cache'}")


def test_store_header_names_its_key(tmp_path):
    """A store copied under another name (another key) is not taken for that one."""
    lines = ["a b", "c"]
    path = tmp_path / "t.txt"
    path.write_text("a b\nc\n")
    tok, cache = word_tok(lines), TokenCache(tmp_path / "c", True)
    store = one_store(cache, tok, Corpus([TextFile(path, "")], "t"))
    with pytest.raises(token_store.DamagedStore, match="does not match its name"):
        token_store.open_store(Path(store.path), b"\0" * 32)
    assert json.dumps(store.rows()) == "[[4, 5], [6]]"
    assert TokenStore.from_rows([[4, 5], [6]], 10).rows() == store.rows()

"""The token store: a corpus tokenized once, in parallel, into a memory-mapped file that
training, validation and --resume read without holding the text or the ids in memory.

A store is one file, as nanoGPT keeps its `.bin` files, with an index of lines:

    header (128 bytes): magic, format version, id size (2 or 4), lines, tokens, <eos> id or -1,
                        the SHA-256 of its cache key
    ids:     uint16 when the vocabulary fits (<= 65,536 entries), else uint32; padded to 8 bytes
    offsets: int64, one per line and one past the end: line i is ids[offsets[i]:offsets[i+1]]
             (less its trailing <eos>, in the language model's layout)

In the language model's layout the ids start with <eos> and every line is followed by one: the
array is the token stream as it is (`lm.task.token_stream`), which the parallel streams view.

A `TokenCache` folder holds the stores, named `<name>-<key>.tokens`, and the tokenizers it
trained, `tokenizer-<key>.model`. A key hashes the data files (path, size, modification time;
text in memory by its content), the tokenizer (its model's bytes), the layout and this format's
version: change any and the name changes. A store is written to a temporary file and renamed
into place, under a lock on the folder (a second process, such as another rank, waits and then
reuses it), so an interrupted tokenization never leaves a half store; one whose header or size
is wrong is tokenized again, with a warning.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import itertools
import json
import os
import struct
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from lstm_nlp.config.sections import TokenizerConfig
from lstm_nlp.data import tokenizer as tokenizers
from lstm_nlp.data.sources import Corpus, map_pieces, processes
from lstm_nlp.data.tokenizer import Tokenizer, WordTokenizer, count_words
from lstm_nlp.errors import CheckpointError, LstmNlpError
from lstm_nlp.filesystem import probe_writable, refused, size_text
from lstm_nlp.reporting.console import counted, info, warning

FORMAT_VERSION = 1
MAGIC = b"LNLPTOKS"
HEADER = struct.Struct("<8sIIqqq32s")  # magic, version, id size, lines, tokens, eos, key
HEADER_SIZE = 128
CACHE_ENV = "LSTM_NLP_TOKEN_CACHE"  # a folder shared by runs; unset: each run folder's tokens/
RUN_CACHE = "tokens"  # the run folder's own cache (kept by --overwrite)


class DamagedStore(LstmNlpError):
    """A store file that is not what its name promises (truncated, another format version,
    another key); the cache tokenizes it again."""


def id_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (a vocabulary of at most 65,536), else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


def encode_rows(rows: list[list[int]], dtype: np.dtype, eos: int | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(the rows' ids as one array, each followed by `eos` unless None; (N,) row lengths)."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=dtype,
                       count=int(lengths.sum()))
    if eos is None:
        return flat, lengths
    ends = np.cumsum(lengths + 1)                          # one past each row's <eos>
    ids = np.full(int(ends[-1]) if len(ends) else 0, eos, dtype=dtype)
    content = np.ones(len(ids), dtype=bool)
    content[ends - 1] = False
    ids[content] = flat
    return ids, lengths


class TokenStore:
    """Token ids of lines: one flat array and where each line starts (see the module's
    docstring), memory-mapped from a store file or held in memory (`from_rows`)."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, eos: int | None,
                 path: Path | None = None):
        self.ids, self.offsets, self.eos, self.path = ids, offsets, eos, path
        self.sep = 0 if eos is None else 1  # the <eos> after each line, in the LM's layout

    @classmethod
    def from_rows(cls, rows: list[list[int]], vocab_size: int, eos: int | None = None
                  ) -> TokenStore:
        """A store in memory (text tokenized on the spot; tests)."""
        ids, lengths = encode_rows(rows, id_dtype(vocab_size), eos)
        if eos is not None:
            ids = np.concatenate([np.array([eos], dtype=ids.dtype), ids])
        return cls(ids, np.concatenate(list(_index([lengths], eos is not None))), eos)

    @property
    def n_lines(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_tokens(self) -> int:
        return len(self.ids)

    def lengths(self) -> np.ndarray:
        """(N,) tokens in each line, its <eos> not counted."""
        return np.diff(self.offsets) - self.sep

    def row(self, i: int) -> list[int]:
        return self.ids[self.offsets[i]: self.offsets[i + 1] - self.sep].tolist()

    def rows(self, indices: Iterable[int] | None = None) -> list[list[int]]:
        return [self.row(i) for i in (range(self.n_lines) if indices is None else indices)]

    def stream(self):
        """The ids as a torch tensor sharing this memory (uint16 or uint32: convert windows of
        it, not the whole)."""
        import torch

        return torch.from_numpy(self.ids)

    def count(self, token: int, block: int = 1 << 24) -> int:
        """How often `token` occurs, read a block at a time."""
        return sum(int(np.count_nonzero(self.ids[i: i + block] == token))
                   for i in range(0, self.n_tokens, block))

    def describe(self) -> str:
        return (f"{counted(self.n_lines, 'line')}, {counted(self.n_tokens, 'token')}, "
                f"{self.ids.dtype}")


def _index(lengths: list[np.ndarray], eos: bool) -> Iterator[np.ndarray]:
    """The offsets of lines of these lengths, in pieces: where each line starts, then the end.
    With `eos`, the ids start with one and each line is followed by one."""
    start = int(eos)
    yield np.array([start], dtype=np.int64)
    for lens in lengths:
        if len(lens):
            ends = start + np.cumsum(lens.astype(np.int64) + eos)                # (lines,)
            yield ends
            start = int(ends[-1])


def open_store(path: Path, key: bytes) -> TokenStore:
    """Map a store file; DamagedStore when its header or size is not that of a complete store
    of this format and key."""
    with refused("cannot read token store", path):
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(HEADER.size)
    if size < HEADER_SIZE:
        raise DamagedStore(f"{size} bytes, shorter than a header")
    magic, version, itemsize, n_lines, n_tokens, eos, stored_key = HEADER.unpack(head)
    if magic != MAGIC:
        raise DamagedStore("not a token store")
    if version != FORMAT_VERSION:
        raise DamagedStore(f"format version {version}, this lstm-nlp reads {FORMAT_VERSION}")
    if stored_key != key or itemsize not in (2, 4) or min(n_lines, n_tokens) < 0:
        raise DamagedStore("its header does not match its name")
    ids_bytes = _padded(n_tokens * itemsize)
    expected = HEADER_SIZE + ids_bytes + 8 * (n_lines + 1)
    if size != expected:
        raise DamagedStore(f"{size:,} bytes where its header says {expected:,} (truncated?)")
    dtype = np.dtype(np.uint16 if itemsize == 2 else np.uint32)
    with refused("cannot read token store", path):
        ids = (np.memmap(path, dtype=dtype, mode="c", offset=HEADER_SIZE, shape=(n_tokens,))
               if n_tokens else np.zeros(0, dtype=dtype))
        offsets = np.memmap(path, dtype=np.int64, mode="c", offset=HEADER_SIZE + ids_bytes,
                            shape=(n_lines + 1,))
    lead = 0 if eos < 0 else 1
    if offsets[0] != lead or offsets[-1] != n_tokens:
        raise DamagedStore("its index does not match its ids")
    return TokenStore(ids, offsets, None if eos < 0 else eos, path)


def _padded(n_bytes: int) -> int:
    return -(-n_bytes // 8) * 8


class StoreWriter:
    """One store being written: into a temporary file beside it, renamed into place once
    complete (`finish`); `discard` removes what an interrupted write left."""

    def __init__(self, path: Path, key: bytes, dtype: np.dtype, eos: int | None):
        self.path, self.key, self.dtype, self.eos = path, key, dtype, eos
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.lengths: list[np.ndarray] = []  # (int32) per piece: the index, written last
        self.n_tokens = 0
        with self._refused():
            self.file = open(self.tmp, "wb")
            self.file.write(bytes(HEADER_SIZE))
        if eos is not None:
            self.add(np.array([eos], dtype=dtype), np.zeros(0, dtype=np.int64))

    def _refused(self) -> contextlib.AbstractContextManager:
        return refused("cannot write token store", self.path)

    def add(self, ids: np.ndarray, lengths: np.ndarray) -> None:
        with self._refused():
            self.file.write(np.ascontiguousarray(ids, dtype=self.dtype).data)
        self.n_tokens += len(ids)
        self.lengths.append(lengths.astype(np.int32))

    def finish(self) -> None:
        n_lines = sum(len(lens) for lens in self.lengths)
        eos = -1 if self.eos is None else self.eos
        with self._refused():
            f = self.file
            f.write(bytes(_padded(self.n_tokens * self.dtype.itemsize)
                          - self.n_tokens * self.dtype.itemsize))
            for offsets in _index(self.lengths, self.eos is not None):
                f.write(offsets.data)
            f.seek(0)
            f.write(HEADER.pack(MAGIC, FORMAT_VERSION, self.dtype.itemsize, n_lines,
                                self.n_tokens, eos, self.key))
            f.flush()
            os.fsync(f.fileno())
            f.close()
            os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


class TokenCache:
    """Where a run's token stores and trained tokenizers live: the folder LSTM_NLP_TOKEN_CACHE
    names (shared by runs), else the run folder's `tokens/` (`own`: a store it replaces there
    is deleted)."""

    def __init__(self, folder: Path, own: bool):
        self.folder, self.own = Path(folder), own

    @classmethod
    def for_run(cls, run_dir: Path) -> TokenCache:
        shared = os.environ.get(CACHE_ENV)
        return cls(Path(shared), False) if shared else cls(Path(run_dir) / RUN_CACHE, True)

    # -- stores ------------------------------------------------------------------------------

    def stores(self, tok: Tokenizer, eos: int | None, corpora: dict[str, Corpus]
               ) -> dict[str, TokenStore]:
        """The store of each corpus (by a name for its file, e.g. `lm-train`): reused when the
        cache has it, else tokenized (corpora over the same sources in one pass)."""
        keys = {name: _key("store", c.identity(), tok.kind, _sha(tok.proto), eos)
                for name, c in corpora.items()}
        paths = {name: self.folder / f"{name}-{keys[name].hex()[:16]}.tokens" for name in keys}
        found = {name: self._open(paths[name], keys[name]) for name in corpora}
        if any(store is None for store in found.values()):
            self._writable()
            with self._locked():  # another process may have written them while we waited
                found = {name: store or self._open(paths[name], keys[name], warn=False)
                         for name, store in found.items()}
                for group in _by_sources({n: c for n, c in corpora.items() if found[n] is None}):
                    self._build({n: (paths[n], keys[n], corpora[n]) for n in group}, tok, eos)
                    found.update({n: open_store(paths[n], keys[n]) for n in group})
        return found

    def _open(self, path: Path, key: bytes, warn: bool = True) -> TokenStore | None:
        """The store at `path` (None: none there, or a damaged one, said when `warn`)."""
        if not path.is_file():
            return None
        try:
            store = open_store(path, key)
        except DamagedStore as e:
            if warn:
                warning(f"token store {path} is damaged ({e}); tokenizing again")
            return None
        info(f"token store: reused {path} ({store.describe()})")
        return store

    def _build(self, outputs: dict[str, tuple[Path, bytes, Corpus]], tok: Tokenizer,
               eos: int | None) -> None:
        """Tokenize the corpora (sharing their sources) in one parallel pass, each line into
        the store of the corpus that selects it."""
        corpora = [c for _, _, c in outputs.values()]
        corpus, dtype = corpora[0], id_dtype(tok.vocab_size)
        corpus.scan()  # data errors first, by file and line
        route = _route(corpora)
        start = time.perf_counter()
        writers: list[StoreWriter] = []
        try:
            for path, key, _ in outputs.values():
                writers.append(StoreWriter(path, key, dtype, eos))
            for parts in map_pieces(_tokenize_piece, corpus, route, _start_worker,
                                    (tok.kind, tok.proto, dtype, eos, len(writers))):
                for writer, (ids, lengths) in zip(writers, parts):
                    writer.add(ids, lengths)
            for writer in writers:
                writer.finish()
        finally:
            for writer in writers:
                writer.discard()
        seconds = max(time.perf_counter() - start, 1e-9)
        n_bytes, n_lines = _text_bytes(corpus), sum(corpus.source_lines())
        info(f"token store: tokenized {corpus.origin}: {size_text(n_bytes)}, "
             f"{counted(n_lines, 'line')} in {seconds:.1f} s ({n_bytes / 1e6 / seconds:,.1f} MB/s, "
             f"{n_lines / seconds:,.0f} lines/s, "
             f"{counted(processes(), 'process', 'processes')}) -> "
             + ", ".join(str(w.path) for w in writers))
        if self.own:
            for path, _, _ in outputs.values():
                _remove_others(path)

    def _writable(self) -> None:
        if not self.folder.is_dir():
            with refused("cannot create token store folder", self.folder):
                self.folder.mkdir(parents=True, exist_ok=True)
        probe_writable(self.folder, "token store folder")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the folder's lock (where the system has flock); remove the temporary files
        that processes killed while writing left."""
        try:
            import fcntl
        except ImportError:  # Windows: no lock
            yield
            return
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info(f"token store: waiting for another process writing in {self.folder}")
                fcntl.flock(fd, fcntl.LOCK_EX)
            for stale in self.folder.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
            yield
        finally:
            os.close(fd)

    # -- tokenizers --------------------------------------------------------------------------

    def train_tokenizer(self, texts: Corpus, cfg: TokenizerConfig, seed: int) -> Tokenizer:
        """A tokenizer trained on a corpus (`tokenizer.Trainer`): the cache's copy when it has
        one for this text, settings and seed; else trained, the text streamed (a word
        vocabulary counted in parallel), and kept in the cache."""
        key = _key("tokenizer", texts.identity(), cfg.to_dict(), seed)
        path = self.folder / f"tokenizer-{key.hex()[:16]}.model"
        if (tok := _cached_tokenizer(path, warn=True)) is not None:
            return tok
        self._writable()
        with self._locked():  # another process may have trained it while we waited
            if (tok := _cached_tokenizer(path, warn=False)) is not None:
                return tok
            texts.scan()  # data errors first, by file and line
            start = time.perf_counter()
            if cfg.type == "word":
                tok = WordTokenizer.from_counts(word_counts(texts, cfg.lowercase),
                                                cfg.vocab_size, cfg.min_freq, cfg.lowercase)
            else:
                tok = tokenizers.train_tokenizer(texts, cfg, seed)
            info(f"tokenizer: trained on {texts.origin} in {time.perf_counter() - start:.1f} s")
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with refused("cannot write tokenizer", path):
                tmp.write_bytes(tok.proto)
                os.replace(tmp, path)
        return tok


def _cached_tokenizer(path: Path, warn: bool) -> Tokenizer | None:
    """The tokenizer kept at `path` (None: none, or a damaged one, said when `warn`)."""
    if not path.is_file():
        return None
    try:
        tok = tokenizers.load_tokenizer(path)
    except (CheckpointError, OSError) as e:
        if warn:
            warning(f"tokenizer {path} is damaged ({e}); training it again")
        return None
    info(f"tokenizer: reused {path}")
    return tok


def word_counts(corpus: Corpus, lowercase: bool) -> collections.Counter:
    """The words of the corpus's selected lines, counted piece by piece in parallel."""
    mask = corpus.selected()
    route = None if mask is None else mask.astype(np.int8)
    total: collections.Counter = collections.Counter()
    for counts in map_pieces(functools.partial(_count_piece, lowercase), corpus, route):
        total.update(counts)
    return total


def _count_piece(lowercase: bool, lines: list[str], route: np.ndarray | None
                 ) -> collections.Counter:
    if route is not None:
        lines = [line for line, keep in zip(lines, route) if keep]
    return count_words(lines, lowercase)


_WORKER: dict = {}  # a tokenizing worker's tokenizer and layout (_start_worker)


def _start_worker(kind: str, proto: bytes, dtype: np.dtype, eos: int | None,
                  outputs: int) -> None:
    _WORKER.update(tok=tokenizers.tokenizer_from_state(kind, proto, threads=1), dtype=dtype,
                   eos=eos, outputs=outputs)


def _tokenize_piece(lines: list[str], route: np.ndarray | None
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ids, lengths) of the piece's lines for each store: all of them for one store, else the
    lines whose route is that store's index."""
    w = _WORKER
    ids, lengths = encode_rows(w["tok"].encode(lines), w["dtype"], w["eos"])
    if route is None:
        return [(ids, lengths)]
    per_token = np.repeat(route, lengths + (w["eos"] is not None))              # (tokens,)
    return [(ids[per_token == k], lengths[route == k]) for k in range(w["outputs"])]


def _route(corpora: list[Corpus]) -> np.ndarray | None:
    """Which corpus (its index) takes each line of their shared sources; -1: none. None: the
    one corpus takes every line."""
    masks = [c.selected() for c in corpora]
    if len(corpora) == 1 and masks[0] is None:
        return None
    route = np.full(sum(corpora[0].source_lines()), -1, dtype=np.int8)
    for k, mask in enumerate(masks):
        route[slice(None) if mask is None else mask] = k
    return route


def _by_sources(corpora: dict[str, Corpus]) -> list[list[str]]:
    """The names of corpora grouped by their source objects (one tokenization pass each)."""
    groups: dict[tuple[int, ...], list[str]] = {}
    for name, c in corpora.items():
        groups.setdefault(tuple(id(s) for s in c.sources), []).append(name)
    return list(groups.values())


def _text_bytes(corpus: Corpus) -> int:
    return sum(p.end - p.start if p.path else sum(len(line) + 1 for line in p.lines)
               for scan in corpus.scan() for p in scan.pieces)


def _remove_others(path: Path) -> None:
    """In a run's own cache: the stores of the same name made from other data or tokenizers."""
    name = path.name.rsplit("-", 1)[0]
    for other in path.parent.glob(f"{name}-*.tokens"):
        if other != path and other.name.rsplit("-", 1)[0] == name:
            other.unlink(missing_ok=True)


def _key(*parts) -> bytes:
    return hashlib.sha256(json.dumps([FORMAT_VERSION, *parts]).encode("utf-8")).digest()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

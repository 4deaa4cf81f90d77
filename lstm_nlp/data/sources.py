"""Training text read where it lies, in pieces that worker processes read on their own.

A plain text file is cut into byte ranges that end after a newline, so that each worker reads
its own piece and no process ever holds the whole corpus; text that `datasets` loaded (tables,
the hub) or a gzipped file is a list of lines in memory, cut into runs of lines. The lines are
`corpora.read_lines`'s (LF or CRLF; a last line without its newline counts), and bad UTF-8 names
its file and line as there.

A `Corpus` is one or more sources read as one sequence of lines (a split and its `extra_train`
files), maybe only the lines that a seeded held-out split keeps, or those it holds out. It is
scanned once (line counts, UTF-8, whether there is any text), then read piece by piece in
parallel (`map_pieces`: tokenization, word counts) or line by line (sentencepiece's training).
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from lstm_nlp.data.corpora import (decode_lines, held_out_origin, load_split, load_text_file,
                                   load_text_split, not_utf8, require_file, shuffled_rows,
                                   table_format, text_split_path, utf8_error_at)
from lstm_nlp.errors import DataError
from lstm_nlp.filesystem import refused, size_text
from lstm_nlp.reporting.console import counted, info
from lstm_nlp.tasks.lm.config import LMDataConfig
from lstm_nlp.tasks.translate.config import TranslateDataConfig

PIECE_BYTES = 4 << 20  # a file's piece: a few MB of text, a few tens of MB in a worker
PIECE_LINES = 20_000   # a piece of a list of lines


@dataclass(frozen=True)
class Piece:
    """What a worker reads: bytes [start, end) of a file, or the lines themselves."""

    path: str = ""
    start: int = 0
    end: int = 0
    lines: tuple[str, ...] = ()


def read_piece(piece: Piece) -> tuple[list[str], tuple[int, int, int] | None]:
    """(the piece's lines, None), or ([], (line, byte, value)) of its first bad UTF-8 byte
    (counted within the piece: the caller knows where the piece starts)."""
    if not piece.path:
        return list(piece.lines), None
    with refused("cannot read", piece.path), open(piece.path, "rb") as f:
        f.seek(piece.start)
        data = f.read(piece.end - piece.start)
    try:
        return decode_lines(data), None
    except UnicodeDecodeError as e:
        return [], utf8_error_at(data, e)


class TextFile:
    """A plain text file, read in newline-aligned byte ranges. `no_text` is what an error says
    of a file with no text in it ("split 'train' has no text"; None: no such check)."""

    def __init__(self, path: Path, no_text: str | None):
        path = Path(path)
        require_file(path)
        self.path, self.origin, self.no_text = path, str(path), no_text
        self.scanned: Scan | None = None

    def identity(self) -> list:
        """What names this text for a cache: the file, its size and modification time."""
        with refused("cannot read", self.path):
            st = self.path.stat()
        return ["file", str(self.path.resolve()), st.st_size, st.st_mtime_ns]

    def pieces(self) -> list[Piece]:
        with refused("cannot read", self.path):
            bounds = _newline_bounds(self.path, PIECE_BYTES)
        return [Piece(str(self.path), a, b) for a, b in zip(bounds, bounds[1:])]


def _newline_bounds(path: Path, size: int) -> list[int]:
    """0, the offsets just after the first newline at or beyond every `size` bytes, and the
    file's length: a line longer than `size` stays whole in its piece."""
    total = path.stat().st_size
    bounds = [0]
    with open(path, "rb") as f:
        while bounds[-1] + size < total:
            f.seek(bounds[-1] + size - 1)
            ahead = _next_newline(f)
            if ahead is None or bounds[-1] + size + ahead >= total:
                break
            bounds.append(bounds[-1] + size + ahead)  # just after that newline
    return bounds + [total]


def _next_newline(f) -> int | None:
    """How far ahead of the current position the next newline lies (None: none till the end)."""
    skipped = 0
    while (block := f.read(1 << 16)):
        at = block.find(b"\n")
        if at >= 0:
            return skipped + at
        skipped += len(block)
    return None


class LineList:
    """Lines already in memory (through `datasets`, or a gzipped file), named by their content
    for a cache."""

    def __init__(self, lines: list[str], origin: str, no_text: str | None):
        self.lines, self.origin, self.no_text = lines, origin, no_text
        self.scanned: Scan | None = None

    def identity(self) -> list:
        digest = hashlib.sha256()
        for line in self.lines:
            digest.update(line.encode("utf-8", "surrogatepass") + b"\n")
        return ["lines", len(self.lines), digest.hexdigest()]

    def pieces(self) -> list[Piece]:
        return [Piece(lines=tuple(self.lines[i: i + PIECE_LINES]))
                for i in range(0, len(self.lines), PIECE_LINES)] or [Piece()]


Source = TextFile | LineList


@dataclass(frozen=True)
class HeldOut:
    """The seeded random `fraction` of a corpus's lines held out for validation (`valid: ""`):
    `held` selects those lines, else the lines kept for training."""

    fraction: float
    seed: int
    held: bool


@dataclass
class Scan:
    """A source read once: its pieces, the lines in each, whether any line has text."""

    pieces: list[Piece]
    counts: list[int]
    has_text: bool


class Corpus:
    """Sources read as one sequence of lines, all of them or one side of a held-out split;
    iterating gives the selected lines in order. Each source is scanned once, when first
    needed, and keeps its scan (corpora made of the same source objects share it)."""

    def __init__(self, sources: list[Source], origin: str, held_out: HeldOut | None = None):
        self.sources, self.origin, self.held_out = list(sources), origin, held_out

    def identity(self) -> list:
        """What names the selected text for a cache (no file is read)."""
        held = self.held_out
        return [s.identity() for s in self.sources] + (
            [["held-out", held.fraction, held.seed, held.held]] if held else [])

    def __add__(self, other: Corpus) -> Corpus:
        """The lines of both, one after the other (a joint vocabulary's training text)."""
        if self.held_out or other.held_out:
            raise ValueError("only whole corpora are joined")
        return Corpus(self.sources + other.sources, f"{self.origin} + {other.origin}")

    def scan(self) -> list[Scan]:
        """The scans of the sources (each read in parallel the first time): bad UTF-8, or a
        source without text, is a DataError naming the file (and the line)."""
        scan_sources(self.sources)
        return [s.scanned for s in self.sources]

    def source_lines(self) -> list[int]:
        """Lines in each source, before selection."""
        return [sum(scan.counts) for scan in self.scan()]

    def selected(self) -> np.ndarray | None:
        """One bool per line of the sources: whether this corpus takes it (None: all)."""
        if self.held_out is None:
            return None
        held = self.held_out
        mask = _held_out_mask(sum(self.source_lines()), held.fraction, held.seed, self.origin)
        return mask if held.held else ~mask

    def __iter__(self) -> Iterator[str]:
        """The selected lines, read piece by piece in this process (sentencepiece's training
        reads them so, keeping a sample)."""
        mask = self.selected()
        first = 0
        for scan in self.scan():
            for piece, n in zip(scan.pieces, scan.counts):
                lines, _ = read_piece(piece)
                if mask is None:
                    yield from lines
                else:
                    yield from (ln for ln, keep in zip(lines, mask[first: first + n]) if keep)
                first += n


def scan_sources(sources: list[Source]) -> None:
    """Scan the sources not scanned yet, all files' pieces in one parallel pass."""
    todo = [s for s in sources if s.scanned is None]
    start = time.perf_counter()
    pieces = [(s, p) for s in todo for p in s.pieces()]
    results = parallel(_scan_piece, [p for s, p in pieces if isinstance(s, TextFile)])
    found: dict[int, list] = {id(s): [] for s in todo}
    for source, piece in pieces:
        if isinstance(source, TextFile):
            found[id(source)].append((piece, *next(results)))
        else:  # lines in memory: scanned here, where they are
            found[id(source)].append((piece, *_scan_lines(list(piece.lines))))
    for source in todo:
        rows = found[id(source)]
        line = 1
        for _, n, _, bad in rows:
            if bad:
                raise not_utf8(source.origin, line + bad[0] - 1, bad[1], bad[2])
            line += n
        has_text = any(has_text for _, _, has_text, _ in rows)
        if source.no_text and not has_text:
            raise DataError(f"{source.origin}: {source.no_text}")
        source.scanned = Scan([r[0] for r in rows], [r[1] for r in rows], has_text)
    if (files := [s for s in todo if isinstance(s, TextFile)]):
        size = sum(s.scanned.pieces[-1].end for s in files)  # where the last piece ends
        lines = sum(sum(s.scanned.counts) for s in files)
        info(f"text: read {', '.join(s.origin for s in files)}: {size_text(size)}, "
             f"{counted(lines, 'line')} in {time.perf_counter() - start:.1f} s")


def _scan_piece(piece: Piece) -> tuple[int, bool, tuple[int, int, int] | None]:
    lines, bad = read_piece(piece)
    return (*_scan_lines(lines)[:2], bad)


def _scan_lines(lines: list[str]) -> tuple[int, bool, None]:
    return len(lines), any(line.strip() for line in lines), None


@functools.lru_cache(maxsize=2)  # the kept and the held-out side ask for the same mask
def _held_out_mask(n: int, fraction: float, seed: int, origin: str) -> np.ndarray:
    """True for the lines `corpora.hold_out` holds out (the same seeded choice)."""
    order, n_valid = shuffled_rows(n, fraction, seed, origin)
    mask = np.zeros(n, dtype=bool)
    mask[np.frombuffer(order, dtype=np.int64)[:n_valid]] = True
    return mask


def text_split_source(cfg: LMDataConfig, split: str) -> Source:
    """A split of running text (`corpora.load_text_split`'s), a plain text file where it lies."""
    if cfg.format != "text":
        text = load_text_split(cfg, split)
        return LineList(text.lines, text.origin, None)
    return TextFile(text_split_path(cfg, split), f"split '{split}' has no text")


def text_file_source(path: Path, cfg: LMDataConfig) -> Source:
    """One more file of running text (`corpora.load_text_file`'s), plain text where it lies."""
    path = Path(path)
    require_file(path)
    if table_format(path) or path.suffix == ".gz":
        text = load_text_file(path, cfg)
        return LineList(text.lines, text.origin, None)
    return TextFile(path, "no text")


def language_corpora(cfg: LMDataConfig, seed: int) -> tuple[Corpus, Corpus]:
    """The training text (the train split, then each `extra_train` file) and the validation
    text; without a validation split, the seeded `valid_fraction` of the training lines that
    `corpora.split_off_validation` holds out (the same lines)."""
    parts = [text_split_source(cfg, cfg.train)]
    parts += [text_file_source(Path(cfg.dir) / name, cfg) for name in cfg.extra_train]
    origin = " + ".join(part.origin for part in parts)
    if cfg.valid:
        valid = text_split_source(cfg, cfg.valid)
        return Corpus(parts, origin), Corpus([valid], valid.origin)
    fraction = cfg.valid_fraction
    return (Corpus(parts, origin, HeldOut(fraction, seed, False)),
            Corpus(parts, held_out_origin(origin, fraction), HeldOut(fraction, seed, True)))


def parallel_corpora(cfg: TranslateDataConfig, split: str) -> tuple[Corpus, Corpus]:
    """The source and the target side of a split of sentence pairs (`corpora.load_split`'s),
    parallel files where they lie."""
    if cfg.format != "parallel":
        pairs = load_split(cfg, split)
        return (Corpus([LineList(pairs.src, pairs.origin, None)], pairs.origin),
                Corpus([LineList(pairs.tgt, pairs.origin, None)], pairs.origin))
    folder = Path(cfg.dir)
    if not folder.is_dir():
        raise DataError(f"data folder not found: {folder}")
    sides = [TextFile(folder / f"{split}.{lang}", f"split '{split}' is empty")
             for lang in (cfg.src_lang, cfg.tgt_lang)]
    return Corpus(sides[:1], sides[0].origin), Corpus(sides[1:], sides[1].origin)


def map_pieces(fn: Callable[[list[str], np.ndarray | None], Any], corpus: Corpus,
               route: np.ndarray | None = None, initializer: Callable | None = None,
               initargs: tuple = ()) -> Iterator[Any]:
    """fn(lines, their slice of `route`) for each piece of the corpus's sources, in order, in
    worker processes (all cores); `route` has one value per line of the sources (None: no
    slices). `fn` and `initializer` are module-level functions (or partials of them)."""
    tasks, first = [], 0
    for scan in corpus.scan():
        for piece, n in zip(scan.pieces, scan.counts):
            tasks.append((piece, None if route is None else route[first: first + n]))
            first += n
    return parallel(functools.partial(_apply, fn), tasks, initializer, initargs)


def _apply(fn: Callable, task: tuple[Piece, np.ndarray | None]) -> Any:
    piece, route = task
    lines, bad = read_piece(piece)
    if bad:  # the scan found none: the file changed since
        raise DataError(f"{piece.path} changed while it was read; start again")
    return fn(lines, route)


def processes() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def parallel(fn: Callable, tasks: list, initializer: Callable | None = None,
             initargs: tuple = ()) -> Iterator[Any]:
    """fn over tasks, results in order: in a pool of worker processes (one per core) when there
    are several tasks and cores, else in this process. Workers are forked where the system
    can (no re-import, the parent's pages shared); elsewhere spawned."""
    n = min(len(tasks), processes())
    if n <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, tasks)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(n, initializer, initargs) as pool:
        # 2 tasks a worker at a time: with every task queued at once, the pool's feeding
        # thread can be left blocked on a full pipe, and terminating the pool on Ctrl-C then
        # waits for it forever
        for start in range(0, len(tasks), 2 * n):
            yield from pool.imap(fn, tasks[start: start + 2 * n])

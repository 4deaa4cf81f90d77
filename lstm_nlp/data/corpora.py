"""Loading text data for a named split: plain text files read line by line, everything else through
the Hugging Face `datasets` library (TSV/CSV, JSONL, parquet, a `save_to_disk` folder, a hub id).

Every problem with the input is a `DataError` that names the file, and the line where there is one.
"""

from __future__ import annotations

import gzip
import random
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from lstm_nlp.errors import DataError
from lstm_nlp.filesystem import refused
from lstm_nlp.tasks.classify.config import ClassifyDataConfig
from lstm_nlp.tasks.lm.config import LMDataConfig
from lstm_nlp.tasks.translate.config import TranslateDataConfig

EXTENSIONS = {"tsv": "tsv", "csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}


@dataclass
class ParallelText:
    """Aligned source and target sentences of one split; `origin` names where they came from."""

    src: list[str]
    tgt: list[str]
    origin: str

    def __len__(self) -> int:
        return len(self.src)


@dataclass
class TextLines:
    """The lines of one split of running text (language modeling)."""

    lines: list[str]
    origin: str

    def __len__(self) -> int:
        return len(self.lines)

    def subset(self, rows: list[int], origin: str | None = None) -> "TextLines":
        return TextLines([self.lines[i] for i in rows], origin or self.origin)


@dataclass
class LabeledText:
    """Texts and their labels (as strings) of one split (classification)."""

    texts: list[str]
    labels: list[str]
    origin: str

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, rows: list[int], origin: str | None = None) -> "LabeledText":
        return LabeledText([self.texts[i] for i in rows], [self.labels[i] for i in rows],
                           origin or self.origin)


Rows = TypeVar("Rows", TextLines, LabeledText)


def require_file(path: Path) -> None:
    """A file to read: missing, or a folder where a file is due, is one DataError naming it."""
    if path.is_dir():
        raise DataError(f"{path} is a folder; give a file")
    if not path.is_file():
        raise DataError(f"file not found: {path}")


def read_lines(path: Path) -> list[str]:
    """All lines of a UTF-8 text file, without line endings (LF or CRLF)."""
    path = Path(path)
    require_file(path)
    with refused("cannot read", path):
        data = path.read_bytes()
    return split_utf8_lines(data, str(path))


def split_utf8_lines(data: bytes, origin: str) -> list[str]:
    """Decode bytes as UTF-8 lines; invalid bytes raise a DataError naming the line."""
    try:
        return decode_lines(data)
    except UnicodeDecodeError as e:
        raise not_utf8(origin, *utf8_error_at(data, e)) from None


def decode_lines(data: bytes) -> list[str]:
    """The lines of UTF-8 bytes without their LF or CRLF; a last line without a newline counts.
    Bytes cut after a newline give the same lines piece by piece as whole (token_store reads
    a large file so). Raises UnicodeDecodeError."""
    lines = data.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def utf8_error_at(data: bytes, error: UnicodeDecodeError) -> tuple[int, int, int]:
    """(line, byte in the line, the byte's value) of a decoding error, counted from 1."""
    line = data.count(b"\n", 0, error.start) + 1
    col = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
    return line, col, data[error.start]


def not_utf8(origin: str, line: int, col: int, byte: int) -> DataError:
    return DataError(f"{origin}: line {line}, byte {col}: not valid UTF-8 (0x{byte:02x})")


def load_split(cfg: TranslateDataConfig, split: str) -> ParallelText:
    """Load one named split (`split` is a file prefix for local files, a split name otherwise)."""
    if cfg.format == "parallel":
        pair = _load_parallel(Path(cfg.dir), split, cfg.src_lang, cfg.tgt_lang)
    else:
        ds, origin = _load_with_datasets(cfg, split)
        pair = ParallelText(_column(ds, cfg.src_column, origin),
                            _column(ds, cfg.tgt_column, origin), origin)
    if len(pair) == 0:
        raise DataError(f"{pair.origin}: split '{split}' is empty")
    return pair


def load_text_split(cfg: LMDataConfig, split: str) -> TextLines:
    """Running text of one split: `<dir>/<split>` or `<dir>/<split>.txt`, or a column through
    `datasets`. Empty lines are kept (each line ends with an end-of-sentence token)."""
    if cfg.format == "text":
        path = text_split_path(cfg, split)
        text = TextLines(read_lines(path), str(path))
    else:
        ds, origin = _load_with_datasets(cfg, split)
        text = TextLines(_column(ds, cfg.text_column, origin), origin)
    if not any(line.strip() for line in text.lines):
        raise DataError(f"{text.origin}: split '{split}' has no text")
    return text


def text_split_path(cfg: LMDataConfig, split: str) -> Path:
    """The file of a split of plain text: `<dir>/<split>`, else `<dir>/<split>.txt`."""
    folder = Path(cfg.dir)
    if not folder.is_dir():
        raise DataError(f"data folder not found: {folder}")
    return folder / split if (folder / split).is_file() else folder / f"{split}.txt"


def hold_out(n: int, fraction: float, seed: int, origin: str) -> tuple[list[int], list[int]]:
    """Indices of the rows kept for training and of the `fraction` held out for validation
    (a seeded random choice), both in their original order."""
    order, n_valid = shuffled_rows(n, fraction, seed, origin)
    return sorted(order[n_valid:]), sorted(order[:n_valid])


def shuffled_rows(n: int, fraction: float, seed: int, origin: str) -> tuple[array, int]:
    """The seeded permutation of n rows whose first `n_valid` are held out, and n_valid. An
    array of 8-byte ints shuffles as a list does (the same permutation) in a quarter of the
    memory: 20 million lines take 160 MB, not 720."""
    order = array("q", range(n))
    random.Random(seed).shuffle(order)
    n_valid = max(1, int(n * fraction))
    if n_valid >= n:
        raise DataError(f"{origin}: too few rows to hold out a validation set")
    return order, n_valid


def split_off_validation(train: Rows, fraction: float, seed: int) -> tuple[Rows, Rows]:
    """(training rows, held-out validation rows) of a split without a validation split of
    its own (`valid: ""` in a recipe)."""
    keep, held = hold_out(len(train), fraction, seed, train.origin)
    return train.subset(keep), train.subset(held, held_out_origin(train.origin, fraction))


def held_out_origin(origin: str, fraction: float) -> str:
    return f"{origin} (held-out {fraction:.0%})"


def load_text_file(path: Path, cfg: LMDataConfig) -> TextLines:
    """Running text from one more file, read by its type: `.tsv`/`.csv`/`.jsonl`/`.parquet`
    (gzipped or not) by the recipe's `text_column`, anything else line by line."""
    path = Path(path)
    require_file(path)
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    stem = name.rpartition(".")[0]
    if (fmt := table_format(path)):
        local = cfg.model_copy(update={"format": fmt, "dir": str(path.parent)})
        ds, origin = _load_with_datasets(local, stem)
        text = TextLines(_column(ds, cfg.text_column, origin), origin)
    else:
        data = _decompressed(path) if path.suffix == ".gz" else path.read_bytes()
        text = TextLines(split_utf8_lines(data, str(path)), str(path))
    if not any(line.strip() for line in text.lines):
        raise DataError(f"{text.origin}: no text")
    return text


def table_format(path: Path) -> str | None:
    """The `datasets` format a file's name says (`x.tsv.gz`: tsv); None for plain text."""
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    return {"tsv": "tsv", "csv": "csv", "jsonl": "jsonl", "json": "jsonl",
            "parquet": "parquet"}.get(name.rpartition(".")[2])


def load_parallel_files(src_path: Path, tgt_path: Path) -> ParallelText:
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise DataError(f"misaligned files: {src_path} has {len(src)} lines, "
                        f"{tgt_path} has {len(tgt)}")
    return ParallelText(src, tgt, f"{src_path} + {tgt_path}")


def _load_parallel(folder: Path, split: str, src_lang: str, tgt_lang: str) -> ParallelText:
    if not folder.is_dir():
        raise DataError(f"data folder not found: {folder}")
    return load_parallel_files(folder / f"{split}.{src_lang}", folder / f"{split}.{tgt_lang}")


def load_labeled_split(cfg: ClassifyDataConfig, split: str) -> LabeledText:
    """Texts and labels of one split; a label may be a name or an integer."""
    ds, origin = _load_with_datasets(cfg, split)
    data = LabeledText(_column(ds, cfg.text_column, origin), _column(ds, cfg.label_column, origin),
                       origin)
    if len(data) == 0:
        raise DataError(f"{origin}: split '{split}' is empty")
    for i, label in enumerate(data.labels):
        if not label.strip():
            raise DataError(f"{origin}: row {i + 1}: empty label")
    return data


def load_labeled_file(path: Path, cfg: ClassifyDataConfig) -> LabeledText:
    """A labeled file outside the recipe's data, in the recipe's format and columns."""
    path = Path(path)
    require_file(path)
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    fmt = {"tsv": "tsv", "csv": "csv", "jsonl": "jsonl", "json": "jsonl",
           "parquet": "parquet"}.get(name.rsplit(".", 1)[-1], cfg.format)
    if fmt not in EXTENSIONS:
        raise DataError(f"{path}: give a .tsv, .csv, .jsonl or .parquet file")
    local = cfg.model_copy(update={"format": fmt, "dir": str(path.parent)})
    return load_labeled_split(local, name.rsplit(".", 1)[0])


def _local_file(folder: Path, split: str, ext: str) -> Path:
    """`<dir>/<split>.<ext>`, or its gzip-compressed `.gz` sibling."""
    path = folder / f"{split}.{ext}"
    gz = path.with_name(path.name + ".gz")
    if not path.is_file() and gz.is_file():
        return gz
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    return path


def _load_with_datasets(cfg: TranslateDataConfig | LMDataConfig | ClassifyDataConfig, split: str):
    """(a `datasets.Dataset`, where it came from) for one split of a non-text format."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    folder = Path(cfg.dir)
    where = cfg.hub_name if cfg.format == "hub" else str(folder)  # for the error message
    try:
        if cfg.format == "hub":
            origin = f"{cfg.hub_name}[{split}]"
            ds = datasets.load_dataset(cfg.hub_name, cfg.hub_config or None, split=split)
        elif cfg.format == "disk":
            origin = f"{folder}[{split}]"
            if not folder.is_dir():
                raise DataError(f"data folder not found: {folder}")
            ds = datasets.load_from_disk(str(folder))
            if isinstance(ds, datasets.DatasetDict):
                if split not in ds:
                    raise DataError(f"{folder}: no split '{split}' (has: {', '.join(ds)})")
                ds = ds[split]
        else:
            path = _local_file(folder, split, EXTENSIONS[cfg.format])
            origin = where = str(path)
            if cfg.format != "parquet":  # text formats: precise line numbers for bad bytes
                data = _decompressed(path) if path.suffix == ".gz" else path.read_bytes()
                split_utf8_lines(data, origin)
            builder, kwargs = {
                "tsv": ("csv", {"sep": "\t", "quoting": 3, "keep_default_na": False}),
                "csv": ("csv", {"keep_default_na": False}),
                "jsonl": ("json", {}),
                "parquet": ("parquet", {}),
            }[cfg.format]
            ds = datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except DataError:
        raise
    except Exception as e:  # datasets raises many types; all mean "could not read this"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "corresponds to no data" in first:  # a header row alone, or an empty file
            raise DataError(f"{where}: no rows (a {cfg.format} file starts with a header row "
                            "naming its columns, then one row per example)") from None
        raise DataError(f"{where}: could not load split '{split}' as {cfg.format}: "
                        f"{first}") from None
    return ds, origin


def _decompressed(path: Path) -> bytes:
    try:
        return gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable gzip file ({e})") from None


def _column(ds, name: str, origin: str) -> list[str]:
    """A text column; `a.b` reads field b of a nested column a (e.g. translation.de)."""
    top, _, sub = name.partition(".")
    if top not in ds.column_names:
        raise DataError(f"{origin}: no column '{top}' (columns: {', '.join(ds.column_names)})")
    values = ds[top]
    if sub:
        try:
            values = [v[sub] for v in values]
        except (KeyError, TypeError):
            raise DataError(f"{origin}: column '{top}' has no field '{sub}'") from None
    out = []
    for i, v in enumerate(values):
        if v is None:
            raise DataError(f"{origin}: row {i + 1}: column '{name}' is missing")
        out.append(str(v).replace("\r", "").replace("\n", " "))
    return out

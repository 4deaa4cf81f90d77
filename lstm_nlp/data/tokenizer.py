"""Tokenizers: sentencepiece (unigram/BPE) or a word-level vocabulary, trained from the training
split on first use, stored in the run folder and inside every checkpoint (serialized), so a
checkpoint alone maps raw text to raw text.

This module is the single source of truth for the special ids and the vocabulary size.
"""

from __future__ import annotations

import collections
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol

import sentencepiece as spm

from lstm_nlp.config.sections import TokenizerConfig
from lstm_nlp.errors import CheckpointError, ConfigError

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
WORD_SPECIALS = ("<pad>", "<unk>", "<s>", "<eos>")  # the word vocabulary's ids 0..3
WORD_MAGIC = b"lstm-nlp word vocabulary 1"  # + " lowercase" + "\n", then one word a line


class Tokenizer(Protocol):
    """Text <-> ids. `encode` gives ids without BOS/EOS; `decode` gives detokenized text."""

    kind: str
    proto: bytes
    pad_id: int
    unk_id: int
    bos_id: int
    eos_id: int

    @property
    def vocab_size(self) -> int: ...
    def encode(self, texts: list[str]) -> list[list[int]]: ...
    def decode(self, ids: list[list[int]]) -> list[str]: ...
    def unknown(self, text: str) -> list[str]: ...
    def id_to_piece(self, ids: list[int]) -> list[str]: ...


class SentencePieceTokenizer:
    """A sentencepiece model (unigram or BPE), serialized as its model proto."""

    kind = "sentencepiece"
    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    def __init__(self, proto: bytes, threads: int = -1):
        """`threads` encode a batch of texts (-1: all cores; 1 in a token store's workers,
        which are one per core already)."""
        self.proto = proto
        self.sp = spm.SentencePieceProcessor(num_threads=threads)
        try:
            self.sp.LoadFromSerializedProto(proto)
        except Exception as e:  # sentencepiece raises plain RuntimeError/OSError
            raise CheckpointError(f"tokenizer model is corrupt: {e}") from None
        if self.sp.pad_id() != PAD_ID or self.sp.eos_id() != EOS_ID:
            raise CheckpointError("tokenizer model was not made by lstm-nlp (special ids differ)")

    @property
    def vocab_size(self) -> int:
        return self.sp.GetPieceSize()

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self.sp.Encode(texts, out_type=int)

    def decode(self, ids: list[list[int]]) -> list[str]:
        return self.sp.Decode(ids)

    def unknown(self, text: str) -> list[str]:
        """The stretches of `text` the vocabulary lacks (characters never seen in training,
        which encode as <unk>), as they appear in the text."""
        pieces, ids = self.sp.EncodeAsPieces(text), self.sp.EncodeAsIds(text)
        return [piece.lstrip("\u2581") for piece, i in zip(pieces, ids) if i == UNK_ID]

    def encode_sampled(self, texts: list[str], alpha: float, seed: int) -> list[list[int]]:
        """Subword regularization (Kudo 2018): a segmentation sampled from the unigram lattice
        with smoothing `alpha` (BPE: BPE-dropout with drop rate `alpha`); the same seed gives
        the same segmentations."""
        spm.set_random_generator_seed(seed % 2**32)
        return self.sp.Encode(texts, out_type=int, enable_sampling=True, alpha=alpha,
                              nbest_size=-1, num_threads=1)

    def pieces(self, text: str) -> list[str]:
        return self.sp.EncodeAsPieces(text)

    def id_to_piece(self, ids: list[int]) -> list[str]:
        """The pieces of ids, as figures label their tokens (`▁the`, `<unk>`)."""
        return [self.sp.IdToPiece(i) for i in ids]


class WordTokenizer:
    """Whitespace-separated words; out-of-vocabulary words become `<unk>` (a literal `<unk>` in
    the text too, as in PTB and WikiText), and `decode` joins words with single spaces. Keeps
    word-level perplexities comparable with published ones."""

    kind = "word"
    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    def __init__(self, words: list[str], lowercase: bool = False):
        if list(words[:4]) != list(WORD_SPECIALS):
            raise CheckpointError("word vocabulary was not made by lstm-nlp (special ids differ)")
        self.words = list(words)
        self.lowercase = lowercase
        self.index = {w: i for i, w in enumerate(self.words)}
        header = WORD_MAGIC + (b" lowercase" if lowercase else b"") + b"\n"
        self.proto = header + "\n".join(self.words).encode("utf-8")

    @classmethod
    def from_proto(cls, proto: bytes) -> "WordTokenizer":
        header, _, body = proto.partition(b"\n")
        if header not in (WORD_MAGIC, WORD_MAGIC + b" lowercase"):
            raise CheckpointError("word vocabulary is corrupt (bad header)")
        try:
            words = body.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            raise CheckpointError("word vocabulary is corrupt (not UTF-8)") from None
        return cls(words, lowercase=header.endswith(b"lowercase"))

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, min_freq: int,
              lowercase: bool = False) -> "WordTokenizer":
        return cls.from_counts(count_words(texts, lowercase), vocab_size, min_freq, lowercase)

    @classmethod
    def from_counts(cls, counts: collections.Counter, vocab_size: int, min_freq: int,
                    lowercase: bool = False) -> "WordTokenizer":
        """The `vocab_size` most frequent words (0: all) seen at least `min_freq` times; ties are
        broken alphabetically so the vocabulary does not depend on the order of the data (nor on
        how its counting was split between processes)."""
        for special in WORD_SPECIALS:
            counts.pop(special, None)
        ranked = sorted((w for w, c in counts.items() if c >= min_freq),
                        key=lambda w: (-counts[w], w))
        if vocab_size:
            ranked = ranked[: max(vocab_size - len(WORD_SPECIALS), 0)]
        if not ranked:
            raise ConfigError(f"tokenizer: no word occurs at least {min_freq} times in the "
                              "training text")
        return cls(list(WORD_SPECIALS) + ranked, lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def encode(self, texts: list[str]) -> list[list[int]]:
        get, unk = self.index.get, UNK_ID
        if self.lowercase:
            texts = [t.lower() for t in texts]
        return [[get(w, unk) for w in t.split()] for t in texts]

    def unknown(self, text: str) -> list[str]:
        """The words of `text` outside the vocabulary (they encode as <unk>)."""
        index = self.index
        return [w for w in text.split() if (w.lower() if self.lowercase else w) not in index]

    def id_to_piece(self, ids: list[int]) -> list[str]:
        """The words of ids, specials included (`<eos>`, `<unk>`)."""
        return [self.words[i] for i in ids]

    def decode(self, ids: list[list[int]]) -> list[str]:
        words, n = self.words, len(self.words)
        return [" ".join(words[i] for i in row if 3 < i < n or i == UNK_ID) for row in ids]


def count_words(texts: Iterable[str], lowercase: bool) -> collections.Counter:
    """How often each whitespace-separated word occurs (lowercased or not)."""
    return collections.Counter(w for t in texts for w in (t.lower() if lowercase else t).split())


class UnknownText:
    """Input lines with text a tokenizer's vocabulary lacks, counted so that a verb says so
    instead of letting the model drop that text silently; the first one is kept as the
    example."""

    def __init__(self, tok: Tokenizer):
        self.tok, self.lines = tok, 0
        self.example: tuple[int, list[str]] | None = None  # (line number, unknown stretches)

    def check(self, lines: list[str], first_line: int) -> None:
        for number, line in enumerate(lines, start=first_line):
            if (spans := self.tok.unknown(line)):
                self.lines += 1
                self.example = self.example or (number, spans)

    def summary(self, total: int) -> str:
        number, spans = self.example
        shown = ", ".join(repr(s) for s in dict.fromkeys(spans))
        lines = f"{self.lines:,} line{'' if self.lines == 1 else 's'}"
        return (f"{lines} of {total:,} had text the model's vocabulary lacks (first: line "
                f"{number}, {shown[:80]}); the model cannot read it and may drop it or "
                f"mistranslate it (a tokenizer trained with byte_fallback and "
                f"character_coverage below 1 reads unseen characters as bytes)")


def tokenizer_state(tok: Tokenizer) -> dict[str, str | bytes]:
    """What a checkpoint stores of a single tokenizer (`checkpoint.tokenizer_of` reads it)."""
    return {"kind": tok.kind, "model": tok.proto}


def tokenizer_from_state(kind: str, proto: bytes, threads: int = -1) -> Tokenizer:
    """`threads`: a sentencepiece model's batch encoding threads (-1: all cores)."""
    if kind == "word":
        return WordTokenizer.from_proto(bytes(proto))
    if kind == "sentencepiece":
        return SentencePieceTokenizer(bytes(proto), threads)
    raise CheckpointError(f"unknown tokenizer kind {kind!r}")


def load_tokenizer(path: Path) -> Tokenizer:
    data = Path(path).read_bytes()
    return tokenizer_from_state("word" if data.startswith(WORD_MAGIC) else "sentencepiece", data)


@dataclass
class TokenizerPair:
    """Source and target tokenizers; the same object twice when the vocabulary is joint."""

    src: Tokenizer
    tgt: Tokenizer

    @property
    def joint(self) -> bool:
        return self.src is self.tgt

    def to_state(self) -> dict[str, bytes | str]:
        state = {"kind": self.src.kind, "src": self.src.proto}
        if not self.joint:
            state["tgt"] = self.tgt.proto
        return state

    @classmethod
    def from_state(cls, state: dict) -> "TokenizerPair":
        kind = state.get("kind", "sentencepiece")
        src = tokenizer_from_state(kind, state["src"])
        tgt = tokenizer_from_state(kind, state["tgt"]) if "tgt" in state else src
        return cls(src, tgt)


def train_tokenizer(texts: Iterable[str], cfg: TokenizerConfig, seed: int) -> Tokenizer:
    """Train one tokenizer. The texts are read once, in order, and not kept: sentencepiece
    keeps a random sample of `max_sentences` of them (input_sentence_size), the word vocabulary
    their counts, so a corpus larger than memory can be streamed through (data/sources.py)."""
    if cfg.type == "word":
        return WordTokenizer.train(texts, cfg.vocab_size, cfg.min_freq, cfg.lowercase)
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.Train(
            sentence_iterator=iter(texts), model_writer=model, model_type=cfg.type,
            vocab_size=cfg.vocab_size, character_coverage=cfg.character_coverage,
            byte_fallback=cfg.byte_fallback, input_sentence_size=cfg.max_sentences,
            shuffle_input_sentence=True, pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID,
            eos_id=EOS_ID, hard_vocab_limit=False, num_threads=os.cpu_count() or 1,
            normalization_rule_name="nmt_nfkc_cf" if cfg.lowercase else "nmt_nfkc",
            minloglevel=2,
        )
    except RuntimeError as e:
        raise ConfigError(f"tokenizer: sentencepiece could not train with this recipe "
                          f"(vocab_size {cfg.vocab_size}): {str(e).strip()}") from None
    return SentencePieceTokenizer(model.getvalue())


Trainer = Callable[..., Tokenizer]  # (texts, cfg, seed) -> Tokenizer: train_tokenizer's kind


def train_or_load(folder: Path, cfg: TokenizerConfig, src_texts: Iterable[str],
                  tgt_texts: Iterable[str], seed: int, trainer: Trainer = train_tokenizer
                  ) -> TokenizerPair:
    """Load the tokenizers stored in `folder`, or train them from the training texts (lists,
    or corpora that `+` joins) and store them. `trainer` trains one (a token cache's, which
    keeps what it trains for the next run)."""
    folder.mkdir(parents=True, exist_ok=True)
    joint, src_path, tgt_path = folder / "joint.model", folder / "src.model", folder / "tgt.model"
    if cfg.joint:
        if not joint.exists():
            _atomic_write(joint, trainer(src_texts + tgt_texts, cfg, seed).proto)
        tok = load_tokenizer(joint)
        return TokenizerPair(tok, tok)
    if not src_path.exists():
        _atomic_write(src_path, trainer(src_texts, cfg, seed).proto)
    if not tgt_path.exists():
        _atomic_write(tgt_path, trainer(tgt_texts, cfg, seed).proto)
    return TokenizerPair(load_tokenizer(src_path), load_tokenizer(tgt_path))


def train_or_load_one(path: Path, cfg: TokenizerConfig, texts: Iterable[str], seed: int,
                      trainer: Trainer = train_tokenizer) -> Tokenizer:
    """One tokenizer (language model, classifier): load `path`, or train it and store it there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _atomic_write(path, trainer(texts, cfg, seed).proto)
    return load_tokenizer(path)


def save_tokenizer(path: Path, tok: Tokenizer) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, tok.proto)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)

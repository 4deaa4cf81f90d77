"""Sentencepiece tokenizers: trained from the training split on first use, stored in the run folder
and inside every checkpoint (as the serialized model), so a checkpoint alone maps raw text to raw text.

This module is the single source of truth for the special ids and the vocabulary size.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import sentencepiece as spm

from lstm_nlp.config import TokenizerConfig
from lstm_nlp.errors import CheckpointError, ConfigError

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


class Tokenizer:
    """A sentencepiece model; `encode` gives ids without BOS/EOS, `decode` gives detokenized text."""

    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    def __init__(self, proto: bytes):
        self.proto = proto
        self.sp = spm.SentencePieceProcessor()
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

    def pieces(self, text: str) -> list[str]:
        return self.sp.EncodeAsPieces(text)

    @classmethod
    def load(cls, path: Path) -> "Tokenizer":
        return cls(Path(path).read_bytes())


@dataclass
class TokenizerPair:
    """Source and target tokenizers; the same object twice when the vocabulary is joint."""

    src: Tokenizer
    tgt: Tokenizer

    @property
    def joint(self) -> bool:
        return self.src is self.tgt

    def to_state(self) -> dict[str, bytes]:
        state = {"src": self.src.proto}
        if not self.joint:
            state["tgt"] = self.tgt.proto
        return state

    @classmethod
    def from_state(cls, state: dict) -> "TokenizerPair":
        src = Tokenizer(bytes(state["src"]))
        tgt = Tokenizer(bytes(state["tgt"])) if "tgt" in state else src
        return cls(src, tgt)


def train_tokenizer(texts: Iterable[str], cfg: TokenizerConfig, seed: int) -> Tokenizer:
    """Train one sentencepiece model in memory."""
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.Train(
            sentence_iterator=iter(texts), model_writer=model, model_type=cfg.type,
            vocab_size=cfg.vocab_size, character_coverage=cfg.character_coverage,
            byte_fallback=cfg.byte_fallback, input_sentence_size=cfg.max_sentences,
            shuffle_input_sentence=True, pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID,
            eos_id=EOS_ID, hard_vocab_limit=False, num_threads=os.cpu_count() or 1,
            minloglevel=2,
        )
    except RuntimeError as e:
        raise ConfigError(f"tokenizer: sentencepiece could not train with this recipe "
                          f"(vocab_size {cfg.vocab_size}): {str(e).strip()}") from None
    return Tokenizer(model.getvalue())


def train_or_load(folder: Path, cfg: TokenizerConfig, src_texts: list[str],
                  tgt_texts: list[str], seed: int) -> TokenizerPair:
    """Load the tokenizers stored in `folder`, or train them from the training texts and store them."""
    folder.mkdir(parents=True, exist_ok=True)
    joint, src_path, tgt_path = folder / "joint.model", folder / "src.model", folder / "tgt.model"
    if cfg.joint:
        if not joint.exists():
            _atomic_write(joint, train_tokenizer(src_texts + tgt_texts, cfg, seed).proto)
        tok = Tokenizer.load(joint)
        return TokenizerPair(tok, tok)
    if not src_path.exists():
        _atomic_write(src_path, train_tokenizer(src_texts, cfg, seed).proto)
    if not tgt_path.exists():
        _atomic_write(tgt_path, train_tokenizer(tgt_texts, cfg, seed).proto)
    return TokenizerPair(Tokenizer.load(src_path), Tokenizer.load(tgt_path))


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)

"""What `translate` writes beside or instead of plain translations, one block per input line
(empty lines included): Moses n-best lists (--n-best), scores (--scores), Pharaoh word
alignments (--alignments) and the attention of every piece as JSON lines (--attention FILE)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TextIO

from lstm_nlp.data.tokenizer import TokenizerPair
from lstm_nlp.errors import ConfigError
from lstm_nlp.tasks.translate.alignment import hard_links, pharaoh, word_of_piece
from lstm_nlp.tasks.translate.search import Hypothesis
from lstm_nlp.tasks.translate.task import DecodeOptions, translate_hypotheses


@dataclass
class Details:
    """The translate options that ask for more than the best translation."""
    n_best: int | None = None
    scores: bool = False
    alignments: bool = False
    attention: TextIO | None = None   # where the JSON lines go

    @property
    def wanted(self) -> bool:
        return bool(self.n_best or self.scores or self.alignments or self.attention)

    def check(self, beam_size: int) -> None:
        if self.n_best and self.n_best > beam_size:
            raise ConfigError(f"--n-best {self.n_best} needs a beam of {self.n_best} or more "
                              f"(--beam {self.n_best}); the beam is {beam_size}")
        if self.n_best and self.scores:
            raise ConfigError("--n-best lines carry their score already; --scores is for one "
                              "translation per line")


@dataclass
class Entry:
    """One hypothesis as written: detokenized text, log-probability, length-normalised score,
    Pharaoh links ('' when not asked)."""
    text: str
    score: float
    normalized: float
    links: str = ""


def detailed_lines(model, tok: TokenizerPair, lines: list[str], opts: DecodeOptions,
                   details: Details, first: int) -> list[str]:
    """Output lines (newline-ended) for `lines`, numbered from `first` in n-best lists; the
    attention JSON lines go to details.attention. An empty line (nothing to decode) gives the
    empty hypothesis with score 0."""
    src = tok.src.encode(lines)
    found = translate_hypotheses(model, tok, src, opts, details.n_best or 1,
                                 details.alignments or details.attention is not None)
    out = []
    for n, (line, ids, hyps) in enumerate(zip(lines, src, found), start=first):
        entries = _distinct([_entry(tok, line, ids, h, details.alignments) for h in hyps]) \
            or [Entry("", 0.0, 0.0)]
        if details.n_best:
            out += [_nbest_line(n, e, details.alignments) for e in entries]
        else:
            out.append(_columns(entries[0], details))
        if details.attention is not None:
            details.attention.write(_attention_json(n, tok, ids, hyps[0] if hyps else None))
    return out


def _entry(tok: TokenizerPair, line: str, ids: list[int], hyp: Hypothesis, align: bool
           ) -> Entry:
    text = tok.tgt.decode([hyp.tokens])[0]
    links = ""
    if align:
        links = pharaoh(hard_links(hyp.attention, word_of_piece(tok.src, ids, line),
                                   word_of_piece(tok.tgt, hyp.tokens, text)))
    return Entry(text, hyp.score, hyp.normalized, links)


def _distinct(entries: list[Entry]) -> list[Entry]:
    """Hypotheses whose pieces differ can detokenize alike: the best of each text stays."""
    seen: set[str] = set()
    return [e for e in entries if not (e.text in seen or seen.add(e.text))]


def _nbest_line(n: int, e: Entry, align: bool) -> str:
    """Moses n-best: `n ||| hypothesis ||| score` (the length-normalised score, which ranks
    them), and ` ||| links` with --alignments."""
    return f"{n} ||| {e.text} ||| {e.normalized:.4f}" + (f" ||| {e.links}" if align else "") \
        + "\n"


def _columns(e: Entry, details: Details) -> str:
    """translation[<TAB>log-probability<TAB>normalised score][<TAB>links]."""
    fields = [e.text]
    if details.scores:
        fields += [f"{e.score:.4f}", f"{e.normalized:.4f}"]
    if details.alignments:
        fields.append(e.links)
    return "\t".join(fields) + "\n"


def _attention_json(n: int, tok: TokenizerPair, ids: list[int], hyp: Hypothesis | None) -> str:
    """{"sentence", "src" pieces, "tgt" pieces, "attention": one row per target piece over the
    source pieces} of the best hypothesis."""
    weights = [] if hyp is None else [[round(w, 5) for w in row]
                                      for row in hyp.attention.tolist()]
    return json.dumps({"sentence": n, "src": tok.src.id_to_piece(ids),
                       "tgt": tok.tgt.id_to_piece(hyp.tokens) if hyp else [],
                       "attention": weights}, ensure_ascii=False) + "\n"

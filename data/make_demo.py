"""Write the demo translation corpus: English -> German sentences generated from a small grammar.

The German side follows real rules that a model has to learn from context: noun gender picks the
article and the adjective ending, the object takes the accusative (der -> den, ein -> einen), and a
fronted adverbial moves the verb before the subject (verb-second word order). Held-out sentences
are new combinations of known words. The grammar knows which words translate which, so the test
split comes with its gold word alignment (Pharaoh `en-de` word indices, test.align).

    python data/make_demo.py            # writes data/demo/{train,valid,test}.{en,de}, test.align
"""

from __future__ import annotations

import random
from pathlib import Path

NOUNS = [  # English, German, gender
    ("man", "Mann", "m"), ("woman", "Frau", "f"), ("child", "Kind", "n"), ("dog", "Hund", "m"),
    ("cat", "Katze", "f"), ("horse", "Pferd", "n"), ("girl", "Mädchen", "n"),
    ("teacher", "Lehrer", "m"), ("ball", "Ball", "m"), ("book", "Buch", "n"),
    ("car", "Auto", "n"), ("flower", "Blume", "f"), ("apple", "Apfel", "m"),
    ("house", "Haus", "n"), ("bicycle", "Fahrrad", "n"), ("hat", "Hut", "m"),
    ("cup", "Tasse", "f"), ("picture", "Bild", "n"), ("letter", "Brief", "m"),
    ("chair", "Stuhl", "m"), ("table", "Tisch", "m"), ("bird", "Vogel", "m"),
    ("lamp", "Lampe", "f"), ("door", "Tür", "f"), ("bag", "Tasche", "f"),
    ("guitar", "Gitarre", "f"), ("bottle", "Flasche", "f"), ("key", "Schlüssel", "m"),
]
ANIMATE = {"man", "woman", "child", "dog", "cat", "horse", "girl", "teacher", "bird"}
ADJECTIVES = [("red", "rot"), ("big", "groß"), ("small", "klein"), ("old", "alt"),
              ("young", "jung"), ("new", "neu"), ("green", "grün"), ("blue", "blau"),
              ("beautiful", "schön"), ("black", "schwarz"), ("white", "weiß"),
              ("happy", "glücklich")]
VERBS = [("sees", "sieht"), ("holds", "hält"), ("carries", "trägt"), ("finds", "findet"),
         ("buys", "kauft"), ("paints", "malt"), ("likes", "mag"), ("watches", "beobachtet"),
         ("takes", "nimmt"), ("brings", "bringt")]
FRONT = [("today", "heute"), ("now", "jetzt"), ("every day", "jeden Tag"),
         ("in the morning", "am Morgen"), ("in the evening", "am Abend")]
PLACES = [("in the park", "im Park"), ("in the garden", "im Garten"),
          ("on the street", "auf der Straße"), ("at home", "zu Hause"),
          ("in the kitchen", "in der Küche"), ("by the river", "am Fluss")]

ARTICLE = {  # (definite?, case, gender) -> article
    (True, "nom", "m"): "der", (True, "nom", "f"): "die", (True, "nom", "n"): "das",
    (True, "acc", "m"): "den", (True, "acc", "f"): "die", (True, "acc", "n"): "das",
    (False, "nom", "m"): "ein", (False, "nom", "f"): "eine", (False, "nom", "n"): "ein",
    (False, "acc", "m"): "einen", (False, "acc", "f"): "eine", (False, "acc", "n"): "ein",
}
ENDING = {  # adjective ending after the article (weak after der/die/das, mixed after ein)
    (True, "nom", "m"): "e", (True, "nom", "f"): "e", (True, "nom", "n"): "e",
    (True, "acc", "m"): "en", (True, "acc", "f"): "e", (True, "acc", "n"): "e",
    (False, "nom", "m"): "er", (False, "nom", "f"): "e", (False, "nom", "n"): "es",
    (False, "acc", "m"): "en", (False, "acc", "f"): "e", (False, "acc", "n"): "es",
}


Phrase = tuple[list[str], list[str], list[tuple[int, int]]]  # English, German words; links


def noun_phrase(rng: random.Random, case: str, animate: bool) -> Phrase:
    en, de, gender = rng.choice([n for n in NOUNS if (n[0] in ANIMATE) == animate])
    definite = rng.random() < 0.6
    en_words = ["the" if definite else ("an" if en[0] in "aeiou" else "a")]
    de_words = [ARTICLE[definite, case, gender]]
    if rng.random() < 0.6:
        adj_en, adj_de = rng.choice(ADJECTIVES)
        if not definite:
            en_words[0] = "an" if adj_en[0] in "aeiou" else "a"
        en_words.append(adj_en)
        de_words.append(adj_de + ENDING[definite, case, gender])
    words = len(en_words) + 1
    return en_words + [en], de_words + [de], [(i, i) for i in range(words)]


def phrase(en: str, de: str) -> Phrase:
    """A fixed phrase and its word links: word for word, except where German contracts an
    article into its preposition ("in the" -> "im": both English words link to it)."""
    en_words, de_words = en.split(), de.split()
    if len(en_words) == len(de_words):
        return en_words, de_words, [(i, i) for i in range(len(en_words))]
    # one German word fewer: the first two English words share the first German word
    return en_words, de_words, [(0, 0), (1, 0)] + [(i, i - 1) for i in range(2, len(en_words))]


def sentence(rng: random.Random) -> tuple[str, str]:
    en, de, _ = aligned_sentence(rng)
    return en, de


def aligned_sentence(rng: random.Random) -> tuple[str, str, list[tuple[int, int]]]:
    """An English sentence, its German translation and their word links (en, de) by word index
    (the final period stays attached to the last word)."""
    subj = noun_phrase(rng, "nom", animate=True)
    obj = noun_phrase(rng, "acc", animate=rng.random() < 0.3)
    verb = phrase(*rng.choice(VERBS))
    place = phrase(*rng.choice(PLACES)) if rng.random() < 0.4 else ([], [], [])
    if rng.random() < 0.35:  # fronted adverbial: German puts the verb second
        front = phrase(*rng.choice(FRONT))
        en_order, de_order = [front, subj, verb, obj, place], [front, verb, subj, obj, place]
    else:
        en_order, de_order = [subj, verb, obj, place], [subj, verb, obj, place]
    en_at, de_at = _offsets(en_order, 0), _offsets(de_order, 1)
    links = sorted((en_at[id(p)] + i, de_at[id(p)] + j) for p in en_order for i, j in p[2])
    en = " ".join(w for p in en_order for w in p[0])
    de = " ".join(w for p in de_order for w in p[1])
    return _capital(en) + ".", _capital(de) + ".", links


def _offsets(order: list[Phrase], side: int) -> dict[int, int]:
    """Where each phrase's words start in the sentence of one side (0 English, 1 German)."""
    starts, at = {}, 0
    for p in order:
        starts[id(p)] = at
        at += len(p[side])
    return starts


def _capital(text: str) -> str:
    return text[0].upper() + text[1:]


def main(out: Path = Path(__file__).parent / "demo", seed: int = 7) -> None:
    rng = random.Random(seed)
    pairs, seen = [], set()
    while len(pairs) < 7000:
        pair = aligned_sentence(rng)
        if pair[0] not in seen:  # no sentence appears in two splits
            seen.add(pair[0])
            pairs.append(pair)
    splits = {"train": pairs[:6400], "valid": pairs[6400:6700], "test": pairs[6700:]}
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        for side, lang in ((0, "en"), (1, "de")):
            (out / f"{name}.{lang}").write_text("".join(r[side] + "\n" for r in rows),
                                                encoding="utf-8")
    (out / "test.align").write_text("".join(" ".join(f"{i}-{j}" for i, j in r[2]) + "\n"
                                            for r in splits["test"]), encoding="utf-8")
    print(f"wrote {', '.join(f'{k} {len(v)}' for k, v in splits.items())} pairs to {out}")


if __name__ == "__main__":
    main()

"""Write the demo translation corpus: English -> German sentences generated from a small grammar.

The German side follows real rules that a model has to learn from context: noun gender picks the
article and the adjective ending, the object takes the accusative (der -> den, ein -> einen), and a
fronted adverbial moves the verb before the subject (verb-second word order). Held-out sentences
are new combinations of known words.

    python data/make_demo.py            # writes data/demo/{train,valid,test}.{en,de}
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


def noun_phrase(rng: random.Random, case: str, animate: bool) -> tuple[str, str]:
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
    return " ".join(en_words + [en]), " ".join(de_words + [de])


def sentence(rng: random.Random) -> tuple[str, str]:
    subj_en, subj_de = noun_phrase(rng, "nom", animate=True)
    obj_en, obj_de = noun_phrase(rng, "acc", animate=rng.random() < 0.3)
    verb_en, verb_de = rng.choice(VERBS)
    place_en, place_de = rng.choice(PLACES) if rng.random() < 0.4 else ("", "")
    if rng.random() < 0.35:  # fronted adverbial: German puts the verb second
        front_en, front_de = rng.choice(FRONT)
        en = f"{front_en} {subj_en} {verb_en} {obj_en} {place_en}"
        de = f"{front_de} {verb_de} {subj_de} {obj_de} {place_de}"
    else:
        en = f"{subj_en} {verb_en} {obj_en} {place_en}"
        de = f"{subj_de} {verb_de} {obj_de} {place_de}"
    return _capital(en.strip()) + ".", _capital(de.strip()) + "."


def _capital(text: str) -> str:
    return text[0].upper() + text[1:]


def main(out: Path = Path(__file__).parent / "demo", seed: int = 7) -> None:
    rng = random.Random(seed)
    pairs, seen = [], set()
    while len(pairs) < 7000:
        pair = sentence(rng)
        if pair[0] not in seen:  # no sentence appears in two splits
            seen.add(pair[0])
            pairs.append(pair)
    splits = {"train": pairs[:6400], "valid": pairs[6400:6700], "test": pairs[6700:]}
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        for side, lang in ((0, "en"), (1, "de")):
            (out / f"{name}.{lang}").write_text("".join(r[side] + "\n" for r in rows),
                                                encoding="utf-8")
    print(f"wrote {', '.join(f'{k} {len(v)}' for k, v in splits.items())} pairs to {out}")


if __name__ == "__main__":
    main()

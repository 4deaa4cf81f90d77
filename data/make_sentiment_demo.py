"""Write the demo sentiment corpus: short reviews generated from a small grammar, labeled
positive or negative (or neutral: nothing is said about the quality).

The label depends on word order, not only on which words occur: negation flips an opinion
("was not good"), "but" makes the second clause decide ("good but too long" is negative), and
intensifiers and hedges do not change the label. A bag of words cannot get it all right; an LSTM
can.

    python data/make_sentiment_demo.py   # writes data/demo/sentiment/{train,valid,test}.tsv
"""

from __future__ import annotations

import random
from pathlib import Path

SUBJECTS = ["the film", "the movie", "the story", "the acting", "the music", "the ending",
            "the plot", "the cast", "this book", "the show", "the script", "the camera work"]
POSITIVE = ["good", "great", "wonderful", "moving", "funny", "clever", "beautiful", "gripping",
            "charming", "brilliant"]
NEGATIVE = ["bad", "boring", "dull", "awful", "silly", "clumsy", "weak", "tedious", "flat",
            "painful"]
INTENSIFIERS = ["", "", "really ", "very ", "quite ", "truly "]
NEUTRAL = ["was released in {year}", "runs for about two hours", "was shown on a sunday",
           "is based on a novel", "was filmed in {city}", "has a long title"]
CITIES = ["paris", "rome", "berlin", "a small town", "the desert"]
OPENERS = ["", "", "honestly , ", "i think ", "overall , ", "in the end , "]


def clause(rng: random.Random, polarity: int) -> str:
    """A clause with an opinion of the given polarity (+1 or -1), perhaps by negation."""
    subject = rng.choice(SUBJECTS)
    negated = rng.random() < 0.3
    words = POSITIVE if (polarity > 0) != negated else NEGATIVE
    verb = rng.choice(["was", "is"]) + (" not" if negated else "")
    return f"{subject} {verb} {rng.choice(INTENSIFIERS)}{rng.choice(words)}"


def review(rng: random.Random) -> tuple[str, str]:
    r = rng.random()
    opener = rng.choice(OPENERS)
    if r < 0.15:  # nothing about quality
        fact = rng.choice(NEUTRAL).format(year=rng.randint(1950, 2020), city=rng.choice(CITIES))
        return "neutral", f"{opener}{rng.choice(SUBJECTS)} {fact} ."
    polarity = 1 if rng.random() < 0.5 else -1
    if r < 0.55:
        return _label(polarity), f"{opener}{clause(rng, polarity)} ."
    if r < 0.8:  # "A but B": B decides
        return _label(polarity), f"{opener}{clause(rng, -polarity)} , but {clause(rng, polarity)} ."
    return _label(polarity), f"{opener}{clause(rng, polarity)} and {clause(rng, polarity)} ."


def _label(polarity: int) -> str:
    return "positive" if polarity > 0 else "negative"


def main(out: Path = Path(__file__).parent / "demo" / "sentiment", seed: int = 11) -> None:
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < 4000:
        label, text = review(rng)
        if text not in seen:
            seen.add(text)
            rows.append((label, text))
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", rows[:3200]), ("valid", rows[3200:3600]), ("test", rows[3600:])):
        with open(out / f"{name}.tsv", "w", encoding="utf-8") as f:
            f.write("label\ttext\n")
            f.writelines(f"{label}\t{text}\n" for label, text in part)


if __name__ == "__main__":
    main()

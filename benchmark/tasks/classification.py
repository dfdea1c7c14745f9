"""Classification: a short review -> 'positive' or 'negative', where the label needs composition.

Each adjective's polarity must be learned (150 per polarity, Zipfian frequencies, see lexicon.py).
The words alone do not decide the label: negation flips it, "but" hands the verdict to the second
clause, and "i doubt that" / "it is not true that" flip a whole clause. Difficulty levels:
1 = one clause with a polar adjective; 2 = the clause may be negated (the `agreeing_reviews` generator,
`generate_agreeing`: two or three clauses that agree, "the food was good, the room was clean and the staff was warm",
each possibly negated at level 2); 3 = two clauses joined by
"but" (the second decides) or "and" (both agree), or a clause-level negation ("i doubt that ...")
around a level-2 clause; 4 = five verdicts separated by semicolons, each possibly negated, some
inside "i doubt that ...": the majority decides (counting under nested negation). Labels are
balanced by construction.
"""
from __future__ import annotations

import random

from benchmark.tasks.lexicon import Zipf, english_like

LEVELS = 4

POSITIVE = ["good", "great", "fine", "lovely", "superb", "pleasant", "excellent", "fresh", "tasty",
            "friendly", "charming", "brilliant", "warm", "clean", "perfect", "nice"]
NEGATIVE = ["bad", "awful", "poor", "boring", "terrible", "rude", "stale", "dirty", "bland",
            "horrible", "dull", "noisy", "cold", "slow", "weak", "nasty"]
# The polarity of each adjective is a fact to learn: 16 common English words per polarity, then
# English-like words with a fixed polarity, drawn with Zipfian frequencies (see lexicon.py).
_EXTRA = english_like(268, "sentiment", set(POSITIVE) | set(NEGATIVE))
POSITIVE = POSITIVE + _EXTRA[0::2]
NEGATIVE = NEGATIVE + _EXTRA[1::2]
POS_ZIPF, NEG_ZIPF = Zipf(POSITIVE, exponent=1.0), Zipf(NEGATIVE, exponent=1.0)
ITEMS = ["food", "service", "room", "movie", "music", "staff", "view", "coffee", "book", "show",
         "hotel", "meal", "trip", "game", "play", "lesson"]
INTENSIFIERS = ["", "", "very ", "really ", "quite ", "truly "]
COPULA = {("present", False): "is", ("past", False): "was", ("present", True): "is not", ("past", True): "was not"}
OUTER = ["i doubt that", "it is not true that", "nobody would say that", "i do not think that"]
LABELS = ("negative", "positive")


def _clause(rng: random.Random, polarity: bool, may_negate: bool) -> str:
    """A clause whose meaning has the given polarity (True = positive)."""
    negated = may_negate and rng.random() < 0.5
    word_positive = polarity != negated
    adj = (POS_ZIPF if word_positive else NEG_ZIPF).draw(rng)
    tense = rng.choice(["present", "past"])
    return f"the {rng.choice(ITEMS)} {COPULA[(tense, negated)]} {rng.choice(INTENSIFIERS)}{adj}"


def _agreeing(rng: random.Random, polarity: bool, may_negate: bool) -> str:
    """Two or three clauses of the same polarity: "the food was good, the room was clean and the staff was warm"."""
    clauses = [_clause(rng, polarity, may_negate) for _ in range(rng.choice([2, 3]))]
    return ", ".join(clauses[:-1]) + " and " + clauses[-1]


def _verdict(rng: random.Random, polarity: bool) -> str:
    """A clause of the given polarity, possibly wrapped in a clause-level negation."""
    if rng.random() < 0.3:
        return f"{rng.choice(OUTER)} {_clause(rng, not polarity, True)}"
    return _clause(rng, polarity, True)


def _majority(rng: random.Random, polarity: bool) -> str:
    """Five verdicts, three or four of which have the given polarity, in random order."""
    n_with = rng.choice([3, 3, 4])
    verdicts = [polarity] * n_with + [not polarity] * (5 - n_with)
    rng.shuffle(verdicts)
    return "; ".join(_verdict(rng, v) for v in verdicts)


def generate(rng: random.Random, level: int, index: int = 0, *, agreeing: bool = False) -> dict:
    """One (review, label) pair at a difficulty level in 1..LEVELS; the label alternates with index. `agreeing`:
    levels 1-2 are two or three clauses that agree (`generate_agreeing`) instead of one."""
    polarity = index % 2 == 1
    if level <= 2 and agreeing:  # a few clauses that agree in meaning, as a review's sentences do
        text = _agreeing(rng, polarity, may_negate=level == 2)
    elif level == 1:
        text = _clause(rng, polarity, False)
    elif level == 2:
        text = _clause(rng, polarity, True)
    elif level == 3:
        u = rng.random()
        if u < 0.4:  # contrast: the second clause decides
            text = f"{_clause(rng, not polarity, True)} but {_clause(rng, polarity, True)}"
        elif u < 0.7:
            text = f"{_clause(rng, polarity, True)} and {_clause(rng, polarity, True)}"
        else:  # a negation around the whole clause flips it
            text = f"{rng.choice(OUTER)} {_clause(rng, not polarity, True)}"
    else:
        text = _majority(rng, polarity)
    return {"input": text + ".", "target": LABELS[polarity]}


def generate_agreeing(rng: random.Random, level: int, index: int = 0) -> dict:
    """`generate` with levels 1-2 of two or three clauses that agree (the `agreeing_reviews` generator): each adjective
    seen beside others of its polarity, the labels of the easy levels are learned within the default grid's budgets
    (with the label weighed in the training loss: params.yaml's classification task, README "Benchmarks")."""
    return generate(rng, level, index, agreeing=True)

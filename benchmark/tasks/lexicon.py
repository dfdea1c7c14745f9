"""Word lists with Zipfian frequencies: many small facts to learn, so loss falls smoothly with N and D.

Each lexical item (a word's translation, an adjective's polarity) is one "quantum" a model must
learn; drawn with Zipf frequencies, frequent quanta are learned early and rare ones need more data
or more parameters. Michaud et al. 2023 ("The quantization model of neural scaling") show that
such a Zipfian population of quanta yields power-law scaling in both N and D. The frequent end of
each list is real English, the tail is generated English-like words, all fixed (no seed).
"""
from __future__ import annotations

import bisect
import itertools
import random
from typing import Sequence

ZIPF_EXPONENT = 1.1

_ONSETS = ("b bl br c cl cr d dr f fl fr g gl gr h j k l m n p pl pr r s sc sk sl sm sn sp st str sw t tr th "
           "v w wh z").split()
_NUCLEI = "a e i o u a e i o u ai ea ee oo ou oa".split()
_CODAS = ["", "", "b", "ck", "d", "g", "l", "m", "n", "nd", "ng", "nk", "p", "r", "rt", "sh", "st", "t", "x"]


def english_like(n: int, tag: str, avoid: set[str] = frozenset()) -> list[str]:
    """n distinct English-looking pseudo-words (one or two syllables), fixed for a given tag."""
    rng = random.Random(f"lexicon-v2:{tag}")
    out, seen = [], set(avoid)
    while len(out) < n:
        syll = 1 if rng.random() < 0.6 else 2
        w = "".join(rng.choice(_ONSETS) + rng.choice(_NUCLEI) for _ in range(syll)) + rng.choice(_CODAS)
        if 3 <= len(w) <= 9 and w not in seen:
            seen.add(w)
            out.append(w)
    return out


def plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("s", "x", "sh", "ch")) else "s")


def verb_forms(verb: str) -> tuple[str, str, str]:
    """(3rd person singular present, plain present, past) of a regular verb."""
    third = verb + ("es" if verb.endswith(("s", "x", "sh", "ch")) else "s")
    past = verb + ("d" if verb.endswith("e") else "ed")
    return third, verb, past


class Zipf:
    """Draw items with probability proportional to 1 / rank^exponent (rank 1 = first item)."""

    def __init__(self, items: Sequence, exponent: float = ZIPF_EXPONENT):
        self.items = list(items)
        self.cum = list(itertools.accumulate(1.0 / (r + 1) ** exponent for r in range(len(self.items))))

    def draw(self, rng: random.Random):
        return self.items[bisect.bisect_right(self.cum, rng.random() * self.cum[-1])]

    def sample(self, rng: random.Random, k: int) -> list:
        """k distinct items, each drawn with Zipf frequencies."""
        out: list = []
        while len(out) < k:
            x = self.draw(rng)
            if x not in out:
                out.append(x)
        return out

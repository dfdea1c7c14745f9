"""The task suite: generated tasks (unlimited, seeded) and Hugging Face datasets behind one interface.

An example is `{"input": str, "target": str, "difficulty": int}`; its id is the hash of its text,
which is also how validation/test examples are kept out of the training stream.
"""
from __future__ import annotations

import hashlib
import random
from typing import Callable

from benchmark.tasks import classification, summarization, translation

Example = dict  # {"input": str, "target": str, "difficulty": int}

# generator name -> function(rng, difficulty level, example index) -> Example
GENERATORS: dict[str, Callable[[random.Random, int, int], Example]] = {
    "translation": translation.generate,
    "summarization": summarization.generate,
    "classification": classification.generate,
    "agreeing_reviews": classification.generate_agreeing,  # classification whose easy reviews agree (the default's)
}
LEVELS = {"translation": translation.LEVELS, "summarization": summarization.LEVELS,
          "classification": classification.LEVELS, "agreeing_reviews": classification.LEVELS}
# A variant draws from its family's random stream: its examples are the family's wherever the variant does not change
# them (agreeing_reviews: levels 3-4 are classification's own), so two grids that differ by the variant are paired.
STREAM = {"agreeing_reviews": "classification"}
# generator name -> function(target) -> [(start, end, part)]: the named parts of a target (a summary's facts by kind),
# for reading a model's loss by skill (bench/seed_spread.py --parts); generators without one are read by level only
PARTS: dict[str, Callable[[str], list[tuple[int, int, str]]]] = {"summarization": summarization.target_parts}
# The kind of a task decides how it is scored (BLEU, ROUGE, accuracy).
KINDS = ("translation", "summarization", "classification")


def example_id(ex: Example) -> str:
    """Stable id: sha1 of input and target (so identical examples share an id)."""
    return hashlib.sha1(f"{ex['input']}\x1f{ex['target']}".encode()).hexdigest()[:16]


def generated_example(generator: str, seed: int, split: str, index: int) -> Example:
    """The index-th example of a generated split: a pure function of its arguments.

    Difficulty cycles through the levels, so every split is graded evenly; the generator also gets
    the example's number within its level (classification alternates labels with it).
    """
    rng = random.Random(f"{STREAM.get(generator, generator)}:{seed}:{split}:{index}")
    level = 1 + index % LEVELS[generator]
    ex = GENERATORS[generator](rng, level, index // LEVELS[generator])
    ex["difficulty"] = level
    return ex


def generated_split(generator: str, seed: int, split: str, n: int, exclude: set[str] = frozenset()) -> list[Example]:
    """n distinct examples of a split, skipping ids in `exclude` (e.g. validation ids for test)."""
    out, seen, index = [], set(exclude), 0
    while len(out) < n:
        ex = generated_example(generator, seed, split, index)
        index += 1
        eid = example_id(ex)
        if eid in seen:
            continue
        seen.add(eid)
        out.append(ex)
        if index > 50 * n + 1000:
            raise RuntimeError(f"{generator}: cannot draw {n} distinct {split} examples")
    return out

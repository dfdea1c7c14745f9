"""Summarization: a short story about several people -> one sentence with the facts about its protagonist.

The protagonist is the first person named. The summary lists, in story order, every fact whose
subject is the protagonist, and leaves out facts about others, sentences about the weather and
sentences where the protagonist is only the object. Difficulty levels: 1 = two facts and a filler;
2 = three facts and a distractor; 3 = pronouns refer back to the protagonist, two distractors;
4 = four facts, three distractors, and distractors that mention the protagonist as an object.
"""
from __future__ import annotations

import random

LEVELS = 4

WOMEN = ["alice", "carol", "erin", "grace", "irene", "julia", "laura", "nina", "olivia", "rosa"]
MEN = ["bob", "dave", "frank", "henry", "ivan", "jack", "leo", "mark", "oscar", "peter"]
CITIES = ["paris", "rome", "oslo", "lima", "cairo", "tokyo", "delhi", "quito", "vienna", "dublin"]
JOBS = ["nurse", "pilot", "chef", "lawyer", "farmer", "teacher", "baker", "painter", "driver", "singer"]
ITEMS = ["apples", "books", "chairs", "lamps", "shirts", "tickets", "pens", "cups", "plates", "bikes"]
NUMBERS = ["two", "three", "four", "five", "six", "seven", "eight", "nine"]
FOODS = ["tea", "soup", "rice", "cheese", "bread", "fish", "cake", "coffee", "pasta", "honey"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
FILLERS = [
    "the weather was {w} that week.", "it was a {w} day in the city.", "the morning was {w}.",
    "the radio played music all night.", "the shops opened late.", "the trains were late again.",
]
WEATHER = ["cold", "warm", "quiet", "wet", "sunny", "grey", "windy", "foggy"]


def _fact(rng: random.Random, others: list[str], kinds: list[str]) -> tuple[str, str]:
    """A predicate (verb phrase) and its kind; a kind is used once per person."""
    kind = rng.choice(kinds)
    if kind == "city":
        return f"lives in {rng.choice(CITIES)}", kind
    if kind == "job":
        return f"works as a {rng.choice(JOBS)}", kind
    if kind == "buy":
        return f"bought {rng.choice(NUMBERS)} {rng.choice(ITEMS)}", kind
    if kind == "visit":
        return f"visited {rng.choice(others)} on {rng.choice(DAYS)}", kind
    return f"likes {rng.choice(FOODS)}", kind


def _facts(rng: random.Random, n: int, others: list[str]) -> list[str]:
    kinds, out = ["city", "job", "buy", "visit", "food"], []
    for _ in range(n):
        pred, kind = _fact(rng, others, kinds)
        kinds.remove(kind)
        out.append(pred)
    return out


def generate(rng: random.Random, level: int, index: int = 0) -> dict:
    """One (story, summary) pair at a difficulty level in 1..LEVELS."""
    n_facts, n_distract, n_fill, pronouns, object_mentions = {
        1: (2, 0, 1, False, False), 2: (3, 1, 1, False, False),
        3: (3, 2, 1, True, False), 4: (4, 3, 1, True, True),
    }[level]
    woman = rng.random() < 0.5
    hero = rng.choice(WOMEN if woman else MEN)
    pronoun = "she" if woman else "he"
    # With pronouns, the other people are of the other gender, so "she"/"he" is unambiguous.
    people = (MEN if woman else WOMEN) if pronouns else [p for p in WOMEN + MEN if p != hero]
    others = rng.sample(people, 3)
    facts = _facts(rng, n_facts, others)
    # Story: the hero's first fact opens it; the other sentences are shuffled after it.
    hero_sents = [(f"{hero} {facts[0]}.", True)]
    for pred in facts[1:]:
        subj = pronoun if pronouns and rng.random() < 0.6 else hero
        hero_sents.append((f"{subj} {pred}.", True))
    noise = []
    for i in range(n_distract):
        who = others[i % len(others)]
        if object_mentions and i == 0:
            noise.append(f"{who} visited {hero} on {rng.choice(DAYS)}.")
        else:
            noise.append(f"{who} {_facts(rng, 1, [p for p in [hero] + others if p != who])[0]}.")
    for _ in range(n_fill):
        noise.append(rng.choice(FILLERS).format(w=rng.choice(WEATHER)))
    # Interleave keeping the hero's facts in order; the first sentence is always the hero's.
    rest = [s for s, _ in hero_sents[1:]]
    slots = rest + noise
    order = list(range(len(slots)))
    rng.shuffle(order)
    hero_positions = sorted(order[: len(rest)])
    story_tail = [None] * len(slots)
    for pos, sent in zip(hero_positions, rest):
        story_tail[pos] = sent
    noise_iter = iter(noise)
    story_tail = [s if s is not None else next(noise_iter) for s in story_tail]
    story = [hero_sents[0][0]] + story_tail
    if len(facts) == 1:
        summary = f"{hero} {facts[0]}."
    else:
        summary = f"{hero} " + ", ".join(facts[:-1]) + f" and {facts[-1]}."
    return {"input": " ".join(story), "target": summary}

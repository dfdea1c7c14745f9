"""Summarization: a short story about several people -> one sentence with the facts about its protagonist.

The protagonist is the first person named. The summary is their profile: every fact whose subject
is the protagonist, in a fixed order of kinds (where they live, their work, purchases, visits,
tastes) whatever order the story told them in, leaving out facts about others, sentences about the
weather, sentences where the protagonist is only the object and what they do not do; a fact revised
later in the story ("she later moved to rome") is summarised by its latest value. The profile is
terse and abstracts: "in france; at hospital; bought 6 cups; met bob on monday; likes tea." — a city
becomes its country, a job its workplace (facts to learn, Zipfian), numbers become digits. Difficulty
levels: 1 = two facts and a filler; 2 = three facts and a distractor; 3 = four facts, pronouns, two
distractors, a revision; 4 = five facts, three distractors, a revision, a negated fact, and a
distractor with the protagonist as its object.

The profile does not open with the protagonist's name (until 2026-12-01 it did, "erin: in france; ..."):
copying the story's first word was one skill, worth about 5 % of the validation loss, that each seed
learned at its own moment, and the grid's largest source of seed noise (params.yaml's `data` comment).
"""
from __future__ import annotations

import random

from benchmark.tasks.lexicon import Zipf, english_like

LEVELS = 4

WOMEN = ["alice", "carol", "erin", "grace", "irene", "julia", "laura", "nina", "olivia", "rosa"]
MEN = ["bob", "dave", "frank", "henry", "ivan", "jack", "leo", "mark", "oscar", "peter"]
# The profile says where and at what kind of place someone works, not the city and job the story
# names: each city's country and each job's workplace is a fact to learn. Common English first, then
# English-like names, drawn with Zipfian frequencies (see lexicon.py).
COUNTRY = {"paris": "france", "rome": "italy", "oslo": "norway", "lima": "peru", "cairo": "egypt",
           "tokyo": "japan", "delhi": "india", "quito": "ecuador", "vienna": "austria", "dublin": "ireland"}
WORKPLACE = {"nurse": "hospital", "pilot": "airport", "chef": "kitchen", "lawyer": "court", "farmer": "farm",
             "teacher": "school", "baker": "bakery", "painter": "studio", "driver": "garage", "singer": "theatre"}
_TAKEN = set(COUNTRY) | set(COUNTRY.values()) | set(WORKPLACE) | set(WORKPLACE.values())
_COUNTRIES = english_like(20, "countries", _TAKEN)
_PLACES = english_like(15, "workplaces", _TAKEN | set(_COUNTRIES))
_rng = random.Random("summarization-lexicon-v1")
COUNTRY.update({c: _rng.choice(_COUNTRIES) for c in english_like(190, "cities", _TAKEN | set(_COUNTRIES) | set(_PLACES))})
WORKPLACE.update({j + "er" if not j.endswith("er") else j: _rng.choice(_PLACES)
                  for j in english_like(110, "jobs", _TAKEN | set(COUNTRY) | set(_COUNTRIES) | set(_PLACES))})
CITIES, JOBS = list(COUNTRY), list(WORKPLACE)
CITY_ZIPF, JOB_ZIPF = Zipf(CITIES, exponent=1.0), Zipf(JOBS, exponent=1.0)
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
        return f"lives in {CITY_ZIPF.draw(rng)}", kind
    if kind == "job":
        return f"works as a {JOB_ZIPF.draw(rng)}", kind
    if kind == "buy":
        return f"bought {rng.choice(NUMBERS)} {rng.choice(ITEMS)}", kind
    if kind == "visit":
        return f"visited {rng.choice(others)} on {rng.choice(DAYS)}", kind
    return f"likes {rng.choice(FOODS)}", kind


KIND_ORDER = ("city", "job", "buy", "visit", "food")  # the order of facts in a summary


def _facts(rng: random.Random, n: int, others: list[str]) -> list[tuple[str, str]]:
    """n (predicate, kind) pairs of distinct kinds, in random order."""
    kinds, out = list(KIND_ORDER), []
    for _ in range(n):
        pred, kind = _fact(rng, others, kinds)
        kinds.remove(kind)
        out.append((pred, kind))
    return out


DIGITS = {w: str(i) for i, w in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])}


def _update(rng: random.Random, pred: str, kind: str) -> tuple[str, str] | None:
    """(story sentence predicate, new summary predicate) revising a city or job fact, else None."""
    if kind == "city":
        new = next(c for c in iter(lambda: CITY_ZIPF.draw(rng), None) if not pred.endswith(" " + c))
        return f"later moved to {new}", f"lives in {new}"
    if kind == "job":
        new = next(j for j in iter(lambda: JOB_ZIPF.draw(rng), None) if not pred.endswith(" " + j))
        return f"now works as a {new}", f"works as a {new}"
    return None


def _profile(pred: str) -> str:
    """The summary's terse form of a fact: the country of the city, the workplace of the job, numbers
    as digits ("lives in paris" -> "in france", "works as a nurse" -> "at hospital", "visited bob on
    monday" -> "met bob on monday", "bought six cups" -> "bought 6 cups")."""
    if pred.startswith("lives in "):
        return "in " + COUNTRY[pred[len("lives in "):]]
    if pred.startswith("works as a "):
        return "at " + WORKPLACE[pred[len("works as a "):]]
    if pred.startswith("visited "):
        return "met " + pred[len("visited "):]
    return " ".join(DIGITS.get(w, w) for w in pred.split())


def generate(rng: random.Random, level: int, index: int = 0) -> dict:
    """One (story, summary) pair at a difficulty level in 1..LEVELS."""
    n_facts, n_distract, n_fill, pronouns, object_mentions = {
        1: (2, 0, 1, False, False), 2: (3, 1, 1, False, False),
        3: (4, 2, 1, True, False), 4: (5, 3, 1, True, True),
    }[level]
    woman = rng.random() < 0.5
    hero = rng.choice(WOMEN if woman else MEN)
    pronoun = "she" if woman else "he"
    # With pronouns, the other people are of the other gender, so "she"/"he" is unambiguous.
    people = (MEN if woman else WOMEN) if pronouns else [p for p in WOMEN + MEN if p != hero]
    others = rng.sample(people, 3)
    pairs = _facts(rng, n_facts, others)
    subj = lambda: pronoun if pronouns and rng.random() < 0.6 else hero  # noqa: E731
    # The hero's sentences in story order: the first opens the story.
    hero_sents = [f"{hero} {pairs[0][0]}."] + [f"{subj()} {pred}." for pred, _ in pairs[1:]]
    current = {kind: pred for pred, kind in pairs}
    if level >= 3:  # a later sentence revises where the hero lives or works: the summary keeps the latest
        revisable = [i for i, (_, kind) in enumerate(pairs) if kind in ("city", "job")]
        if revisable:
            i = rng.choice(revisable)
            told, kept = _update(rng, *pairs[i])
            hero_sents.insert(i + 1 + rng.randint(0, len(pairs) - 1 - i), f"{subj()} {told}.")
            current[pairs[i][1]] = kept
    if level == 4:  # what the hero does not do is not part of the profile
        liked = current.get("food", "")
        hero_sents.insert(rng.randint(1, len(hero_sents)),
                          f"{subj()} does not like {rng.choice([f for f in FOODS if not liked.endswith(' ' + f)])}.")
    noise = []
    for i in range(n_distract):
        who = others[i % len(others)]
        if object_mentions and i == 0:
            noise.append(f"{who} visited {hero} on {rng.choice(DAYS)}.")
        else:
            noise.append(f"{who} {_facts(rng, 1, [p for p in [hero] + others if p != who])[0][0]}.")
    for _ in range(n_fill):
        noise.append(rng.choice(FILLERS).format(w=rng.choice(WEATHER)))
    # Interleave the rest, keeping the hero's sentences in order.
    rest = hero_sents[1:]
    order = list(range(len(rest) + len(noise)))
    rng.shuffle(order)
    tail: list[str | None] = [None] * len(order)
    for pos, sent in zip(sorted(order[: len(rest)]), rest):
        tail[pos] = sent
    noise_iter = iter(noise)
    story = [hero_sents[0]] + [t if t is not None else next(noise_iter) for t in tail]
    # The summary is a profile: facts in a fixed order of kinds (where, work, purchases, visits,
    # tastes), whatever order the story told them in, with numbers as digits.
    facts = [_profile(current[kind]) for kind in KIND_ORDER if kind in current]
    summary = "; ".join(facts) + "."  # no "name:" head (the module's docstring says why)
    return {"input": " ".join(story), "target": summary}


# The profile's form of each kind of fact opens with these words (_profile): how a summary's parts are told apart.
_PART_OF = (("in ", "city"), ("at ", "job"), ("bought ", "buy"), ("met ", "visit"), ("likes ", "food"))


def target_parts(target: str) -> list[tuple[int, int, str]]:
    """(start, end, part) character spans of a summary: one span per fact named by its kind (KIND_ORDER), each with
    the space before it and its ';' or closing '.', after a "name" span (the protagonist and its colon) where the
    summary opens with one (summaries generated before 2026-12-01 did). The spans cover the summary; how a model's
    loss divides over them shows which skill it has learned (mapping a city to its country, copying a number or a
    food)."""
    head = target.split(";")[0].find(":")
    spans, start = ([(0, head + 1, "name")], head + 1) if head >= 0 else ([], 0)
    while start < len(target):
        end = target.find(";", start)
        end = len(target) if end < 0 else end + 1
        fact = target[start:end].strip()
        spans.append((start, end, next((kind for word, kind in _PART_OF if fact.startswith(word)), "other")))
        start = end
    return spans

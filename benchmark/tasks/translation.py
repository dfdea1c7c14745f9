"""Translation from a fragment of English into an invented verb-final language.

The target language has real structure for a model to learn:
- a lexicon: every English lemma has a fixed target stem; words are drawn with Zipfian
  frequencies from ~550 lemmas (common English first, English-like words in the tail), so there
  is always more vocabulary to learn (see lexicon.py);
- word order: subject - place - object - verb (SOV), adjectives after the noun, postpositions,
  and definiteness as a particle after the noun phrase;
- agreement: nouns mark plural, adjectives agree with their noun in gender and number, verbs agree
  with the subject in person and number and mark tense, and objects carry a case particle.
Difficulty levels: 1 = subject + intransitive verb; 2 = + object, plurals, pronouns;
3 = + adjectives, a place phrase and negation; 4 = two clauses joined by a conjunction.
"""
from __future__ import annotations

import random

from benchmark.tasks.lexicon import Zipf, english_like, plural, verb_forms

LEVELS = 4

NOUNS = [  # (singular, plural)
    ("dog", "dogs"), ("cat", "cats"), ("bird", "birds"), ("horse", "horses"), ("farmer", "farmers"),
    ("teacher", "teachers"), ("king", "kings"), ("queen", "queens"), ("doctor", "doctors"),
    ("baker", "bakers"), ("girl", "girls"), ("boy", "boys"), ("wolf", "wolves"), ("fox", "foxes"),
    ("mouse", "mice"), ("child", "children"), ("friend", "friends"), ("sailor", "sailors"),
    ("soldier", "soldiers"), ("goat", "goats"), ("rabbit", "rabbits"), ("painter", "painters"),
    ("man", "men"), ("woman", "women"),
]
PLACES = ["garden", "forest", "river", "house", "market", "city", "field", "school", "village", "castle"]
ADJECTIVES = ["big", "small", "old", "young", "red", "happy", "angry", "quiet", "brave", "clever",
              "tired", "hungry", "kind", "lazy", "strong", "poor"]
# lemma: (3sg present, plural present, past)
TRANSITIVE = {
    "see": ("sees", "see", "saw"), "chase": ("chases", "chase", "chased"), "help": ("helps", "help", "helped"),
    "follow": ("follows", "follow", "followed"), "call": ("calls", "call", "called"),
    "find": ("finds", "find", "found"), "love": ("loves", "love", "loved"), "watch": ("watches", "watch", "watched"),
    "feed": ("feeds", "feed", "fed"), "visit": ("visits", "visit", "visited"), "greet": ("greets", "greet", "greeted"),
    "paint": ("paints", "paint", "painted"),
}
INTRANSITIVE = {
    "sleep": ("sleeps", "sleep", "slept"), "run": ("runs", "run", "ran"), "sing": ("sings", "sing", "sang"),
    "walk": ("walks", "walk", "walked"), "swim": ("swims", "swim", "swam"), "laugh": ("laughs", "laugh", "laughed"),
    "wait": ("waits", "wait", "waited"), "dance": ("dances", "dance", "danced"),
}
_REAL = {w for w, _ in NOUNS} | set(PLACES) | set(ADJECTIVES) | set(TRANSITIVE) | set(INTRANSITIVE)
NOUNS += [(w, plural(w)) for w in english_like(276, "nouns", _REAL)]
PLACES += english_like(30, "places", _REAL)
ADJECTIVES += english_like(84, "adjectives", _REAL)
TRANSITIVE.update({w: verb_forms(w) for w in english_like(68, "transitive", _REAL)})
INTRANSITIVE.update({w: verb_forms(w) for w in english_like(22, "intransitive", _REAL)})
NOUN_ZIPF, PLACE_ZIPF, ADJ_ZIPF = Zipf(NOUNS), Zipf(PLACES), Zipf(ADJECTIVES)
TRANSITIVE_ZIPF, INTRANSITIVE_ZIPF = Zipf(list(TRANSITIVE)), Zipf(list(INTRANSITIVE))
PREPOSITIONS = ["in", "near", "behind"]
CONJUNCTIONS = ["and", "because", "but"]
# pronoun: (person, number, object form)
PRONOUNS = {"i": (1, "sg", "me"), "you": (2, "sg", "you"), "he": (3, "sg", "him"), "she": (3, "sg", "her"),
            "we": (1, "pl", "us"), "they": (3, "pl", "them")}
BE_3SG = {"sg": "does", "pl": "do"}

# --- the invented target lexicon: fixed, generated once from syllables -------------------------
_ONSETS = "b d f g k l m n p r s t v z".split()
_VOWELS = "a e i o u".split()


def _make_lexicon() -> dict[str, str]:
    rng = random.Random("translation-lexicon-v2")
    lemmas = ([s for s, _ in NOUNS] + PLACES + ADJECTIVES + list(TRANSITIVE) + list(INTRANSITIVE)
              + PREPOSITIONS + CONJUNCTIONS + list(PRONOUNS))
    used, lex = set(), {}
    for lemma in lemmas:
        while True:
            n_syll = (2 if rng.random() < 0.7 else 3) if lemma not in PREPOSITIONS + CONJUNCTIONS else 1
            word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(n_syll))
            if lemma in PREPOSITIONS + CONJUNCTIONS:
                word += rng.choice("mnr")
            if word not in used:
                used.add(word)
                lex[lemma] = word
                break
    return lex


LEXICON = _make_lexicon()
GENDER = {s: i % 2 for i, (s, _) in enumerate(NOUNS)} | {p: (i + 1) % 2 for i, p in enumerate(PLACES)}
NOUN_PLURAL = "i"  # suffix
ADJ_SUFFIX = {(0, "sg"): "a", (0, "pl"): "an", (1, "sg"): "e", (1, "pl"): "en"}
VERB_SUFFIX = {  # (tense, person, number)
    ("present", 1, "sg"): "m", ("present", 2, "sg"): "s", ("present", 3, "sg"): "t",
    ("present", 1, "pl"): "mo", ("present", 2, "pl"): "so", ("present", 3, "pl"): "to",
    ("past", 1, "sg"): "mi", ("past", 2, "sg"): "si", ("past", 3, "sg"): "ti",
    ("past", 1, "pl"): "mu", ("past", 2, "pl"): "su", ("past", 3, "pl"): "tu",
}
DEFINITE, OBJECT, NEGATION = "na", "wo", "ke"


def _noun_phrase(rng: random.Random, level: int, pronoun_ok: bool, role: str, places: bool = False):
    """Returns (english words, target words, person, number)."""
    if pronoun_ok and not places and rng.random() < 0.25:
        pron = rng.choice(list(PRONOUNS))
        person, number, obj_form = PRONOUNS[pron]
        src = [obj_form if role == "object" else pron]
        tgt = [LEXICON[pron] + ("o" if role == "object" else "")]
        return src, tgt, person, number
    if places:
        lemma, plural, number = PLACE_ZIPF.draw(rng), None, "sg"
    else:
        lemma, plural = NOUN_ZIPF.draw(rng)
        number = "pl" if level >= 2 and rng.random() < 0.4 else "sg"
    definite = rng.random() < 0.6
    n_adj = rng.choice([0, 1, 1, 2]) if level >= 3 else 0
    adjs = ADJ_ZIPF.sample(rng, n_adj)
    det = "the" if definite else ("a" if number == "sg" else "some")
    if not definite and number == "pl":
        det = rng.choice(["some", ""])
    head = adjs + [plural if number == "pl" else lemma]
    if det == "a" and head[0][0] in "aeiou":
        det = "an"
    src = ([det] if det else []) + head
    gender = GENDER[lemma]
    tgt = [LEXICON[lemma] + (NOUN_PLURAL if number == "pl" else "")]
    tgt += [LEXICON[a] + ADJ_SUFFIX[(gender, number)] for a in adjs]
    if definite:
        tgt.append(DEFINITE)
    return src, tgt, 3, number


def _verb_form(forms: tuple[str, str, str], tense: str, person: int, number: str, negated: bool) -> list[str]:
    third_sg, plain, past = forms
    if negated:
        aux = "did" if tense == "past" else ("does" if (person, number) == (3, "sg") else "do")
        return [aux, "not", plain]
    if tense == "past":
        return [past]
    return [third_sg if (person, number) == (3, "sg") else plain]


def _clause(rng: random.Random, level: int) -> tuple[list[str], list[str]]:
    subj_src, subj_tgt, person, number = _noun_phrase(rng, level, level >= 2, "subject")
    tense = rng.choice(["present", "past"])
    transitive = level >= 2 and rng.random() < 0.75
    lemma = (TRANSITIVE_ZIPF if transitive else INTRANSITIVE_ZIPF).draw(rng)
    forms = (TRANSITIVE if transitive else INTRANSITIVE)[lemma]
    negated = level >= 3 and rng.random() < 0.3
    src, tgt = list(subj_src), list(subj_tgt)
    obj_src, obj_tgt = [], []
    if transitive:
        obj_src, obj_tgt, _, _ = _noun_phrase(rng, level, True, "object")
        obj_tgt = obj_tgt + [OBJECT]
    place_src, place_tgt = [], []
    if level >= 3 and rng.random() < 0.5:
        prep = rng.choice(PREPOSITIONS)
        p_src, p_tgt, _, _ = _noun_phrase(rng, level, False, "place", places=True)
        place_src, place_tgt = [prep] + p_src, p_tgt + [LEXICON[prep]]
    src += _verb_form(forms, tense, person, number, negated) + obj_src + place_src
    verb = LEXICON[lemma] + VERB_SUFFIX[(tense, person, number)]
    tgt += place_tgt + obj_tgt + [verb] + ([NEGATION] if negated else [])
    return src, tgt


def generate(rng: random.Random, level: int, index: int = 0) -> dict:
    """One (english, target) pair at a difficulty level in 1..LEVELS."""
    if level <= 3:
        src, tgt = _clause(rng, level)
    else:
        conj = rng.choice(CONJUNCTIONS)
        s1, t1 = _clause(rng, 3)
        s2, t2 = _clause(rng, rng.choice([2, 3]))
        src, tgt = s1 + [conj] + s2, t1 + [LEXICON[conj]] + t2
    return {"input": " ".join(src) + ".", "target": " ".join(tgt) + "."}

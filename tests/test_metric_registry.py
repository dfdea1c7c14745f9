"""The metric registry is the one description of every metric: the card, the schema and collect read it,
and the code that computes each standard error does what the registry (and so the card) says."""
from __future__ import annotations

import html
import math
import re

import numpy as np
import pytest

from benchmark.reporting import card
from benchmark.stages import collect
from benchmark.evaluation import metrics
from benchmark.results import schema
from benchmark.evaluation.metrics import METRICS

HYP = ["the cat sat on the mat", "a dog runs in the park today", "it rains", "birds sing at dawn", "we eat bread"]
REF = ["the cat sat on a mat", "a dog ran in the park", "it rains hard", "birds sing at dusk", "we eat rice"]
ROW = re.compile(r"^\| `(?P<name>[^`]+)` \| (?P<unit>[^|]*) \| (?P<better>[^|]*) \| (?P<se>(?:[^|\\]|\\.)*) \|$")


def _unescape(text: str) -> str:
    return html.unescape(re.sub(r"\\(.)", r"\1", text)).strip()


def _card_rows(signatures: dict[str, str]) -> dict[str, dict[str, str]]:
    text = card.render(tables=[], repo_id="org/x", git_sha="abc", fit_method="-", metric_signatures=signatures)
    section = text[text.index("## Metrics and standard errors\n"):]
    section = section[:section.index("\n## ", 1)]
    return {m["name"]: m.groupdict() for line in section.splitlines() if (m := ROW.match(line))}


def _scores() -> dict[str, metrics.Score]:
    out = {s.metric: s for s in metrics.rouge(HYP, REF)}
    out["bleu"] = metrics.bleu(HYP, REF, bootstrap=50, seed=3)
    out["accuracy"] = metrics.accuracy(["positive", "negative", "positive"], ["positive", "positive", "positive"])
    return out


def test_card_states_each_standard_error_as_the_registry_does():
    scores = _scores()
    rows = _card_rows({k: s.signature for k, s in scores.items()} | {"val_loss": metrics.loss_signature("text")})
    assert list(rows) == list(METRICS)  # every registered metric, in registry order
    for name, m in METRICS.items():
        row = rows[name]
        assert _unescape(row["se"]) == m.stderr
        assert _unescape(row["unit"]) == m.unit
        assert row["better"].strip() == ("higher" if m.higher_is_better else "lower")


def test_schema_describes_each_standard_error_from_the_registry():
    stderr = next(c for c in schema.columns("metrics") if c.name == "stderr").description
    metric = next(c for c in schema.columns("metrics") if c.name == "metric").description
    for m in METRICS.values():
        assert m.stderr in stderr and f"'{m.name}' ({m.unit};" in metric
    assert "bootstrap" not in stderr.split("rouge1")[1]  # ROUGE's SE is std/sqrt(n), not a bootstrap


def test_signatures_carry_the_registry_standard_error():
    for name, s in _scores().items():
        assert METRICS[name].se_code in s.signature, (name, s.signature)
    assert metrics.loss_signature("target").endswith("se:" + METRICS["val_loss"].se_code)


def test_each_standard_error_is_computed_as_described():
    from rouge_score import rouge_scorer

    scores = _scores()
    scorer = rouge_scorer.RougeScorer(list(metrics.ROUGE_TYPES), use_stemmer=True)
    for t in metrics.ROUGE_TYPES:  # std / sqrt(n) of the per-example F-measures
        f = np.array([scorer.score(r, h)[t].fmeasure * 100 for h, r in zip(HYP, REF)])
        assert scores[t].stderr == pytest.approx(f.std(ddof=1) / math.sqrt(f.size), rel=1e-12)
    assert scores["accuracy"].stderr == pytest.approx(math.sqrt((2 / 3) * (1 / 3) / 3) * 100, rel=1e-12)
    # BLEU: a seeded bootstrap over examples (same seed, same SE; another seed, another SE)
    assert metrics.bleu(HYP, REF, bootstrap=50, seed=3).stderr == scores["bleu"].stderr
    assert metrics.bleu(HYP, REF, bootstrap=50, seed=4).stderr != scores["bleu"].stderr
    assert metrics.bleu(HYP, REF, bootstrap=0).stderr is None
    # val_loss: cluster-robust (by example) SE of the ratio sum(s)/sum(c)
    s, c = np.array([3.0, 5.0, 2.0, 7.0]), np.array([2.0, 3.0, 1.0, 4.0])
    mean, se = metrics.token_weighted_loss(s, c)
    n = s.size
    assert mean == pytest.approx(s.sum() / c.sum())
    assert se == pytest.approx(math.sqrt(n / (n - 1) * ((s - mean * c) ** 2).sum()) / c.sum())


def test_scoring_and_collect_read_the_registry():
    for kind in ("translation", "summarization", "classification"):
        names = [s.metric for s in metrics.for_kind(kind, HYP[:3], REF[:3], bootstrap=0)]
        assert tuple(names) == metrics.for_task_kind(kind)
    assert [(m.name, m.headline_task) for m in metrics.headline()] == [
        ("val_loss", "all"), ("bleu", "translation"), ("rougeL", "summarization"), ("accuracy", "classification")]
    assert not hasattr(collect, "REQUIRED")
    with pytest.raises(ValueError, match="unknown task kind"):
        metrics.for_kind("poetry", [], [])

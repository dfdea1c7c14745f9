"""Metrics against hand-checkable values and against the reference implementations."""
from __future__ import annotations

import math
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from benchmark.evaluation import metrics
from benchmark.results.parquet import table_to_arrow, write_parquet_atomic
from benchmark.tasks import generated_split

REFS = [e["target"] for e in generated_split("translation", 1, "test", 60)]


def _noisy(refs: list[str], seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for r in refs:
        words = r.split()
        for i in range(len(words)):
            if rng.random() < 0.3:
                words[i] = rng.choice(["ka", "lo", "mi", words[i]])
        if rng.random() < 0.2:
            words = words[:-1]
        out.append(" ".join(words))
    return out


def test_bleu_perfect_and_disjoint():
    assert metrics.bleu(REFS, REFS, bootstrap=0).value == pytest.approx(100.0)
    assert metrics.bleu(["zz yy xx ww"] * len(REFS), REFS, bootstrap=0).value == pytest.approx(0.0)


def test_bleu_equals_the_sacrebleu_cli_on_saved_predictions(tmp_path):
    hyps = _noisy(REFS, 0)
    rows = [{"source": "local", "run_id": "r", "task": "translation", "example_id": str(i), "difficulty": 1,
             "input": "x", "reference": r, "prediction": h} for i, (r, h) in enumerate(zip(REFS, hyps))]
    path = tmp_path / "predictions.parquet"
    write_parquet_atomic(table_to_arrow(rows, "predictions"), path)
    saved = pq.read_table(path).to_pylist()
    ours = metrics.score_predictions(saved, {"translation": "translation"}, "r", bootstrap=50, seed=0)[0]
    (tmp_path / "ref.txt").write_text("\n".join(r["reference"] for r in saved) + "\n")
    (tmp_path / "hyp.txt").write_text("\n".join(r["prediction"] for r in saved) + "\n")
    cli = shutil.which("sacrebleu", path=str(Path(sys.executable).parent)) or "sacrebleu"
    out = subprocess.run([cli, str(tmp_path / "ref.txt"), "-i", str(tmp_path / "hyp.txt"), "-b", "-w", "4"],
                         capture_output=True, text=True, check=True).stdout
    assert 5 < ours["value"] < 95  # a partial match, so the comparison means something
    assert abs(ours["value"] - float(out.strip())) <= 0.01
    assert ours["signature"].startswith("sacrebleu:nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert 0 < ours["stderr"] < 10


def test_rouge_equals_rouge_score_to_1e6():
    from rouge_score import rouge_scorer

    refs = [e["target"] for e in generated_split("summarization", 2, "test", 50)]
    preds = _noisy(refs, 1)
    ours = {s.metric: s for s in metrics.rouge(preds, refs)}
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    for t in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        ref_vals = [scorer.score(r, p)[t].fmeasure * 100 for r, p in zip(refs, preds)]
        assert abs(ours[t].value - float(np.mean(ref_vals))) < 1e-6
        assert ours[t].stderr == pytest.approx(np.std(ref_vals, ddof=1) / math.sqrt(len(refs)))
        assert 10 < ours[t].value < 100
    perfect = {s.metric: s.value for s in metrics.rouge(refs, refs)}
    assert all(v == pytest.approx(100.0) for v in perfect.values())


def test_accuracy_and_its_standard_error_by_hand():
    s = metrics.accuracy(["positive", " negative ", "positive", "x"], ["positive", "negative", "negative", "x"])
    assert s.value == pytest.approx(75.0)
    assert s.stderr == pytest.approx(math.sqrt(0.75 * 0.25 / 4) * 100)


def test_token_weighted_loss():
    mean, se = metrics.token_weighted_loss(np.array([2.0, 6.0]), np.array([1, 3]))
    assert mean == pytest.approx(2.0)
    assert se == pytest.approx(0.0)
    mean, se = metrics.token_weighted_loss(np.array([1.0, 3.0, 2.0]), np.array([1, 1, 1]))
    assert mean == pytest.approx(2.0) and se == pytest.approx(math.sqrt(1.5 * 2) / 3)


def test_token_weighted_loss_stratified_by_task():
    # two tasks of fixed size, each constant within: the difference between tasks is design, not sampling noise
    s, c, task = np.array([1.0, 1.0, 4.0, 4.0]), np.ones(4), ["a", "a", "b", "b"]
    mean, pooled = metrics.token_weighted_loss(s, c)
    assert mean == pytest.approx(2.5) and pooled == pytest.approx(math.sqrt(4 / 3 * 9) / 4)
    assert metrics.token_weighted_loss(s, c, strata=task) == (pytest.approx(2.5), pytest.approx(0.0))
    # by hand: residuals d = s - R c centred within each stratum, n_h / (n_h - 1) per stratum
    s, c = np.array([3.0, 5.0, 2.0, 7.0, 1.0, 4.0]), np.array([2.0, 3.0, 1.0, 4.0, 1.0, 2.0])
    task = ["x", "x", "x", "y", "y", "y"]
    mean, se = metrics.token_weighted_loss(s, c, strata=task)
    d = s - mean * c
    var = sum(3 / 2 * ((d[i] - d[i].mean()) ** 2).sum() for i in (slice(0, 3), slice(3, 6)))
    assert mean == pytest.approx(s.sum() / c.sum()) and se == pytest.approx(math.sqrt(var) / c.sum())
    assert metrics.token_weighted_loss(s, c, strata=["x"] * 5 + ["y"])[1] is None  # a stratum of one: no error
    with pytest.raises(ValueError, match="5 strata labels for 6 examples"):
        metrics.token_weighted_loss(s, c, strata=task[:5])

"""`dvc metrics show` lists each run's headline numbers and each fit's parameters and held-out error."""
from __future__ import annotations

import dataclasses
import math

import yaml

from benchmark.scaling import targets
from benchmark.evaluation import metrics
from benchmark.scaling.engine import FitResult
from tests_paths import ROOT


def test_dvc_yaml_declares_run_headlines_and_fit_metrics():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert stages["evaluate"]["do"]["metrics"] == ["runs/${key}/headline.json"]
    assert [next(iter(m)) for m in stages["fit"]["metrics"]] == ["leaderboard/fit_metrics.json"]


def test_headline_values_are_the_registry_headlines_of_a_run():
    rows = [{"task": t, "metric": m, "value": v} for t, m, v in (
        ("all", "val_loss", 2.5), ("translation", "val_loss", 2.7), ("translation", "bleu", 31.0),
        ("summarization", "rouge1", 60.0), ("summarization", "rougeL", 55.0), ("classification", "accuracy", 75.0))]
    assert metrics.headline_values(rows) == {"val_loss": 2.5, "bleu": 31.0, "rougeL": 55.0, "accuracy": 75.0}
    assert metrics.headline_values([]) == {}


def test_fit_metrics_is_flat_with_parameters_and_heldout_error():
    r = FitResult("chinchilla", "val_loss/all", {"E": 1.8, "A": 400.0, "B": math.inf, "alpha": 0.3, "beta": 0.3}, {}, {},
                  {"a": 0.5}, 9, {"rel_err": 0.012}, {})
    r = dataclasses.replace(r, lack_of_fit={"F": 28.3, "p": 0.0027})
    s = FitResult("seed_law", "bleu/translation", {"a": 1.0}, {}, {}, None, 9, None, {})
    assert targets.fit_metrics([r, s]) == {
        "chinchilla val_loss/all": {"E": 1.8, "A": 400.0, "B": None, "alpha": 0.3, "beta": 0.3, "heldout_rel_err": 0.012,
                                    "lack_of_fit_p": 0.0027},
        "seed_law bleu/translation": {"a": 1.0, "heldout_rel_err": None, "lack_of_fit_p": None}}

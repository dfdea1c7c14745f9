"""The real-data path: each task can be a Hugging Face dataset; here local folders in Hub layout, loaded
with datasets.load_dataset (no network, no remote code), go through prepare, train and evaluate."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from benchmark.training import corpus
from benchmark.results import io
from benchmark.config import params
from benchmark.tasks import example_id, generated_split
from tests_paths import ROOT, TINY


def _hub_folder(path, splits: dict[str, "datasets.Dataset"]):  # noqa: F821
    """data/<split>-00000-of-00001.parquet plus a card, as the Hub stores a parquet dataset."""
    (path / "data").mkdir(parents=True)
    for split, ds in splits.items():
        ds.to_parquet(str(path / "data" / f"{split}-00000-of-00001.parquet"))
    (path / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n"
                                    + "".join(f"  - split: {s}\n    path: data/{s}-*\n" for s in splits) + "---\n")


@pytest.fixture(scope="module")
def hub_params(tmp_path_factory):
    import datasets

    d = tmp_path_factory.mktemp("hubdata")
    gen = {name: {s: generated_split(name, 99, s, n) for s, n in (("train", 300), ("validation", 16), ("test", 12))}
           for name in ("translation", "summarization", "classification")}
    for g in gen.values():  # three test examples leak into train on purpose: prepare must drop them
        g["train"] = g["train"] + g["test"][:3]
    # translation: nested columns as in wmt (translation.src / translation.tgt)
    _hub_folder(d / "wmt_like", {s: datasets.Dataset.from_dict(
        {"translation": [{"src": e["input"], "tgt": e["target"]} for e in rows]}) for s, rows in gen["translation"].items()})
    # summarization: flat columns as in cnn_dailymail
    _hub_folder(d / "news_like", {s: datasets.Dataset.from_dict(
        {"article": [e["input"] for e in rows], "highlights": [e["target"] for e in rows]})
        for s, rows in gen["summarization"].items()})
    # classification: an integer ClassLabel column, as in sst2 / ag_news
    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"])})
    _hub_folder(d / "sentiment_like", {s: datasets.Dataset.from_dict(
        {"text": [e["input"] for e in rows], "label": [1 if e["target"] == "positive" else 0 for e in rows]}, features=feats)
        for s, rows in gen["classification"].items()})
    raw = yaml.safe_load(TINY.read_text())
    raw["data"]["tasks"] = {
        "translation": {"kind": "translation", "hub": {"path": str(d / "wmt_like"), "name": None, "revision": None,
                        "splits": {"train": "train", "validation": "validation", "test": "test"},
                        "columns": {"input": "translation.src", "target": "translation.tgt"}}},
        "summarization": {"kind": "summarization", "hub": {"path": str(d / "news_like"), "name": None, "revision": None,
                          "splits": {"train": "train", "validation": "validation", "test": "test"},
                          "columns": {"input": "article", "target": "highlights"}}},
        "classification": {"kind": "classification", "hub": {"path": str(d / "sentiment_like"), "name": None, "revision": None,
                           "splits": {"train": "train", "validation": "validation", "test": "test"},
                           "columns": {"input": "text", "target": "label"}}},
    }
    raw["runs"] = {"a-4k": {"size": "a", "tokens": 4000}}
    (d / "params.yaml").write_text(yaml.safe_dump(raw))
    return d, gen


def _run(args, cwd):
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})


def test_hub_folders_stand_in_for_every_task(hub_params):
    d, gen = hub_params
    _run(["prepare", "--params", str(d / "params.yaml"), "--out", str(d / "data")], ROOT)
    c = corpus.load(d / "data")
    p = params.load(d / "params.yaml")
    for task in ("translation", "summarization", "classification"):
        src = c.manifest["tasks"][task]["source"]["hub"]
        assert src["path"].endswith(("wmt_like", "news_like", "sentiment_like"))
        assert c.split(task, "validation") == [{**e, "difficulty": 0} for e in gen[task]["validation"]]
        train = io.read_jsonl(d / "data" / task / "train.jsonl")
        assert c.manifest["tasks"][task]["source"]["train_removed_overlap"] >= 3
        held = {example_id(e) for s in ("validation", "test") for e in c.split(task, s)}
        assert train and not held & {example_id(e) for e in train}
        source = corpus.training_sources(p.data.tasks, p.data.seed, 0, d / "data")[task]
        assert {example_id(source(j)) for j in range(2 * len(train))} == {example_id(e) for e in train}
    # class ids became their names, so the model generates words
    assert {e["target"] for e in c.split("classification", "test")} <= {"negative", "positive"}
    run = d / "run"
    _run(["train", "a-4k", "--params", str(d / "params.yaml"), "--data", str(d / "data"), "--out", str(run)], ROOT)
    _run(["evaluate", "a-4k", "--params", str(d / "params.yaml"), "--data", str(d / "data"), "--run-dir", str(run)], ROOT)
    metrics = {(r["task"], r["metric"]) for r in json.loads((run / "metrics.json").read_text())}
    assert {("translation", "bleu"), ("summarization", "rougeL"), ("classification", "accuracy"), ("all", "val_loss")} <= metrics
    assert json.loads((run / "train.json").read_text())["data_revision"] == c.revision


def test_a_missing_column_is_named(hub_params, tmp_path):
    d, _ = hub_params
    raw = yaml.safe_load((d / "params.yaml").read_text())
    raw["data"]["tasks"]["summarization"]["hub"]["columns"]["target"] = "summary"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    r = subprocess.run([sys.executable, "-m", "benchmark", "prepare", "--params", str(tmp_path / "params.yaml"),
                        "--out", str(tmp_path / "data")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "column 'summary' not found" in lines[0] and "Traceback" not in r.stderr

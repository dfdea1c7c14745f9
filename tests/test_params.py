"""Params are checked before any compute; every error is one line that names the key."""
from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import yaml

from benchmark.config import grid, params
from benchmark.scaling import engine


def test_default_and_tiny_and_gpu_params_parse(root):
    for name in ("params.yaml", "configs/tiny.yaml", "configs/gpu.yaml", "configs/replicated.yaml",
                 "configs/heldout_seeds.yaml"):
        p = params.load(root / name)
        assert p.runs, name


def test_default_grid_spans_the_required_ranges(root):
    p = params.load(root / "params.yaml")
    points = grid.points(p)
    nonemb = sorted({q.n_params_nonembedding for q in points})
    tokens = sorted({q.tokens for q in points})
    assert len(nonemb) >= 4 and nonemb[-1] / nonemb[0] >= 10
    assert len(tokens) >= 3 and tokens[-1] / tokens[0] >= 4


def _point_seeds(p):
    out = {}
    for q in grid.points(p):
        out.setdefault((q.size, q.tokens), set()).add(q.seed)
    return out


def _same_but_runs_and_holdout(default, other):
    assert other.fit.holdout != default.fit.holdout
    same_fit = dataclasses.replace(other.fit, holdout=default.fit.holdout)  # every other fit setting must match
    assert dataclasses.replace(other, runs=default.runs, fit=same_fit) == default


def _held_out_runs(p):
    pts = grid.points(p)
    held, _ = engine.holdout_split(np.array([q.flops for q in pts]), p.fit.holdout, p.fit.budget_tolerance)
    return {q.run_id for q, h in zip(pts, held) if h}, {q.run_id for q in pts if q.run_id.split("-")[1] == "c4"}


def test_replicated_config_is_the_default_grid_with_three_seeds_at_every_point(root):
    """configs/replicated.yaml cannot drift from params.yaml: the same params but the runs and fit.holdout, every
    default point at seeds 0, 1 and 2, and both hold out exactly the largest budget's runs."""
    default, replicated = params.load(root / "params.yaml"), params.load(root / "configs/replicated.yaml")
    _same_but_runs_and_holdout(default, replicated)
    assert _point_seeds(replicated) == {pt: {0, 1, 2} for pt in _point_seeds(default)}
    for p in (default, replicated):
        held, largest = _held_out_runs(p)
        assert held == largest


def test_heldout_seeds_config_is_the_default_grid_with_three_seeds_at_every_held_out_point(root):
    """configs/heldout_seeds.yaml: params.yaml's grid with seeds 0, 1 and 2 at every point of the held-out budget
    (and the default's seeds elsewhere), holding out exactly that budget's runs."""
    default, seeded = params.load(root / "params.yaml"), params.load(root / "configs/heldout_seeds.yaml")
    _same_but_runs_and_holdout(default, seeded)
    held, largest = _held_out_runs(seeded)
    assert held == largest and len(held) == 12
    held_points = {(q.size, q.tokens) for q in grid.points(seeded) if q.run_id in held}
    assert _point_seeds(seeded) == {pt: {0, 1, 2} if pt in held_points else s for pt, s in _point_seeds(default).items()}


def test_a_task_may_take_its_own_loss_on(tiny_raw, root):
    """data.tasks.<task>.loss_on sets which tokens of that task carry the loss; the others keep data.loss_on."""
    raw = copy.deepcopy(tiny_raw)
    raw["data"]["loss_on"] = "text"
    for task in raw["data"]["tasks"].values():
        task.pop("loss_on", None)
    raw["data"]["tasks"]["translation"]["loss_on"] = "target"
    d = params.parse(raw).data
    assert d.loss_on_of("translation") == "target"
    assert {d.loss_on_of(t.name) for t in d.tasks if t.name != "translation"} == {"text"}
    assert params.load(root / "params.yaml").data.loss_on_of("classification") == "text"  # the default: its text


def test_a_task_may_weigh_its_answer_in_the_training_loss(tiny_raw, tmp_path):
    """data.tasks.<task>.target_weight (default 1) reaches the prepared folder's manifest only where it is set, and
    the train stage reads it from there (corpus.target_weight_of)."""
    from benchmark.stages.prepare import prepare
    from benchmark.training import corpus as corpus_mod

    raw = copy.deepcopy(tiny_raw)
    for task in raw["data"]["tasks"].values():
        task.pop("target_weight", None)
    raw["data"]["tasks"]["translation"]["target_weight"] = 4
    p = params.parse(raw)
    assert {t.name: t.target_weight for t in p.data.tasks} == {t: 4 if t == "translation" else 1 for t in raw["data"]["tasks"]}
    prepare(p, tmp_path / "data")
    c = corpus_mod.load(tmp_path / "data")
    assert [c.target_weight_of(t) for t in c.task_names] == [4 if t == "translation" else 1 for t in c.task_names]
    assert [("target_weight" in c.manifest["tasks"][t]) for t in c.task_names] == [t == "translation" for t in c.task_names]


@pytest.mark.parametrize("mutate, key", [
    (lambda r: r["runs"]["a-3k"].update(size="huge"), "runs.a-3k.size"),
    (lambda r: r["runs"]["a-3k"].update(tokens=-5), "runs.a-3k.tokens"),
    (lambda r: r["data"]["tasks"].update(poetry={"kind": "poetry", "generator": "translation"}), "data.tasks.poetry.kind"),
    (lambda r: r["data"]["tasks"]["translation"].update(generator="sonnets"), "data.tasks.translation.generator"),
    (lambda r: r["data"]["tasks"]["translation"].update(test_examples=0), "data.tasks.translation.test_examples"),
    (lambda r: r["data"]["tasks"]["translation"].update(loss_on="label"), "data.tasks.translation.loss_on"),
    (lambda r: r["data"]["tasks"]["translation"].update(target_weight=0), "data.tasks.translation.target_weight"),
    (lambda r: r["data"]["tasks"]["translation"].update(target_weight=2.5), "data.tasks.translation.target_weight"),
    (lambda r: r["train"].pop("beta1"), "train.beta1"),
    (lambda r: r.pop("evaluate"), "evaluate"),
    (lambda r: r["model"]["sizes"]["a"].update(n_heads=5), "model.sizes.a.n_heads"),
    (lambda r: r["model"]["sizes"]["a"].update(d_model="wide"), "model.sizes.a.d_model"),
    (lambda r: r["train"].update(warmup=0.1), "train.warmup"),
    (lambda r: r["runs"].update({"bad id!": {"size": "a", "tokens": 10}}), "runs.bad id!"),
    (lambda r: r["runs"]["a-3k"].update(tokens=r["data"]["train_tokens"] + 1), "runs.a-3k.tokens"),  # beyond the shards
    (lambda r: r["train"].update(eval_every=-1), "train.eval_every"),
    (lambda r: r["train"].update(curve_examples=0), "train.curve_examples"),
])
def test_invalid_params_name_the_key(tiny_raw, mutate, key):
    raw = copy.deepcopy(tiny_raw)
    mutate(raw)
    with pytest.raises(params.ParamsError) as e:
        params.parse(raw)
    msg = str(e.value)
    assert msg.startswith(key + ":") or msg.startswith(key + " "), msg
    assert "\n" not in msg


def test_cli_stops_with_one_line_before_training(tmp_path, tiny_raw, root):
    raw = copy.deepcopy(tiny_raw)
    raw["runs"]["a-3k"]["size"] = "huge"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    for cmd in (["plan", "--no-time"], ["prepare", "--out", str(tmp_path / "data")], ["train", "a-3k"]):
        r = subprocess.run([sys.executable, "-m", "benchmark", *cmd, "--params", str(path)], cwd=root,
                           capture_output=True, text=True)
        assert r.returncode == 2, (cmd, r.stderr)
        assert r.stderr.strip().splitlines() == ["error: runs.a-3k.size: invalid value 'huge' (unknown size; known: a, b, c)"]
    assert not (tmp_path / "data").exists()


def test_plan_prints_every_run(root):
    r = subprocess.run([sys.executable, "-m", "benchmark", "plan", "--params", "configs/tiny.yaml"], cwd=root,
                       capture_output=True, text=True, check=True)
    for run_id in ("a-3k", "a-6k", "b-9k", "c-9k"):
        assert run_id in r.stdout
    assert "estimated wall time" in r.stdout

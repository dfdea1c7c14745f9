"""Learning curves outside a training run: the evaluation leaves RNG and train mode as it found them, the subset is
fixed, collect loads curve.json into the `curves` table and its parquet, and the report draws them."""
from __future__ import annotations

import json

import pytest
import torch

from benchmark.training.validation import Curve, fixed_subset


class _Net(torch.nn.Module):
    """A stand-in LM whose forward draws random numbers (as dropout would) and records how it was called."""

    def __init__(self, vocab: int = 11):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, vocab)
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, input_ids, use_cache=False):
        self.calls.append((self.training, torch.is_grad_enabled()))
        noise = torch.rand(input_ids.shape + (self.emb.num_embeddings,))
        return type("Out", (), {"logits": self.emb(input_ids) + noise})()


def _curve(every: int = 100) -> Curve:
    rows = {"t1": [([1, 2, 3, 4, 5], 2), ([1, 6, 7], 1)], "t2": [([1, 8, 9, 10], 3)]}
    return Curve(every, rows, pad=0, batch_size=2, window=3)


def test_measure_restores_rng_and_train_mode_and_runs_without_grad():
    net, curve = _Net(), _curve()
    net.train()
    torch.manual_seed(3)
    before = torch.get_rng_state()
    for step, loss in enumerate((9.0, 8.0, 7.0, 6.0), 1):
        curve.observe(loss * 10, 10)
    curve.measure(net, 4, 400, "cpu")
    assert net.calls and all(c == (False, False) for c in net.calls)  # eval mode, no autograd
    assert net.training and torch.equal(torch.get_rng_state(), before)  # ... and back, RNG untouched
    expected = torch.rand(3)
    torch.set_rng_state(before)
    assert torch.equal(torch.rand(3), expected)
    rows = {(r["split"], r["task"]): r for r in curve.points}
    assert sorted(rows) == [("train", "all"), ("val", "all"), ("val", "t1"), ("val", "t2")]
    assert rows[("train", "all")]["loss"] == pytest.approx(7.0)  # the window: the last 3 steps read, per target token
    assert all(r["tokens"] == 400 and r["step"] == 4 for r in curve.points)


def test_val_all_is_the_token_weighted_mean_over_tasks():
    curve = _curve()
    curve.measure(_Net(), 1, 100, "cpu")
    v = {r["task"]: r["loss"] for r in curve.points if r["split"] == "val"}
    n = {"t1": 3 + 2, "t2": 1}  # targets: positions after the prompt, per example
    assert v["all"] == pytest.approx((v["t1"] * n["t1"] + v["t2"] * n["t2"]) / 6)


def test_points_fall_at_each_multiple_and_state_round_trips():
    curve = _curve(every=100)
    assert [t for t in range(30, 430, 30) if curve.due(t, 30)] == [120, 210, 300, 420]
    assert not _curve(every=0).due(100, 100)
    curve.observe(5.0, 2)
    curve.measure(_Net(), 2, 120, "cpu")
    again = _curve(every=100)
    again.load_state_dict(json.loads(json.dumps(curve.state_dict())))  # through JSON, as in a checkpoint
    assert again.points == curve.points and list(again.recent) == list(curve.recent)


def test_fixed_subset_depends_on_the_seed_and_task_only():
    a = fixed_subset(1000, 64, seed=2024, task_index=0)
    assert a == fixed_subset(1000, 64, seed=2024, task_index=0) and a == sorted(set(a)) and len(a) == 64
    assert a != fixed_subset(1000, 64, seed=2025, task_index=0) and a != fixed_subset(1000, 64, seed=2024, task_index=1)
    assert fixed_subset(10, 64, seed=1, task_index=0) == list(range(10))


def test_collect_fills_the_curves_table_and_parquet(tmp_path):
    import pyarrow.parquet as pq

    from benchmark.config import params as params_mod
    from benchmark.results import db
    from benchmark.stages.collect import collect
    from synthetic_runs import make_grid

    ids = make_grid(tmp_path, predictions=6)
    p = params_mod.load(tmp_path / "params.yaml")
    counts = collect(p, tmp_path / "runs", tmp_path / "lb" / "results.duckdb", tmp_path / "lb")
    written = [r for rid in ids for r in json.loads((tmp_path / "runs" / rid / "curve.json").read_text())]
    assert counts["curves"] == len(written) > 0
    con = db.connect(str(tmp_path / "lb" / "results.duckdb"), read_only=True)
    try:
        rows = db.read_rows(con, "curves", "source = ?", ["local"])
    finally:
        con.close()
    key = lambda r: (r["run_id"], r["split"], r["task"], r["tokens"])  # noqa: E731
    assert sorted(rows, key=key) == sorted(written, key=key)
    assert pq.read_table(tmp_path / "lb" / "data" / "curves.parquet").to_pylist() == rows
    # a second collect gives the same rows and the same parquet bytes
    before = (tmp_path / "lb" / "data" / "curves.parquet").read_bytes()
    collect(p, tmp_path / "runs", tmp_path / "lb" / "results.duckdb", tmp_path / "lb")
    assert (tmp_path / "lb" / "data" / "curves.parquet").read_bytes() == before


@pytest.mark.parametrize("damage, message", [
    (lambda rows: rows[0].update(run_id="other"), "a row of run 'other'"),
    (lambda rows: rows[0].update(split="test"), "'split' is 'test', not one of train, val"),
    (lambda rows: rows.clear() or None, None),  # an empty curve (train.eval_every = 0) is valid
])
def test_collect_checks_curve_rows(tmp_path, damage, message):
    from benchmark.config import params as params_mod
    from benchmark.stages.collect import CollectError, collect
    from benchmark.results.schema import SchemaError
    from synthetic_runs import make_grid

    ids = make_grid(tmp_path, predictions=6)
    path = tmp_path / "runs" / ids[0] / "curve.json"
    rows = json.loads(path.read_text())
    damage(rows)
    path.write_text(json.dumps(rows))
    p = params_mod.load(tmp_path / "params.yaml")
    if message is None:
        assert collect(p, tmp_path / "runs", tmp_path / "db.duckdb", tmp_path / "lb")["curves"] > 0
        return
    with pytest.raises((CollectError, SchemaError), match=message.replace("(", r"\(")):
        collect(p, tmp_path / "runs", tmp_path / "db.duckdb", tmp_path / "lb")
    assert not (tmp_path / "lb" / "data" / "curves.parquet").exists()


def test_collect_names_a_missing_curve(tmp_path):
    from benchmark.config import params as params_mod
    from benchmark.stages.collect import CollectError, collect
    from synthetic_runs import make_grid

    ids = make_grid(tmp_path, predictions=6)
    (tmp_path / "runs" / ids[1] / "curve.json").unlink()
    with pytest.raises(CollectError, match=f"runs/{ids[1]}/curve.json: missing"):
        collect(params_mod.load(tmp_path / "params.yaml"), tmp_path / "runs", tmp_path / "db.duckdb", tmp_path / "lb")


def test_learning_curves_figure_has_a_panel_per_size_and_a_line_per_run(tmp_path):
    from benchmark.reporting import figures
    from synthetic_runs import make_grid

    ids = make_grid(tmp_path, predictions=6)
    runs = [json.loads((tmp_path / "runs" / rid / "train.json").read_text()) for rid in ids]
    curves = [r for rid in ids for r in json.loads((tmp_path / "runs" / rid / "curve.json").read_text())]
    fig = figures.learning_curves(runs, curves)
    axes = fig.axes
    assert [a.get_title().split(" ")[0] for a in axes] == ["a", "b", "c"] and axes[0].get_xscale() == "log"
    per_size = {s: [rid for rid in ids if rid.startswith(s + "-")] for s in "abc"}
    for ax, (size, rids) in zip(axes, per_size.items()):
        labelled = [ln.get_label() for ln in ax.get_lines() if ln.get_xydata().size]
        assert [x for x in labelled if not x.startswith("_")] == rids  # one validation line per run, labelled
        assert len([ln for ln in ax.get_lines() if ln.get_xydata().size]) == 2 * len(rids)  # and its train line
    paths = figures.save(fig, tmp_path / "learning_curves")
    assert open(paths[0], "rb").read(4) == b"\x89PNG"
    empty = figures.learning_curves(runs, [])
    assert "no learning curves" in empty.axes[0].texts[0].get_text()


def test_row_losses_batched_by_length_match_one_example_at_a_time_in_the_rows_order():
    from benchmark.training.data import IGNORE
    from benchmark.training.trainer import loss_sum
    from benchmark.training.validation import WIDTH_MULTIPLE, row_losses, row_token_losses

    torch.manual_seed(0)

    class Causal(torch.nn.Module):  # position t's logits depend on tokens <= t only, as a causal LM's do
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(13, 13)

        def forward(self, input_ids, use_cache=False):
            return type("Out", (), {"logits": self.emb(input_ids).cumsum(1)})()

    rows = [([1, 2, 3, 4, 5, 6, 7], 3), ([1, 8], 1), ([1, 9, 10, 11], 2), ([1, 12, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                                                            12, 2, 3, 4, 5, 6, 7, 8], 5), ([1, 4, 4], 1)]
    net = Causal()
    sums, counts = row_losses(net, rows, pad=0, batch_size=2, device="cpu")
    assert counts == [len(ids) - n_prompt for ids, n_prompt in rows]
    for (ids, n_prompt), got in zip(rows, sums):
        x = torch.tensor([ids])
        labels = torch.full_like(x, IGNORE)
        labels[0, n_prompt:] = x[0, n_prompt:]
        with torch.no_grad():
            assert got == pytest.approx(float(loss_sum(net(input_ids=x).logits, labels)), rel=1e-6)
    assert WIDTH_MULTIPLE > 1 and max(len(ids) for ids, _ in rows) % WIDTH_MULTIPLE  # the padding is exercised
    per_token = row_token_losses(net, rows, pad=0, batch_size=2, device="cpu")
    assert [len(v) for v in per_token] == counts and [sum(v) for v in per_token] == pytest.approx(sums, rel=1e-6)
    ids, n_prompt = rows[3]
    with torch.no_grad():  # the 2nd target token's loss: position n_prompt predicts token n_prompt + 1
        logits = net(input_ids=torch.tensor([ids])).logits[0, n_prompt]
    assert per_token[3][1] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, torch.tensor(ids[n_prompt + 1]))),
                                            rel=1e-6)


def test_tails_are_the_target_loss_of_each_row_from_the_same_forward_pass():
    """validation_losses' target_loss: the last t scored tokens of a row scored from its input on equal the row
    scored on those t tokens alone (row_losses_and_tails, one forward pass for val_loss and target_loss)."""
    from benchmark.training.validation import row_losses, row_losses_and_tails

    torch.manual_seed(0)

    class Causal(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(13, 13)

        def forward(self, input_ids, use_cache=False):
            return type("Out", (), {"logits": self.emb(input_ids).cumsum(1)})()

    net = Causal()
    rows = [([1, 2, 3, 4, 5, 6, 7], 2), ([1, 8, 3], 2), ([1, 9, 10, 11, 5, 6, 7, 8, 9, 10, 11, 12, 2, 3, 4, 5, 6], 2)]
    tails = [3, 1, 5]
    sums, counts, got = row_losses_and_tails(net, rows, pad=0, batch_size=2, device="cpu", tails=tails)
    assert (sums, counts) == row_losses(net, rows, pad=0, batch_size=2, device="cpu")
    alone, n = row_losses(net, [(ids, len(ids) - t) for (ids, _), t in zip(rows, tails)], pad=0, batch_size=2, device="cpu")
    assert n == tails and got == pytest.approx(alone, rel=1e-6) and got != pytest.approx(sums, rel=1e-3)
    assert row_losses_and_tails(net, rows, pad=0, batch_size=2, device="cpu")[2] is None

"""`plan` shows the grid as a scaling study: seeds, IsoFLOP budgets, tokens per parameter, replicates and warnings."""
from __future__ import annotations

import yaml

from benchmark.stages import plan
from tests_paths import TINY


def _plan(tmp_path, capsys, runs: dict, tolerance: float = 0.15) -> tuple[list[str], list[str]]:
    raw = yaml.safe_load(TINY.read_text())
    raw["runs"] = runs
    raw["fit"]["budget_tolerance"] = tolerance
    raw["data"]["train_tokens"] = 400_000
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert plan.main(["--params", str(path), "--no-time"]) == 0
    out = capsys.readouterr()
    return out.out.splitlines(), out.err.splitlines()


def test_plan_prints_seeds_budgets_and_replicates(tmp_path, capsys):
    # sizes a, b, c have N = 8.5k, 14.7k, 23.6k (vocab 320): two IsoFLOP budgets, ~2.5e9 and ~1e10 FLOPs
    runs = {"a-50k": {"size": "a", "tokens": 50_000}, "a-50k-s1": {"size": "a", "tokens": 50_000, "seed": 1},
            "a-50k-s2": {"size": "a", "tokens": 50_000, "seed": 2}, "b-29k": {"size": "b", "tokens": 29_000},
            "c-18k": {"size": "c", "tokens": 18_000},
            "a-200k": {"size": "a", "tokens": 200_000}, "b-116k": {"size": "b", "tokens": 116_000},
            "c-72k": {"size": "c", "tokens": 72_000}, "c-72k-s5": {"size": "c", "tokens": 72_000, "seed": 5}}
    out, err = _plan(tmp_path, capsys, runs)
    head = out[0].split()
    assert head[:3] == ["run_id", "size", "seed"] and "D/N" in head and head[-1] == "budget"
    row = {line.split()[0]: line.split() for line in out[2:11]}
    assert set(row) == set(runs)
    assert row["a-50k-s2"][2] == "2" and row["c-72k-s5"][2] == "5"
    assert {row[r][-1] for r in ("a-50k", "a-50k-s1", "b-29k", "c-18k")} == {"C1"}
    assert {row[r][-1] for r in ("a-200k", "b-116k", "c-72k", "c-72k-s5")} == {"C2"}
    assert row["a-50k"][head.index("D/N")] == "5.9"  # 50k tokens / 8.5k parameters
    budgets = [line for line in out if line.startswith("budget ")]
    assert len(budgets) == 2
    assert budgets[0].startswith("budget C1: 2.5") and "3 sizes (a, b, c)" in budgets[0] and "5 runs" in budgets[0]
    assert "0.8-5.9 tokens per parameter" in budgets[0]
    assert budgets[1].startswith("budget C2: 1.02e+10") and "3 sizes (a, b, c)" in budgets[1]
    reps = [line for line in out if line.startswith("replicates of")]
    assert reps == ["replicates of a at 50k tokens: 3 seeds (0, 1, 2; runs a-50k, a-50k-s1, a-50k-s2)",
                    "replicates of c at 72k tokens: 2 seeds (0, 5; runs c-72k, c-72k-s5)"]
    assert "9 runs at 6 grid points" in "\n".join(out)
    # the fit stage holds out whole budgets (the largest first, until they hold fit.holdout of the runs)
    assert "held out of the fits (fit.holdout=0.2): budget C2, 4 of 9 runs: the laws fitted on C1 predict it" in out
    # every budget has 3 sizes (< 4); c-18k (0.76) and b-29k (1.97) are under 2 tokens per parameter
    assert sorted(line.split(" (")[0] for line in err) == [
        "warning: b at 29k tokens", "warning: budget C1", "warning: budget C2", "warning: c at 18k tokens"]
    assert all(line.startswith("warning: ") for line in err)


def test_plan_is_quiet_about_a_grid_that_follows_the_design_rules(tmp_path, capsys):
    runs = {f"{s}-{k}": {"size": s, "tokens": int(k[:-1]) * 1000}
            for s, k in (("a", "270k"), ("b", "156k"), ("c", "97k"), ("d", "70k"))}  # 2.1-32 tokens per parameter
    raw = yaml.safe_load(TINY.read_text())
    sizes = {**raw["model"]["sizes"], "d": {"d_model": 40, "n_layers": 1, "n_heads": 2, "lr": 7.0e-3, "batch_size": 4}}
    raw["model"]["sizes"], raw["runs"], raw["data"]["train_tokens"] = sizes, runs, 400_000
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert plan.main(["--params", str(path), "--no-time"]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    (budget,) = [line for line in out.out.splitlines() if line.startswith("budget ")]
    assert "4 sizes (a, b, c, d)" in budget and "4 runs" in budget
    assert not any(line.startswith("replicates") for line in out.out.splitlines())

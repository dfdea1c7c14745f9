"""End to end: `dvc repro` on the tiny grid in a temporary copy of the repository.

Checks the DuckDB tables, the Hugging Face dataset folder, that a second repro is a no-op, that
editing one grid point re-runs only that point, and that a diverged run is kept but not fitted.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests_paths import CHINCHILLA_CSV, ROOT, TINY

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
GRID = [f"{s}-{k}k" for s in "abc" for k in (3, 6, 9)]


def _git(cwd, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def _dvc(cwd, *args) -> str:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run([str(BIN / "dvc"), *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def _query(repo: Path, sql: str) -> list[tuple]:
    """Rows of `sql` on the repo's DuckDB; the connection is closed at once (a held one would lock out the next repro)."""
    import duckdb

    with duckdb.connect(str(repo / "leaderboard" / "results.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def _stages_run(out: str) -> set[str]:
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage '")}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A fresh copy of the tracked (and untracked, not ignored) files with params.yaml := configs/tiny.yaml."""
    dst = tmp_path_factory.mktemp("repo")
    files = _git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    for f in filter(None, files):
        src = ROOT / f
        if src.is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f)
    shutil.copy(TINY, dst / "params.yaml")
    _git(dst, "init", "-q")
    _git(dst, "add", "-A")
    _git(dst, "commit", "-qm", "copy")
    out = _dvc(dst, "repro")
    assert {"prepare", "train@a-3k", "evaluate@c-9k", "evaluate@b-6k", "collect", "fit", "report"} <= _stages_run(out)
    return dst


def test_duckdb_holds_one_row_per_grid_point_and_every_metric(repo):
    runs = _query(repo, "SELECT run_id, status, n_params, n_params_embedding + n_params_nonembedding, tokens, flops, "
                        "git_sha, data_revision, package_versions FROM runs WHERE source = 'local' ORDER BY run_id")
    assert [r[0] for r in runs] == GRID
    for run_id, status, n, n_sum, tokens, flops, sha, rev, versions in runs:
        assert status == "completed" and n == n_sum and flops == 6 * n * tokens
        assert sha and rev and "torch" in json.loads(versions)
    names = {r[0] for r in _query(repo, "SELECT DISTINCT task || '/' || metric FROM metrics WHERE source = 'local'")}
    want = {"all/val_loss", "translation/val_loss", "translation/bleu", "summarization/rouge1", "summarization/rouge2",
            "summarization/rougeL", "summarization/rougeLsum", "classification/accuracy"}
    assert want <= names
    per_run = _query(repo, "SELECT run_id, count(*) FROM metrics WHERE source = 'local' GROUP BY run_id")
    assert len(per_run) == 9 and len({c for _, c in per_run}) == 1
    assert _query(repo, "SELECT count(*) FROM fits WHERE law = 'chinchilla' AND parameter = 'alpha'")[0][0] >= 1


def test_leaderboard_loads_with_datasets(repo):
    import datasets

    for config, n in (("runs", 9), ("metrics", None), ("fits", None)):
        ds = datasets.load_dataset(str(repo / "leaderboard"), config, split="train")
        assert len(ds) > 0 and (n is None or len(ds) == n), config
    assert sorted(datasets.load_dataset(str(repo / "leaderboard"), "runs", split="train")["run_id"]) == GRID


def test_bleu_in_duckdb_equals_the_sacrebleu_cli_on_saved_predictions(repo, tmp_path):
    import pyarrow.parquet as pq

    for run_id in ("a-3k", "c-9k"):
        preds = [r for r in pq.read_table(repo / "runs" / run_id / "predictions.parquet").to_pylist() if r["task"] == "translation"]
        (tmp_path / "ref").write_text("".join(r["reference"] + "\n" for r in preds))
        (tmp_path / "hyp").write_text("".join(r["prediction"] + "\n" for r in preds))
        cli = subprocess.run([str(BIN / "sacrebleu"), str(tmp_path / "ref"), "-i", str(tmp_path / "hyp"), "-b", "-w", "4"],
                             capture_output=True, text=True, check=True).stdout
        ours = _query(repo, f"SELECT value FROM metrics WHERE source = 'local' AND run_id = '{run_id}' AND metric = 'bleu'")[0][0]
        assert abs(ours - float(cli)) <= 0.01


def test_report_writes_figures_tables_and_a_valid_card(repo):
    from benchmark.results.dataset import check_folder

    lb = repo / "leaderboard"
    for stem in ("loss_vs_compute", "residuals", "heldout", "isoflop", "downstream", "literature", "learning_curves"):
        assert (lb / "figures" / f"{stem}.png").read_bytes().startswith(b"\x89PNG"), stem
        assert (lb / "figures" / f"{stem}.pdf").read_bytes().startswith(b"%PDF"), stem
    tex = (lb / "tables" / "fits.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and "This grid" in tex
    assert "| a-3k |" in (lb / "README.md").read_text()
    counts = check_folder(lb)  # the card's YAML parses and documents every parquet column
    assert counts["runs"] == 9
    assert counts["curves"] > 9 * 5  # tiny.yaml's eval_every: 2-6 points per run, 5 rows (train, val per task, all) each


def test_dvc_plots_render_without_network(repo):
    _dvc(repo, "plots", "show", "--out", "plots_html")
    html = (repo / "plots_html" / "index.html").read_text()
    assert "<img" in html and "http://" not in html and "https://" not in html


def test_dvc_metrics_show_lists_run_headlines_and_fits(repo):
    shown = json.loads(_dvc(repo, "metrics", "show", "--json"))
    (workspace,) = shown.values()  # keyed by revision: the workspace only
    files = {k: v["data"] for k, v in workspace["data"].items()}
    for run_id in GRID:
        assert set(files[f"runs/{run_id}/headline.json"]) == {"val_loss", "bleu", "rougeL", "accuracy"}
    fits = files["leaderboard/fit_metrics.json"]
    assert {"E", "A", "B", "alpha", "beta", "heldout_rel_err"} <= set(fits["chinchilla val_loss/all"])
    table = _dvc(repo, "metrics", "show")
    assert "runs/a-3k/headline.json" in table and "heldout_rel_err" in table


def test_compare_prints_both_parameter_sets(repo, root):
    db = str(repo / "leaderboard" / "results.duckdb")
    csv = CHINCHILLA_CSV
    if not csv.exists():  # the reference data lives beside the checkout, not in it
        csv = repo / "mini_chinchilla.csv"
        lines = ["Model Size,Training FLOP,loss"] + [f"{n:.6g},{6 * n * d:.6g},{1.8 + 400 / n ** 0.34 + 400 / d ** 0.28:.6f}"
                                                     for n in (1e8, 3e8, 1e9, 3e9) for d in (2e9, 6e9, 2e10)]
        csv.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "benchmark", "import", "chinchilla", str(csv), "--db", db], cwd=repo, env=env,
                   check=True, capture_output=True, text=True)
    out = subprocess.run([sys.executable, "-m", "benchmark", "compare", "local", "chinchilla", "--db", db, "--bootstrap", "100",
                          "--plot", str(repo / "cmp" / "compare")], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout
    header = next(line for line in out.splitlines() if line.startswith("parameter"))
    assert "local" in header and "chinchilla" in header
    for name in ("E", "A", "B", "alpha", "beta"):
        row = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert row.count("[") == 2, row  # an interval for each source
    assert (repo / "cmp" / "compare.png").exists()


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


BAD_PARAMS = [  # (section.key path, value or a function of the raw mapping, the key the error names)
    (("runs", "a-3k", "tokens"), 0, "runs.a-3k.tokens"),
    (("fit", "bootstrapp"), 10, "fit.bootstrapp"),
    (("fit", "holdout"), 1.5, "fit.holdout"),
    (("train", "beta1"), 1.2, "train.beta1"),
    (("train", "device"), "tpu", "train.device"),
    (("model", "sizes", "a", "n_heads"), 3, "model.sizes.a.n_heads"),
    (("model", "seq_len"), 8, "model.seq_len"),
    (("evaluate", "batch_size"), 0, "evaluate.batch_size"),
    (("evaluate", "bootstrap"), "many", "evaluate.bootstrap"),
    (("tokenizer", "vocab_size"), 10, "tokenizer.vocab_size"),
    (("data", "tasks", "translation", "kind"), "poetry", "data.tasks.translation.kind"),
    (("data", "validation_examples"), -1, "data.validation_examples"),
    (("trian",), {"beta1": 0.9}, "params.trian"),
]


def test_a_params_mistake_stops_repro_before_any_output_is_removed(repo):
    """DVC removes a stage's outputs before running it: the check stage, which every stage waits on, must stop a
    bad value first. Every file under runs/ and leaderboard/ stays byte-identical, whatever the section."""
    good = (repo / "params.yaml").read_text()
    before = {d: _files(repo / d) for d in ("runs", "leaderboard")}
    try:
        for path, value, key in BAD_PARAMS:
            raw = yaml.safe_load(good)
            node = raw
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = value
            (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
            r = subprocess.run([str(BIN / "dvc"), "repro"], cwd=repo, capture_output=True, text=True,
                               env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
            assert r.returncode != 0, (key, r.stdout[-2000:])
            assert f"error: {key}" in r.stderr + r.stdout, (key, r.stderr[-2000:])
            assert _stages_run(r.stdout) <= {"check"}, (key, r.stdout)
            for d in ("runs", "leaderboard"):
                assert _files(repo / d) == before[d], (key, d)
    finally:
        (repo / "params.yaml").write_text(good)
    # the params are good again: at most the check re-runs (DVC may restore its output from the run cache)
    assert _stages_run(_dvc(repo, "repro")) <= {"check"}


def test_second_repro_is_a_no_op_and_one_point_reruns_alone_and_divergence_is_kept(repo):
    out = _dvc(repo, "repro")
    assert _stages_run(out) == set()
    assert "up to date" in out.lower()
    # bytecode caches are not code (.dvcignore): a new one beside the modules leaves the pipeline up to date
    (repo / "benchmark" / "training" / "__pycache__").mkdir(exist_ok=True)
    (repo / "benchmark" / "training" / "__pycache__" / "trainer.cpython-311.pyc").write_bytes(b"\0")
    assert _stages_run(_dvc(repo, "repro")) == set()
    # a code edit re-runs the check (which re-pins) and the stages whose commands import the module: not the grid
    figures = repo / "benchmark" / "reporting" / "figures.py"
    figures.write_text(figures.read_text() + "\n# edited\n")
    assert _stages_run(_dvc(repo, "repro")) == {"check", "report"}

    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["runs"]["b-6k"]["tokens"] = 6500  # one grid point changes
    raw["model"]["sizes"]["boom"] = {"d_model": 16, "n_layers": 1, "n_heads": 1, "lr": 50.0, "batch_size": 4}
    raw["runs"]["boom-8k"] = {"size": "boom", "tokens": 8000}  # and a run that must diverge joins
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    ran = _stages_run(_dvc(repo, "repro"))
    per_point = {s for s in ran if "@" in s}
    assert per_point == {f"{stage}@{rid}" for stage in ("train", "evaluate") for rid in ("b-6k", "boom-8k")}
    assert {"collect", "fit", "report"} <= ran and "prepare" not in ran

    rows = dict(_query(repo, "SELECT run_id, status FROM runs WHERE source = 'local'"))
    assert rows == {**{r: "completed" for r in GRID}, "boom-8k": "diverged"}
    step = _query(repo, "SELECT diverged_step, steps FROM runs WHERE source = 'local' AND run_id = 'boom-8k'")[0]
    assert step[0] is not None and step[0] == step[1]
    assert _query(repo, "SELECT tokens FROM runs WHERE source = 'local' AND run_id = 'b-6k'")[0][0] >= 6500
    fits = json.loads((repo / "leaderboard" / "fits.json").read_text())
    chin = next(f for f in fits if f["law"] == "chinchilla" and f["target"] == "val_loss/all")
    assert chin["n_points"] == 9  # the diverged run is not fitted


def test_datasets_loads_the_new_rows_after_a_repro_changes_them(repo):
    """datasets keys a local folder's cache by its card's configs, not its files: the card names each file's
    sha256, so the leaderboard loaded (9 rows) before the grid changed loads again with the new rows."""
    import datasets

    ds = datasets.load_dataset(str(repo / "leaderboard"), "runs", split="train")
    assert sorted(ds["run_id"]) == sorted([*GRID, "boom-8k"])
    assert dict(zip(ds["run_id"], ds["tokens"]))["b-6k"] >= 6500


def test_a_killed_repro_loses_no_finished_run(repo):
    import signal
    import time

    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["runs"]["a-12k"] = {"size": "a", "tokens": 12000}
    raw["runs"]["c-60k"] = {"size": "c", "tokens": 60000}
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen([str(BIN / "dvc"), "repro"], cwd=repo, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = lambda rid: (repo / "runs" / rid / "train.json").exists()  # noqa: E731
    midway = lambda rid: any((repo / "runs" / rid / "checkpoints").glob("step_*"))  # noqa: E731
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (done("a-12k") and midway("c-60k")) or (done("c-60k") and midway("a-12k")):
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = [r for r in ("a-12k", "c-60k") if done(r)]
    killed = [r for r in ("a-12k", "c-60k") if not done(r)]
    assert len(finished) == 1 and len(killed) == 1, "the kill must land while one new run trains and the other is done"
    before = (repo / "runs" / finished[0] / "train.json").read_bytes()
    out = _dvc(repo, "repro")
    ran = _stages_run(out)
    assert f"train@{killed[0]}" in ran and f"train@{finished[0]}" not in ran
    assert (repo / "runs" / finished[0] / "train.json").read_bytes() == before
    assert not any(f"@{r}" in s for s in ran for r in GRID)  # the old grid is untouched

"""Training: bit-identical reruns, exact resumption after SIGKILL (learning curve included), learning curves that
leave training untouched, and DDP matching one process."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest_hub import closed_port
from tests_paths import ROOT, TINY


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A prepared tiny data folder and a params file with one longer run for kill/resume."""
    d = tmp_path_factory.mktemp("train")
    raw = yaml.safe_load(TINY.read_text())
    raw["runs"]["long"] = {"size": "a", "tokens": 150_000}
    raw["data"]["train_tokens"] = 160_000  # prepare shards enough generated text for it
    raw["train"]["checkpoint_every"] = 20
    assert raw["train"]["eval_every"] > 0  # tiny.yaml draws learning curves: every test here trains with them on
    (d / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    raw["train"]["eval_every"] = 0
    (d / "params_nocurve.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    _run(["prepare", "--params", str(d / "params.yaml"), "--out", str(d / "data")])
    return d


def _env():
    return {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)}


def _run(args, **kw):
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=ROOT, env=_env(), check=True,
                          capture_output=True, text=True, timeout=900, **kw)


def _train(d: Path, run_id: str, out: Path, *extra, params: str = "params.yaml"):
    return _run(["train", run_id, "--params", str(d / params), "--data", str(d / "data"), "--out", str(out), *extra])


def _curve(out: Path) -> list[dict]:
    return json.loads((out / "curve.json").read_text())


def _losses(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]


def _weights(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "model" / "model.safetensors"))


def _same_weights(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_config_twice_gives_bit_identical_losses_weights_and_val_loss(workdir):
    outs = [workdir / "twice" / str(i) for i in range(2)]
    for out in outs:
        _train(workdir, "c-9k", out, "--no-resume")
        _run(["evaluate", "c-9k", "--params", str(workdir / "params.yaml"), "--data", str(workdir / "data"), "--run-dir", str(out)])
    assert _losses(outs[0]) == _losses(outs[1]) and len(_losses(outs[0])) > 10
    assert _same_weights(_weights(outs[0]), _weights(outs[1]))
    vals = [json.loads((o / "metrics.json").read_text()) for o in outs]
    assert [r["value"] for r in vals[0]] == [r["value"] for r in vals[1]]  # exact, not approximate
    assert {r["metric"] for r in vals[0]} >= {"val_loss", "bleu", "rougeL", "accuracy"}
    rec = json.loads((outs[0] / "train.json").read_text())
    assert rec["status"] == "completed" and rec["tokens"] >= 9000 and not (outs[0] / "checkpoints").exists()


def test_sigkill_then_resume_is_bit_identical_to_an_uninterrupted_run(workdir):
    ref = workdir / "ref"
    _train(workdir, "long", ref, "--no-resume")
    out = workdir / "killed"
    cmd = [sys.executable, "-m", "benchmark", "train", "long", "--params", str(workdir / "params.yaml"),
           "--data", str(workdir / "data"), "--out", str(out), "--no-resume"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "train_log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once two checkpoints exist, i.e. in the middle of the run
        if len(list((out / "checkpoints").glob("step_*"))) >= 2:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(log.read_text().splitlines())
    assert not (out / "train.json").exists(), "the run finished before it could be killed"
    assert 0 < killed_at < len(_losses(ref))
    ckpt = sorted((out / "checkpoints").glob("step_*"))[-1]
    saved = json.loads((ckpt / "state.json").read_text())["curve"]["points"]  # the curve so far is checkpoint state
    assert saved and saved == [{k: v for k, v in row.items() if k not in ("source", "run_id")}
                               for row in _curve(ref)[:len(saved)]]
    r = _train(workdir, "long", out)  # resumes from the last checkpoint
    assert "resuming long from step" in r.stderr
    assert _losses(out) == _losses(ref)
    assert _same_weights(_weights(out), _weights(ref))
    assert _curve(out) == _curve(ref) and len(_curve(ref)) > len(saved)  # exact: the same points, the same bits
    assert not (out / "checkpoints").exists()  # only the final weights remain


def test_learning_curve_leaves_training_bit_identical_and_measures_the_evaluate_stage_loss(workdir):
    """Curves on (tiny.yaml: every 1500 tokens) vs off: the same losses and weights to the bit; the curve's points
    sit where they should and its last validation point is evaluate's val_loss of the final model on the subset."""
    import torch
    from transformers import LlamaForCausalLM

    from benchmark.config import params as params_mod
    from benchmark.training import corpus as corpus_mod
    from benchmark.training.validation import Curve

    on, off = workdir / "curve_on", workdir / "curve_off"
    _train(workdir, "c-9k", on, "--no-resume")
    _train(workdir, "c-9k", off, "--no-resume", params="params_nocurve.yaml")
    assert _losses(on) == _losses(off) and len(_losses(on)) > 10
    assert _same_weights(_weights(on), _weights(off))
    rec_on, rec_off = (json.loads((o / "train.json").read_text()) for o in (on, off))
    assert rec_on["final_train_loss"] == rec_off["final_train_loss"] and rec_on["steps"] == rec_off["steps"]
    assert _curve(off) == []
    curve = _curve(on)
    p = params_mod.load(workdir / "params.yaml")
    tokens = sorted({r["tokens"] for r in curve})
    crossed = [t // p.train.eval_every for t in tokens]
    assert tokens[-1] == rec_on["tokens"] and crossed[:-1] == list(range(1, len(tokens)))  # a point per multiple ...
    assert crossed[-1] in (len(tokens) - 1, len(tokens))  # ... and one at the end (or the last multiple's step is the end)
    log = {json.loads(line)["step"]: json.loads(line)["tokens"] for line in (on / "train_log.jsonl").read_text().splitlines()}
    assert all(log[r["step"]] == r["tokens"] for r in curve)
    tasks = [t.name for t in p.data.tasks]
    for t in tokens:
        at = [(r["split"], r["task"]) for r in curve if r["tokens"] == t]
        assert sorted(at) == sorted([("train", "all"), ("val", "all")] + [("val", x) for x in tasks])
    val = [r["loss"] for r in curve if r["split"] == "val" and r["task"] == "all"]
    assert val[-1] < val[0]  # it learns
    corpus = corpus_mod.load(workdir / "data")
    net = LlamaForCausalLM.from_pretrained(on / "model", torch_dtype=torch.float32).eval()
    again = Curve.build(p, corpus, net.config.max_position_embeddings)
    assert all(len(rows) == p.train.curve_examples for rows in again.rows.values())
    again.measure(net, rec_on["steps"], rec_on["tokens"], "cpu")
    last = {r["task"]: r["loss"] for r in curve if r["split"] == "val" and r["tokens"] == tokens[-1]}
    for row in again.points:
        if row["split"] == "val":
            assert abs(row["loss"] - last[row["task"]]) <= 1e-5 * last[row["task"]], row


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (found through /proc before any of them dies)."""
    kids = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
        except (OSError, IndexError, ValueError):
            continue
    for k in kids:
        _kill_tree(k)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_torchrun_ddp_matches_one_process(workdir):
    single, ddp = workdir / "single", workdir / "ddp"
    _train(workdir, "c-9k", single, "--no-resume")
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    cmd = [torchrun, "--nnodes", "1", "--nproc_per_node", "2", "--master-addr", "127.0.0.1", "--master-port", str(closed_port()),
           "-m", "benchmark", "train", "c-9k", "--params", str(workdir / "params.yaml"), "--data", str(workdir / "data"),
           "--out", str(ddp), "--no-resume"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**_env(), "OMP_NUM_THREADS": "1"}, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        _kill_tree(proc.pid)  # torchrun and its workers, which run in sessions of their own
        out, _ = proc.communicate(timeout=60)
        pytest.fail(f"torchrun did not finish in 300 s:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-3000:]
    a, b = _losses(single), _losses(ddp)
    assert len(a) == len(b) > 10
    for step, (x, y) in enumerate(zip(a, b), 1):
        assert abs(x - y) <= 1e-4 * abs(x), (step, x, y)
    rec = json.loads((ddp / "train.json").read_text())
    assert rec["world_size"] == 2 and rec["tokens"] == json.loads((single / "train.json").read_text())["tokens"]


def test_gpu_check_dry_runs_the_gpu_script_on_the_cpu():
    """bench/gpu_check.sh --dry: the GPU check's own code (data, >=100M config swapped for a tiny one,
    TargetLoss under torch.compile, fused AdamW, MFU report) runs on the CPU and its loss falls."""
    env = {**_env(), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--dry"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "PASS" in out and "MFU:" in out, out[-3000:]


def test_seed_spread_bench_trains_each_seed_and_scores_it_as_the_evaluate_stage_does(workdir, tmp_path):
    """bench/seed_spread.py: one grid point under 2 seeds with a params override; each seed's validation loss (and
    its stratified standard error) equals the evaluate stage's on the same model; the spread is over those values;
    a second call reuses the runs it kept."""
    out = tmp_path / "spread"
    cmd = [sys.executable, str(ROOT / "bench" / "seed_spread.py"), "--params", str(workdir / "params.yaml"),
           "--data", str(workdir / "data"), "--point", "c-9k", "--seeds", "0", "3", "--set", "train.warmup_fraction=0.2",
           "--out", str(out)]
    first = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert yaml.safe_load((out / "params.yaml").read_text())["train"]["warmup_fraction"] == 0.2
    losses = []
    for seed in (0, 3):
        run_dir = out / f"c-9k-seed{seed}"
        assert json.loads((run_dir / "train.json").read_text())["seed"] == seed
        _run(["evaluate", f"c-9k-seed{seed}", "--params", str(out / "params.yaml"), "--data", str(workdir / "data"),
              "--run-dir", str(run_dir)])
        stage = next(r for r in json.loads((run_dir / "metrics.json").read_text())
                     if r["metric"] == "val_loss" and r["task"] == "all")
        bench = json.loads((run_dir / "val.json").read_text())["all"]
        assert bench == pytest.approx([stage["value"], stage["stderr"]], rel=1e-6)  # 1 thread against 2
        losses.append(bench[0])
    assert losses[0] != losses[1]
    import statistics

    from benchmark.results.points import std_interval

    *_, said, last = first.stdout.strip().splitlines()
    assert last == (f"point=c-9k seeds=2 mean={statistics.mean(losses):.6f} "
                    f"rel_std={statistics.stdev(losses) / statistics.mean(losses):.6f}")
    low, high = std_interval(statistics.stdev(losses) / statistics.mean(losses), 2)  # 2 seeds: 0.45-32 x the estimate
    assert said.startswith("seed spread: ") and f"; 95 % interval {100 * low:.2f}-{100 * high:.2f} %: " in said
    assert said.endswith("rules the target out)" if low > 0.01 else "rules it in)" if high <= 0.01 else "cannot tell)")
    trained = (out / "c-9k-seed0" / "train.json").stat().st_mtime_ns
    again = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == last
    assert (out / "c-9k-seed0" / "train.json").stat().st_mtime_ns == trained
    # --parts: each model's validation loss by level and by part of a summary; each grouping sums to the task's loss
    # --pool reads the kept runs (nothing is trained) and pools their spread; one point pools to its own spread
    from benchmark.results.points import pooled_spread

    pooled = subprocess.run([sys.executable, str(ROOT / "bench" / "seed_spread.py"), "--pool", str(out)], cwd=ROOT,
                            env=_env(), capture_output=True, text=True, timeout=600)
    assert pooled.returncode == 0, pooled.stderr[-3000:]
    want = pooled_spread([(2, statistics.stdev(losses) / statistics.mean(losses))])
    assert pooled.stdout.strip().splitlines()[-1] == (
        f"pooled points=1 df=1 rel_std={want['rel_std']:.6f} low={want['rel_std_low']:.6f} "
        f"high={want['rel_std_high']:.6f} homogeneity_p=None")
    assert (out / "c-9k-seed0" / "train.json").stat().st_mtime_ns == trained
    empty = subprocess.run([sys.executable, str(ROOT / "bench" / "seed_spread.py"), "--pool", str(tmp_path)], cwd=ROOT,
                           env=_env(), capture_output=True, text=True, timeout=600)
    assert empty.returncode != 0 and f"{tmp_path}: no <point>-seed<k>/val.json" in empty.stderr
    parted = subprocess.run(cmd + ["--parts"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert parted.returncode == 0, parted.stderr[-3000:]
    assert parted.stdout.strip().splitlines()[-1] == last and "where the spread comes from" in parted.stdout
    for seed in (0, 3):
        parts = json.loads((out / f"c-9k-seed{seed}" / "parts.json").read_text())
        val = json.loads((out / f"c-9k-seed{seed}" / "val.json").read_text())
        for task, by in parts.items():
            for prefix in ("level", "part"):  # each grouping sums to the task's loss (data.loss_on text: input too)
                group = [v for k, v in by.items() if k.startswith(prefix)]
                if prefix == "part" and task == "classification":  # on its label alone (tiny.yaml): no parts to read
                    assert not group, by
                    continue
                assert sum(s for s, _ in group) / sum(n for _, n in group) == pytest.approx(val[task][0], rel=1e-6)
        facts = {k for k in parts["summarization"] if k.startswith("part")} - {"part end", "part input"}
        assert {"part end", "part input"} < set(parts["summarization"])  # the summaries have no name part (no name)
        assert facts and facts <= {f"part {kind}" for kind in ("city", "job", "buy", "visit", "food")}, facts
        assert {k for k in parts["translation"] if k.startswith("part")} == {"part input", "part target"}
    table = parted.stdout.split("where the spread comes from", 1)[1].splitlines()
    assert any(line.startswith("summarization ") for line in table) and any(line.startswith("  part city ") for line in table)
    bad = subprocess.run(cmd[:-4] + ["--set", "train.nope.x=1"], cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert bad.returncode != 0 and "params has no section 'train.nope'" in bad.stderr


def test_seed_spread_shows_a_failed_childs_error_not_its_progress_bar():
    """A train stage that stops mid-run prints its error on the line its progress bar holds, and the bar redraws over
    it; the bench's report of the failure keeps the error and drops the bars (it used to print the raw last 2,000
    characters, which a terminal showed as the bar alone)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("seed_spread", ROOT / "bench" / "seed_spread.py")
    seed_spread = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed_spread)
    bar = "d40-c3-seed0:  78%|███████▊  | 1.62M/2.06M [01:56<00:41, 10.8ktok/s]"
    stderr = ("loading\n" + "\r".join([bar] * 500) + "error: data.train_tokens: the classification shard ends before this "
              "run does\r" + bar + "\n")
    as_a_terminal_shows_it = [line.rsplit("\r", 1)[-1] for line in stderr[-2000:].split("\n")]
    assert not any("error:" in line for line in as_a_terminal_shows_it)  # what the bench printed before: a bar
    assert seed_spread.error_tail(stderr).splitlines() == [
        "loading", "error: data.train_tokens: the classification shard ends before this run does"]


def test_a_run_that_stops_mid_training_ends_its_progress_bar_before_the_error(workdir, tmp_path):
    """The shards run out mid-run: the error is the last thing on the terminal, on a line of its own, not drawn over
    by the progress bar (which used to be closed only at exit, after the error was printed)."""
    raw = yaml.safe_load((workdir / "params.yaml").read_text())
    raw["runs"]["too-long"] = {"size": "a", "tokens": 150_000}
    raw["data"]["tasks"]["translation"]["weight"] = 20  # its shard holds about a third of 160k tokens
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    r = subprocess.run([sys.executable, "-m", "benchmark", "train", "too-long", "--params", str(tmp_path / "params.yaml"),
                        "--data", str(workdir / "data"), "--out", str(tmp_path / "run")],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900)
    assert r.returncode == 2
    lines = [line for line in r.stderr.split("\n") if line.strip()]
    assert "%|" in r.stderr and lines[-1].startswith("error: data.train_tokens: "), r.stderr[-500:]

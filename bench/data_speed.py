"""Data speed: the train stage's loader (token shards -> DataLoader) into one training process with 0, 1 and 2
workers, beside the stream it replaced (generate, tokenize and pack between steps); then the real train stage
against bench/train_speed.py's step loop on the same size and batch (size 2m: d_model 256, 2 layers,
16 x 128), alternating, best of each.

    python bench/data_speed.py                    # ~3 minutes on 2 cores
    python bench/data_speed.py --rounds 1 --seconds 2

The last line is `loader_tokens_per_s=<best> stage_over_step=<ratio>`. Tokens are real (non-padding) tokens.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402
import yaml  # noqa: E402

from benchmark.training import corpus as corpus_mod, loader, shards
from benchmark.config import params as params_mod  # noqa: E402
from benchmark.stages.train import WARMUP_STEPS  # noqa: E402


def loader_speed(c, p, seq: int, batch: int, workers: int, seconds: float) -> float:
    """Real tokens/s the DataLoader hands to this process (tensors received, pinned if CUDA is present)."""
    names = c.task_names
    w = {t.name: t.weight for t in p.data.tasks}
    index = [shards.read(c.root / "shards" / n)[1] for n in names]
    # finite=True: the shards are cycled, so the timing is not bounded by their length
    planner = loader.Planner(index, [True] * len(names), names, [w[n] for n in names], p.data.seed, 0, seq,
                             loss_on=[c.loss_on_of(n) for n in names], target_weight=[c.target_weight_of(n) for n in names])
    v = c.vocab
    rows = loader.ShardRows(c.root / "shards", names, {"pad": v.pad, "bos": v.bos, "eos": v.eos, "sep": v.sep},
                            [v.tasks[n] for n in names], seq, loss_on=[c.loss_on_of(n) for n in names],
                            target_weight=[c.target_weight_of(n) for n in names])
    dl = loader.loader(rows, loader.micro_batches(planner, loader.Batching(batch, batch), 0, 1 << 62),
                       workers=workers, pin_memory=torch.cuda.is_available())
    it = iter(dl)
    for _ in range(3 + 2 * workers):  # worker start-up and the first prefetch are not the steady state
        next(it)
    tokens, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        b = next(it)
        tokens += b["n_real"]
        assert b["input_ids"].shape == (batch, seq)
    tps = tokens / (time.perf_counter() - t0)
    del it
    return tps


def old_stream_speed(c, p, seq: int, batch: int, seconds: float) -> float:
    from benchmark.training.data import Packer, TrainStream
    from benchmark.training.tokenizer import encoder

    sources = corpus_mod.training_sources(p.data.tasks, p.data.seed, 0, c.root)
    pk = Packer(TrainStream(sources, {t.name: t.weight for t in p.data.tasks}, seed=0), encoder(c.tokenizer), c.vocab, seq,
                loss_on=c.loss_on)
    pk.next_batch(batch)
    tokens, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        tokens += pk.next_batch(batch)[3]
    return tokens / (time.perf_counter() - t0)


def stage_speed(tmp: Path, raw: dict, tokens: int, i: int) -> float:
    """tokens/s (after warm-up) of `python -m benchmark train` on size 2m, as its train.json records it."""
    import train_speed

    d, L, h = train_speed.SIZES["2m"]
    cfg = {**raw, "model": {"seq_len": train_speed.SEQ_LEN,
                            "sizes": {"2m": {"d_model": d, "n_layers": L, "n_heads": h, "lr": 1e-3, "batch_size": train_speed.BATCH}}},
           "runs": {"bench-2m": {"size": "2m", "tokens": tokens}}}
    (tmp / "stage.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))  # task order is part of the data
    out = tmp / f"stage{i}"
    r = subprocess.run([sys.executable, "-m", "benchmark", "train", "bench-2m", "--params", str(tmp / "stage.yaml"),
                        "--data", str(tmp / "data"), "--out", str(out), "--no-resume"], cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        raise RuntimeError(f"the train stage failed:\n{r.stderr[-2000:]}")
    return json.loads((out / "train.json").read_text())["tokens_per_s"]


def step_speed(tmp: Path, p, steps: int, warmup: int) -> float:
    """tokens/s of bench/train_speed.py's loop (this project's train_step on batches made beforehand)."""
    import train_speed

    data, c = train_speed.batches(warmup + steps, tmp / "data", p)
    d, L, h = train_speed.SIZES["2m"]
    secs, toks, _ = train_speed.ours(train_speed.build(d, L, h, c.tokenizer.get_vocab_size()), data, warmup, False)
    return toks / secs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=4.0, help="per loader configuration")
    ap.add_argument("--rounds", type=int, default=2, help="alternating stage/step repetitions; best of each")
    ap.add_argument("--steps", type=int, default=60, help="timed steps of the step loop (the stage trains as many tokens)")
    args = ap.parse_args()
    import train_speed

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["tokenizer"]["vocab_size"] = train_speed.VOCAB
    raw["data"]["train_tokens"] = 1_000_000
    raw["runs"] = {k: v for k, v in raw["runs"].items() if v["tokens"] <= 1_000_000}  # the shards cover these
    p = params_mod.parse(raw)
    with tempfile.TemporaryDirectory() as tmp:
        from benchmark.stages.prepare import prepare

        tmp = Path(tmp)
        t0 = time.perf_counter()
        prepare(p, tmp / "data")
        print(f"prepare (tokenizer, shards of {p.data.train_tokens:,} generated tokens): {time.perf_counter() - t0:.1f} s")
        c = corpus_mod.load(tmp / "data")
        print(f"loader into one process, {args.batch} x {args.seq}, real tokens/s (load average {os.getloadavg()[0]:.1f}):")
        best = 0.0
        for workers in (0, 1, 2):
            tps = loader_speed(c, p, args.seq, args.batch, workers, args.seconds)
            best = max(best, tps)
            print(f"  {workers} workers: {tps:>12,.0f}")
        old = old_stream_speed(c, p, args.seq, args.batch, args.seconds)
        print(f"  the stream it replaced (Packer.next_batch, in process): {old:,.0f} ({best / old:.0f}x less than the best)")
        step_tokens = int(args.steps * train_speed.BATCH * train_speed.SEQ_LEN * 0.8)
        stage, step = 0.0, 0.0
        for i in range(args.rounds):  # alternating, so a slow spell of the machine hits both
            step = max(step, step_speed(tmp, p, args.steps, WARMUP_STEPS))  # the stage's own warm-up
            stage = max(stage, stage_speed(tmp, raw, step_tokens, i))
            print(f"  round {i + 1}: best so far: step loop {step:,.0f} tok/s, train stage {stage:,.0f} tok/s", flush=True)
        print(f"size 2m, {train_speed.BATCH} x {train_speed.SEQ_LEN}: train stage {stage:,.0f} tok/s (after its warm-up, "
              f"loader, logging and lr schedule included) vs the step loop {step:,.0f} tok/s "
              f"(load average {os.getloadavg()[0]:.1f})")
    print(f"loader_tokens_per_s={best:.0f} stage_over_step={stage / step:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

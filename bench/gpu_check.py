"""Body of bench/gpu_check.sh: a >= 100M model, a few hundred steps, loss must fall; tokens/s and MFU.

Then the stage part: the real train stage (`python -m benchmark train`: token shards, DataLoader, no per-step
host sync, torch.compile with static shapes) on the same model size for a fixed number of steps, its tokens/s
(after warm-up) beside the step-only figure, its MFU and when its first optimizer step landed; and the real
evaluate stage on that model (bf16 batched generation with the KV cache), its generated tokens/s.
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

import numpy as np
import torch

from benchmark.training import corpus as corpus_mod, model as model_mod, trainer
from benchmark.config import params as params_mod
from benchmark.training.data import Packer, TrainStream
from benchmark.training.tokenizer import encoder

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dry", action="store_true", help="CPU, tiny model, few steps: check the code path only")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--stage-steps", type=int, default=None, help="optimizer steps of the train-stage part")
    ap.add_argument("--no-stage", action="store_true", help="the step-only part alone")
    args = ap.parse_args()
    import yaml

    from benchmark.stages.prepare import prepare

    cuda = torch.cuda.is_available() and not args.dry
    if not cuda and not args.dry:
        print("FAIL: no CUDA device (use --dry to check the script on a CPU)")
        return 1
    device = "cuda" if cuda else "cpu"
    d, L, h, seq, batch, steps = (1024, 8, 16, 1024, 32, 300) if cuda else (64, 2, 2, 128, 4, 60)
    steps = args.steps or steps
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["tokenizer"] = {"vocab_size": 4096 if cuda else 512, "train_examples": 2000 if cuda else 200}
    raw["data"]["validation_examples"] = raw["data"]["test_examples"] = 20 if cuda else 8
    stage_steps = args.stage_steps or (150 if cuda else 12)
    raw["data"]["train_tokens"] = int(stage_steps * batch * seq * 0.9)  # the stage part's shards (real tokens < positions)
    raw["model"]["seq_len"] = seq
    # one run within the shards (the default grid's runs are longer; stage_part writes the run it trains)
    raw["runs"] = {"check": {"size": next(iter(raw["model"]["sizes"])), "tokens": raw["data"]["train_tokens"]}}
    p = params_mod.parse(raw)
    tmp_dir = tempfile.TemporaryDirectory()
    tmp = tmp_dir.name
    t0 = time.perf_counter()
    prepare(p, Path(tmp) / "data")
    c = corpus_mod.load(Path(tmp) / "data")
    print(f"prepare (tokenizer, token shards of {p.data.train_tokens:,} tokens): {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    sources = corpus_mod.training_sources(p.data.tasks, p.data.seed, 0, Path(tmp) / "data")
    packer = Packer(TrainStream(sources, {t.name: t.weight for t in p.data.tasks}, seed=0), encoder(c.tokenizer),
                    c.vocab, seq, loss_on=c.loss_on)
    batches = [packer.next_batch(batch) for _ in range(steps)]
    print(f"data: {steps} batches of {batch} x {seq} tokens in {time.perf_counter() - t0:.1f} s")
    vocab = c.tokenizer.get_vocab_size()
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    cfg = model_mod.llama_config(d_model=d, n_layers=L, n_heads=h, vocab_size=vocab, seq_len=seq)
    cfg._attn_implementation = "sdpa"
    net = LlamaForCausalLM(cfg).to(device)
    n = model_mod.count_params_of(net).total
    print(f"model: d_model={d} n_layers={L} N={n / 1e6:.1f}M on {device}"
          + (f" ({torch.cuda.get_device_name(0)})" if cuda else ""))
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    opt = trainer.build_optimizer(net, lr=6e-4, weight_decay=0.1, betas=(0.9, 0.95))
    model = trainer.TargetLoss(net, compile=not args.no_compile)  # --dry compiles too: the same code path
    cap = None
    if not args.no_compile:  # static shapes: the largest kept / target-predicting counts of these batches
        counts = [trainer.host_positions(torch.from_numpy(b[1]), torch.from_numpy(b[2])) for b in batches]
        cap = (max(len(x[0]) for x in counts), max(len(x[1]) for x in counts))
    warm = min(20, steps // 4)
    losses, t_start, tokens = [], None, 0
    for i, b in enumerate(batches):
        if i == warm:
            if cuda:
                torch.cuda.synchronize()
            t_start = time.perf_counter()
        lr = trainer.lr_at(i / steps, peak=6e-4 if cuda else 3e-3, warmup_fraction=0.05, min_lr_ratio=0.1)
        loss, _ = trainer.train_step(model, opt, b, lr=lr, grad_clip=1.0, device=device, clip_params=list(net.parameters()),
                                     capacity=cap)
        losses.append(loss)
        if i >= warm:
            tokens += b[3]
        if i % max(1, steps // 10) == 0:
            print(f"step {i:4d}  loss {loss:.4f}", flush=True)
    if cuda:
        torch.cuda.synchronize()
    secs = time.perf_counter() - t_start
    tps = tokens / secs
    per_tok = model_mod.flops_with_attention(n_params=n, tokens=1, n_layers=L, d_model=d, seq_len=seq)
    peak = trainer.gpu_peak_flops(torch.cuda.get_device_name(0)) if cuda else trainer.measure_matmul_peak()
    k = max(1, steps // 10)
    first, last = float(np.mean(losses[:k])), float(np.mean(losses[-k:]))
    print(f"tokens/s: {tps:,.0f}   achieved: {tps * per_tok / 1e12:.2f} TFLOP/s   "
          f"MFU: {tps * per_tok / peak:.1%} of {'bf16 dense card peak' if cuda else 'measured fp32 matmul'} "
          f"{peak / 1e12:.1f} TFLOP/s")
    ok = np.isfinite(last) and last < 0.8 * first
    print(f"loss: first {k} steps {first:.3f} -> last {k} steps {last:.3f}: {'PASS' if ok else 'FAIL'} (must fall by 20 %)")
    if not args.no_stage:
        del model, opt, net
        if cuda:
            torch.cuda.empty_cache()
        real_per_step = tokens / max(1, steps - warm)
        ok = stage_part(Path(tmp), raw, cuda, (d, L, h, seq, batch), stage_steps, real_per_step, tps,
                        not args.no_compile) and ok
    tmp_dir.cleanup()
    if args.dry:
        print("dry run: the code path works on CPU; run without --dry on a CUDA machine for the real check")
    return 0 if ok else 1


def stage_part(tmp: Path, raw: dict, cuda: bool, shape: tuple, steps: int, real_per_step: float, step_tps: float,
               compile_: bool) -> bool:
    """The real train stage on the same size for about `steps` optimizer steps, then the real evaluate stage."""
    import yaml

    d, L, h, seq, batch = shape
    cfg = {**raw, "model": {"seq_len": seq, "sizes": {"check": {"d_model": d, "n_layers": L, "n_heads": h, "lr": 6e-4 if cuda else 3e-3,
                                                                "batch_size": batch}}},
           "runs": {"check": {"size": "check", "tokens": int(steps * real_per_step)}},
           "train": {**raw["train"], "device": "cuda" if cuda else "cpu", "compile": compile_, "checkpoint_every": 0,
                     "log_every": 50, "loader_workers": 2 if cuda else 1}}
    cfg["evaluate"] = {**raw["evaluate"], "max_new_tokens": 64}
    (tmp / "check.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))  # task order is part of the data
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    common = ["--params", str(tmp / "check.yaml"), "--data", str(tmp / "data")]
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "benchmark", "train", "check", *common, "--out", str(tmp / "run"), "--no-resume"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode:
        print(f"stage: FAIL, the train stage exited with {r.returncode}:\n{r.stderr[-3000:]}")
        return False
    row = json.loads((tmp / "run" / "train.json").read_text())
    ratio = row["tokens_per_s"] / step_tps
    print(f"stage: python -m benchmark train, {row['steps']} steps of {batch} x {seq} in {time.perf_counter() - t0:.0f} s: "
          f"{row['tokens_per_s']:,.0f} tokens/s after warm-up vs {step_tps:,.0f} step-only ({ratio:.0%}); "
          f"MFU: {row['mfu'] or 0:.1%}; first optimizer step {row['first_step_s']:.1f} s after process start; "
          f"warm-up {row['warmup_s']:.1f} s; data wait {row['data_wait_s']:.2f} s")
    r = subprocess.run([sys.executable, "-m", "benchmark", "evaluate", "check", *common, "--run-dir", str(tmp / "run")],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    gen = [line for line in r.stderr.splitlines() if "generated tokens/s" in line]
    if r.returncode or not gen:
        print(f"evaluate: FAIL, exit {r.returncode}:\n{r.stderr[-3000:]}")
        return False
    print(f"evaluate: {gen[-1].split(': ', 1)[1]}; training: {row['tokens_per_s']:,.0f} tokens/s")
    if cuda:
        verdict = ratio >= 0.9 and (row["mfu"] or 0) >= 0.45 and row["first_step_s"] <= 90
        print(f"stage targets (>= 90 % of step-only, MFU >= 45 %, first step <= 90 s): {'PASS' if verdict else 'MISS'}")
    return True


if __name__ == "__main__":
    sys.exit(main())

"""Body of bench/gpu_check.sh: a >= 100M model, a few hundred steps, loss must fall; tokens/s and MFU."""
from __future__ import annotations

import argparse
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
    raw["data"]["validation_examples"] = raw["data"]["test_examples"] = 20
    p = params_mod.parse(raw)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        prepare(p, Path(tmp))
        c = corpus_mod.load(tmp)
        sources = corpus_mod.training_sources(p.data.tasks, p.data.seed, 0, Path(tmp))
        packer = Packer(TrainStream(sources, {t.name: t.weight for t in p.data.tasks}, seed=0), encoder(c.tokenizer),
                        c.vocab, seq)
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
    warm = min(20, steps // 4)
    losses, t_start, tokens = [], None, 0
    for i, b in enumerate(batches):
        if i == warm:
            if cuda:
                torch.cuda.synchronize()
            t_start = time.perf_counter()
        lr = trainer.lr_at(i / steps, peak=6e-4 if cuda else 3e-3, warmup_fraction=0.05, min_lr_ratio=0.1)
        loss, _ = trainer.train_step(model, opt, b, lr=lr, grad_clip=1.0, device=device, clip_params=list(net.parameters()))
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
    if args.dry:
        print("dry run: the code path works on CPU; run without --dry on a CUDA machine for the real check")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Training throughput: this project's loop against transformers.Trainer, side by side in one process.

For each model size, both train the same freshly initialised Llama on the same packed batches of
the generated task suite for the same number of tokens; the first steps of each (thread-pool start,
allocator, torch.compile) are excluded from the timing. Tokens are real (non-padding) tokens.
Prints tokens/s, achieved FLOP/s with attention counted (Hoffmann et al. 2022, App. F), MFU and HFU
against a fp32 matmul peak measured in this process, and the ratio of the two loops. Where the ratio
comes from: this project's loop computes only what the loss depends on (the decoder on the
positions some target depends on, so no padding; its last layer but k and v, and the LM head, on
the positions followed by a target); Trainer runs the transformers model on every position of the
same rows (the shares are printed first).

    pip install -e ".[bench]"                    # accelerate, which Trainer needs
    python bench/train_speed.py                  # 3 sizes, ~5 minutes on 2 cores
    python bench/train_speed.py --steps 20 --sizes 2m   # quick look
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmark.training import corpus as corpus_mod, model as model_mod, trainer
from benchmark.config import params as params_mod  # noqa: E402
from benchmark.training.data import IGNORE, Packer, TrainStream  # noqa: E402
from benchmark.training.tokenizer import encoder  # noqa: E402

SIZES = {  # name: (d_model, n_layers, n_heads); N (total) printed below
    "0.5m": (128, 2, 4),
    "2m": (256, 2, 4),
    "6m": (320, 4, 5),
}
SEQ_LEN, BATCH, VOCAB = 128, 16, 1024


def batches(n: int, data_dir: Path, p) -> list[tuple]:
    c = corpus_mod.load(data_dir)
    sources = corpus_mod.training_sources(p.data.tasks, p.data.seed, 0, data_dir)
    pk = Packer(TrainStream(sources, {t.name: t.weight for t in p.data.tasks}, seed=0), encoder(c.tokenizer), c.vocab, SEQ_LEN,
                loss_on=c.loss_on)
    return [pk.next_batch(BATCH) for _ in range(n)], c


def executed_per_token(counts, per_real: dict, *, n_layers: int, d_model: int) -> dict[str, float]:
    """Training FLOPs each loop executes per real token, with the 6-FLOPs-per-parameter rule of
    Kaplan et al. 2020 (Sec. 2.1) applied to the rows each part actually runs on; the tied
    embedding counts as the head's matmul, attention over whole rows (Hoffmann et al. 2022, App. F).
    This project's loop: every layer but the last on the needed positions; in the last layer, the
    input norm, k and v there too, and q, o, the MLP, the final norm and the head on the
    target-predicting positions only."""
    layer = counts.nonembedding - model_mod.count_params(d_model=d_model, n_layers=n_layers - 1, vocab_size=0).nonembedding
    kv = 2 * d_model * d_model + d_model  # input norm, k_proj, v_proj of one layer
    rest = counts.nonembedding - (n_layers - 1) * layer - kv  # the rest of the last layer, final norm
    attention = 12.0 * n_layers * SEQ_LEN * d_model * per_real["positions"]
    ours = 6.0 * (counts.nonembedding - rest) * per_real["needed"] + 6.0 * (rest + counts.embedding) * per_real["targets"]
    return {"hf Trainer": 6.0 * counts.total * per_real["positions"] + attention, "this project": ours + attention}


def build(d, L, h, vocab, seed=0):
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = model_mod.llama_config(d_model=d, n_layers=L, n_heads=h, vocab_size=vocab, seq_len=SEQ_LEN)
    cfg._attn_implementation = "sdpa"
    return LlamaForCausalLM(cfg)


def ours(net, data, warmup: int, compile_: bool) -> tuple[float, int, float]:
    """(seconds, tokens) for the timed steps of this project's train_step; returns the last loss too."""
    opt = trainer.build_optimizer(net, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95))
    model = trainer.TargetLoss(net, compile=compile_)
    model.train()
    # compiled: static shapes, the largest kept and target-predicting counts of these batches (loader._pad)
    cap = None
    if compile_:
        counts = [trainer.host_positions(torch.from_numpy(b[1]), torch.from_numpy(b[2])) for b in data]
        cap = (max(len(c[0]) for c in counts), max(len(c[1]) for c in counts))
    t0, tokens, loss = None, 0, float("nan")
    for i, b in enumerate(data):
        if i == warmup:
            t0 = time.perf_counter()
        loss, _ = trainer.train_step(model, opt, b, lr=1e-3, grad_clip=1.0, device="cpu", clip_params=list(net.parameters()),
                                     capacity=cap)
        if i >= warmup:
            tokens += b[3]
    return time.perf_counter() - t0, tokens, loss


def hf_trainer(net, data, warmup: int, out: str) -> tuple[float, int, float]:
    """The same steps through transformers.Trainer (its defaults; CPU, fp32, AdamW, grad clip 1.0)."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    rows = [{"input_ids": torch.from_numpy(ids[r]), "labels": torch.from_numpy(lab[r]), "position_ids": torch.from_numpy(pos[r])}
            for ids, lab, pos, _ in data for r in range(ids.shape[0])]
    real = [b[3] for b in data]
    marks = {}

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == warmup:
                marks["t0"] = time.perf_counter()

        def on_train_end(self, args, state, control, **kw):
            marks["t1"] = time.perf_counter()

    args = TrainingArguments(output_dir=out, per_device_train_batch_size=BATCH, max_steps=len(data), learning_rate=1e-3,
                             weight_decay=0.1, adam_beta2=0.95, max_grad_norm=1.0, lr_scheduler_type="cosine",
                             logging_steps=10_000, save_strategy="no", report_to=[], use_cpu=True, seed=0,
                             dataloader_drop_last=True, disable_tqdm=True)

    def collate(items):
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}

    t = Trainer(model=net, args=args, train_dataset=rows, data_collator=collate, callbacks=[Clock()])
    t.train_dataset = rows
    t._get_train_sampler = lambda *a, **k: torch.utils.data.SequentialSampler(rows)  # same order as ours
    state = t.train()
    return marks["t1"] - marks["t0"], sum(real[warmup:]), float(state.training_loss)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--steps", type=int, default=60, help="timed steps per loop (after --warmup)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2, help="alternating repetitions; the best tokens/s of each loop is shown")
    ap.add_argument("--compile", action="store_true", help="also time this project's loop with torch.compile")
    args = ap.parse_args()
    peak = trainer.measure_matmul_peak(1.0)
    print(f"fp32 matmul peak measured at the start: {peak / 1e9:.1f} GFLOP/s ({torch.get_num_threads()} threads)")
    with tempfile.TemporaryDirectory() as tmp:
        import yaml

        from benchmark.stages.prepare import prepare

        raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
        raw["tokenizer"]["vocab_size"] = VOCAB
        p = params_mod.parse(raw)
        prepare(p, Path(tmp) / "data")
        data, c = batches(args.warmup + args.steps, Path(tmp) / "data", p)
        vocab = c.tokenizer.get_vocab_size()
        timed = data[args.warmup:]
        real = sum(b[3] for b in timed)
        needed = sum(int(trainer.needed_positions(torch.from_numpy(b[1]), torch.from_numpy(b[2])).sum()) for b in timed)
        per_real = {"positions": len(timed) * BATCH * SEQ_LEN / real, "needed": needed / real,
                    "targets": sum(int((b[1][:, 1:] != IGNORE).sum()) for b in timed) / real}
        print(f"the batches both loops get: {1 - 1 / per_real['positions']:.1%} of positions are padding, "
              f"{per_real['needed'] / per_real['positions']:.1%} are needed by some target (real tokens but each "
              f"example's final EOS), {per_real['targets'] / per_real['positions']:.1%} are followed by a target. "
              "This project's loop runs the decoder on the needed positions only, and its last layer (but k and v) "
              "and the head on those followed by a target; Trainer computes every position.")
        head = f"{'size':>5} {'N':>8} {'loop':<14} {'tok/s':>8} {'GFLOP/s':>8} {'MFU':>6} {'HFU':>6} {'loss*':>9}"
        print(f"best of {args.rounds} alternating rounds, {args.steps} timed steps of {BATCH} x {SEQ_LEN} after {args.warmup}")
        table = []
        for name in args.sizes:
            d, L, h = SIZES[name]
            counts = model_mod.count_params(d_model=d, n_layers=L, vocab_size=vocab)
            n = counts.total
            per_tok = model_mod.flops_with_attention(n_params=n, tokens=1, n_layers=L, d_model=d, seq_len=SEQ_LEN)
            done = executed_per_token(counts, per_real, n_layers=L, d_model=d)
            peak = max(peak, trainer.measure_matmul_peak(1.0))  # re-measured per size; the highest is used (conservative MFU)
            loops = [("this project", lambda net: ours(net, data, args.warmup, False)),
                     ("hf Trainer", lambda net: hf_trainer(net, data, args.warmup, str(Path(tmp) / "trainer")))]
            if args.compile:
                loops.insert(1, ("this + compile", lambda net: ours(net, data, args.warmup, True)))
            best: dict[str, tuple[float, float]] = {}
            for _ in range(args.rounds):  # loops alternate, so a slow spell of the machine hits both
                for label, fn in loops:
                    secs, toks, loss = fn(build(d, L, h, vocab))
                    if toks / secs > best.get(label, (0.0, 0.0))[0]:
                        best[label] = (toks / secs, loss)
            table.append((name, n, per_tok, done, [(label, *best[label]) for label, _ in loops]))
            print(f"{name}: done", file=sys.stderr, flush=True)
        peak = max(peak, trainer.measure_matmul_peak(1.0))
        print(head)  # printed at the end, so that every MFU uses the same (highest) peak
        print("-" * len(head))
        for name, n, per_tok, done, rows in table:
            for label, tps, loss in rows:
                hfu = tps * done["hf Trainer" if label == "hf Trainer" else "this project"] / peak
                print(f"{name:>5} {n / 1e6:>7.2f}M {label:<14} {tps:>8.0f} {tps * per_tok / 1e9:>8.1f} "
                      f"{tps * per_tok / peak:>6.1%} {hfu:>6.1%} {loss:>9.4f}")
            base = dict((r[0], r[1]) for r in rows)["hf Trainer"]
            print("      ratio vs Trainer: " + ", ".join(f"{r[0]} {r[1] / base:.2f}x" for r in rows if r[0] != "hf Trainer")
                  + f" (Trainer executes {done['hf Trainer'] / done['this project']:.2f}x the FLOPs per real token: "
                  "the ratio at equal HFU)")
    print(f"MFU and HFU against the highest fp32 matmul peak measured in this process: {peak / 1e9:.1f} GFLOP/s. "
          "MFU: model FLOPs (6N + attention) per real token, the same count for both loops. HFU: the FLOPs each "
          "loop actually executes per real token (Trainer: every position of the rows, full head; this project: "
          "the needed positions, the last layer but k and v and the head on target-predicting positions only, "
          "attention over the whole rows). MFU passes HFU, and can pass 100 %, when a loop skips work that "
          "cannot change the loss; HFU cannot pass 100 %.")
    print("* this project: loss of the last step; Trainer: its mean training loss over all steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""DVC stage `evaluate`: validation loss per task, greedy test predictions and their scores, for one trained run.

Writes `runs/<id>/predictions.parquet` (one row per test example, the `predictions` table),
`runs/<id>/metrics.json` (every `metrics` row of the run: validation loss per task and overall, BLEU,
ROUGE, accuracy, each with its standard error and signature) and `runs/<id>/headline.json` (its headline
numbers as one flat object, the DVC metrics file `dvc metrics show` lists).

Scoring runs in this process rather than as a stage of its own: a DVC stage costs about 50 ms of every
no-op `dvc repro` and a process about 5 s of imports, against about 1 s of scoring per run.
"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from benchmark import cli
from benchmark.config import params as params_mod


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def generation_batch(net, max_len: int, device: str, requested: int) -> int:
    """`evaluate.batch_size` on the CPU; on a GPU, the batch whose bf16 KV cache (2 x layers x d_model x
    max_len x 2 bytes per sequence) and activations fill about half the free memory."""
    import torch

    if device != "cuda":
        return requested
    free, _ = torch.cuda.mem_get_info()
    cfg = net.config
    per_seq = 2 * cfg.num_hidden_layers * cfg.hidden_size * max_len * 2 + 4 * cfg.vocab_size * 4
    return max(requested, min(4096, int(free * 0.5 // per_seq)))


def generate(net, corpus, task: str, examples: list[dict], batch_size: int, max_new_tokens: int, device: str,
             stats: dict | None = None) -> list[str]:
    """Greedy decoding, batched (left padding) with the KV cache, bf16 autocast on a GPU; returns texts in
    example order (and adds the generated tokens and seconds to `stats`)."""
    import time

    import torch

    from benchmark.training.data import prompt_ids
    from benchmark.training.tokenizer import encoder

    encode = encoder(corpus.tokenizer)
    max_len = net.config.max_position_embeddings
    prompts = [prompt_ids(corpus.vocab, task, ids[-(max_len - max_new_tokens - 3):]) for ids in encode([e["input"] for e in examples])]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths share a batch
    out: list[str] = [""] * len(prompts)
    batch_size = generation_batch(net, max_len, device, batch_size)
    t0, n_new = time.perf_counter(), 0
    for idx in _batches(order, batch_size):
        width = max(len(prompts[i]) for i in idx)
        ids = torch.full((len(idx), width), corpus.vocab.pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, width - len(prompts[i]):] = torch.tensor(prompts[i])
            mask[r, width - len(prompts[i]):] = 1
        bf16 = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else contextlib.nullcontext()
        with torch.no_grad(), bf16:
            gen = net.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                               max_new_tokens=max_new_tokens, eos_token_id=corpus.vocab.eos,
                               pad_token_id=corpus.vocab.pad, use_cache=True)
        for r, i in enumerate(idx):
            new = gen[r, width:].tolist()
            if corpus.vocab.eos in new:
                new = new[:new.index(corpus.vocab.eos)]
            n_new += len(new) + 1
            out[i] = corpus.tokenizer.decode(new, skip_special_tokens=True).strip()
    if stats is not None:
        stats["tokens"] = stats.get("tokens", 0) + n_new
        stats["seconds"] = stats.get("seconds", 0.0) + time.perf_counter() - t0
        stats["batch_size"] = batch_size
    return out


def evaluate(p: params_mod.Params, run_id: str, data_dir: Path, run_dir: Path) -> tuple[list[dict], list[dict]]:
    """(validation-loss metric rows, prediction rows) for one run."""
    import torch
    from tqdm import tqdm
    from transformers import LlamaForCausalLM

    from benchmark.training import corpus as corpus_mod
    from benchmark.training.validation import validation_losses
    from benchmark.results import io
    from benchmark.evaluation import metrics
    from benchmark.tasks import example_id
    from benchmark.training.tokenizer import encoder

    record = io.read_json(run_dir / "train.json")
    if record["status"] != "completed":
        print(f"{run_id}: status {record['status']}: no evaluation", file=sys.stderr)
        return [], []
    device = "cuda" if p.train.device != "cpu" and torch.cuda.is_available() else "cpu"
    corpus = corpus_mod.load(data_dir)
    net = LlamaForCausalLM.from_pretrained(run_dir / "model", torch_dtype=torch.float32).to(device).eval()
    # val_loss as each task takes it (data.loss_on, or the task's own); target_loss (the target and </s> alone) beside
    # it when some task's loss is on its whole text
    on_of = {task: corpus.loss_on_of(task) for task in corpus.task_names}
    with_target = any(on != "target" for on in on_of.values())
    kinds = {"val": metrics.LOSS} | ({"target": metrics.TARGET_LOSS} if with_target else {})
    loss_rows, pred_rows, gen = [], [], {}
    pooled = {on: ([], [], []) for on in kinds}  # sums, counts, task of every example
    with tqdm(corpus.task_names, desc=f"evaluate {run_id}", unit="task", file=sys.stderr) as bar:  # closed on errors too
        for task in bar:
            for on, (sums, counts) in validation_losses(net, corpus, task, p.evaluate.batch_size, device).items():
                if on not in kinds:
                    continue
                for acc, new in zip(pooled[on], (sums, counts, [task] * len(sums))):
                    acc += new
                value, se = metrics.token_weighted_loss(sums, counts)
                sig = metrics.loss_signature(on_of[task] if on == "val" else "target")
                loss_rows.append({"source": "local", "run_id": run_id, "task": task, "metric": kinds[on], "value": value,
                                  "stderr": se, "n": int(sum(counts)), "signature": sig})
            test = corpus.split(task, "test")
            val_targets = encoder(corpus.tokenizer)([e["target"] for e in corpus.split(task, "validation")])
            cap = min(p.evaluate.max_new_tokens, 4 + int(1.5 * max(len(t) for t in val_targets)))
            preds = generate(net, corpus, task, test, p.evaluate.batch_size, cap, device, gen)
            for ex, pred in zip(test, preds):
                pred_rows.append({"source": "local", "run_id": run_id, "task": task, "example_id": example_id(ex),
                                  "difficulty": int(ex.get("difficulty", 0)), "input": ex["input"],
                                  "reference": ex["target"], "prediction": pred})
    if gen.get("seconds"):
        print(f"{run_id}: generated {gen['tokens']} tokens in {gen['seconds']:.1f} s: {gen['tokens'] / gen['seconds']:.0f} "
              f"generated tokens/s (batch {gen['batch_size']}, {device})", file=sys.stderr)
    for on, (all_s, all_c, all_task) in pooled.items():
        value, se = metrics.token_weighted_loss(all_s, all_c, strata=all_task)  # each task's validation size is fixed
        loss_rows.append({"source": "local", "run_id": run_id, "task": "all", "metric": kinds[on], "value": value,
                          "stderr": se, "n": int(sum(all_c)),
                          "signature": metrics.loss_signature(on_of if on == "val" else "target")})
    return loss_rows, pred_rows


def main(argv: list[str]) -> int:
    ap = cli.parser("evaluate", __doc__, params=True)
    ap.add_argument("run_id")
    ap.add_argument("--data", default="data")
    ap.add_argument("--run-dir", default=None, help="default: runs/<run_id>")
    args, p = cli.parse(ap, argv)
    from benchmark.results import io, schema
    from benchmark.results.parquet import table_to_arrow, write_parquet_atomic

    from benchmark.errors import StageError
    from benchmark.evaluation import metrics

    run_dir = Path(args.run_dir or f"runs/{args.run_id}")
    loss_rows, pred_rows = evaluate(p, args.run_id, Path(args.data), run_dir)
    try:
        scores = metrics.score_predictions(pred_rows, {t.name: t.kind for t in p.data.tasks}, args.run_id,
                                           p.evaluate.bootstrap, p.evaluate.seed)
    except ValueError as e:
        raise StageError(str(e)) from None
    rows = [schema.validate_record("metrics", r, where=f"{run_dir}/metrics.json") for r in loss_rows + scores]
    write_parquet_atomic(table_to_arrow(pred_rows, "predictions"), run_dir / "predictions.parquet")
    io.write_json_atomic(run_dir / "metrics.json", rows)
    io.write_json_atomic(run_dir / "headline.json", metrics.headline_values(rows))
    for r in rows:
        digits = 4 if r["metric"] in (metrics.LOSS, metrics.TARGET_LOSS) else 2
        print(f"{args.run_id}: {r['metric']}/{r['task']} = {r['value']:.{digits}f} ± {r['stderr'] or 0:.{digits}f}")
    return 0

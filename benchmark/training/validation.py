"""Validation loss (mean loss per scored token, teacher forced; which tokens are scored is data.loss_on): the evaluate
stage's val_loss and the learning curve.

The evaluate stage scores every validation example; during training, `Curve` scores a fixed subset of
them (the same examples at every point, chosen from data.seed) every `train.eval_every` tokens, with the
same code, so a curve's last point and the run's val_loss mean the same thing (the seed article's §5.4
plots train and validation loss over training).
"""
from __future__ import annotations

import math
import time
from collections import deque
from typing import Sequence

import numpy as np


def encode_rows(corpus, task: str, examples: Sequence[dict], max_len: int,
                loss_on: str | None = None) -> list[tuple[list[int], int]]:
    """(ids, first scored token) of each example, from position 0 (as training packs them, one per row here); the
    tokens that carry the loss are the task's (corpus.loss_on_of) unless `loss_on` is given."""
    from benchmark.training.data import first_scored

    on = loss_on or corpus.loss_on_of(task)
    return [(ids, first_scored(n_prompt, on)) for ids, n_prompt in _example_rows(corpus, task, examples, max_len)]


def _example_rows(corpus, task: str, examples: Sequence[dict], max_len: int) -> list[tuple[list[int], int]]:
    """(ids, prompt length) of each example, tokenized once (the rows of every loss_on)."""
    from benchmark.training.data import example_ids
    from benchmark.training.tokenizer import encoder

    encode = encoder(corpus.tokenizer)
    enc_in, enc_tg = encode([e["input"] for e in examples]), encode([e["target"] for e in examples])
    return [example_ids(corpus.vocab, task, i, t, max_len) for i, t in zip(enc_in, enc_tg)]


def _rows_and_targets(corpus, task: str, examples: Sequence[dict],
                      max_len: int) -> tuple[list[tuple[list[int], int]], list[int]]:
    """encode_rows (the task's loss_on) and the number of target and </s> tokens of each example, from one
    tokenization."""
    from benchmark.training.data import first_scored

    on = corpus.loss_on_of(task)
    pairs = _example_rows(corpus, task, examples, max_len)
    return [(ids, first_scored(n_prompt, on)) for ids, n_prompt in pairs], [len(ids) - n_prompt for ids, n_prompt in pairs]


WIDTH_MULTIPLE = 16  # batches pad to a multiple of this: each new shape costs the CPU kernels a first call


def _forward(net, rows: Sequence[tuple[list[int], int]], pad: int, batch_size: int, device: str):
    """(row indices, per-position target loss [b, width - 1] on the device, 0 where ignored, target mask) of each
    batch under torch.no_grad. Batches are formed in order of length, so a batch pads to nearly its own length (on
    the validation splits this halves the positions run forward)."""
    import torch
    import torch.nn.functional as F

    from benchmark.training.data import IGNORE
    from benchmark.training.trainer import _upcast

    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = [rows[i] for i in idx]
        width = -(-max(len(ids) for ids, _ in batch) // WIDTH_MULTIPLE) * WIDTH_MULTIPLE  # few distinct shapes
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        for r, (seq, first) in enumerate(batch):
            ids[r, :len(seq)] = torch.tensor(seq)
            labels[r, first:len(seq)] = torch.tensor(seq[first:])
        with torch.no_grad():
            logits = net(input_ids=ids.to(device), use_cache=False).logits
            # next-token cross-entropy per position (0 where ignored), as trainer.loss_sum sums it
            per_token = F.cross_entropy(_upcast(logits[:, :-1].reshape(-1, logits.size(-1))),
                                        labels[:, 1:].reshape(-1).to(device), ignore_index=IGNORE, reduction="none")
        yield idx, per_token.view(len(batch), -1), labels[:, 1:] != IGNORE


def row_losses(net, rows: Sequence[tuple[list[int], int]], pad: int, batch_size: int,
               device: str) -> tuple[list[float], list[int]]:
    """Per-example summed loss (nats) and scored token counts under torch.no_grad (one host read); the
    results come back in the rows' order."""
    sums, counts, _ = row_losses_and_tails(net, rows, pad, batch_size, device)
    return sums, counts


def row_losses_and_tails(net, rows: Sequence[tuple[list[int], int]], pad: int, batch_size: int, device: str,
                         tails: Sequence[int] | None = None) -> tuple[list[float], list[int], list[float] | None]:
    """row_losses, and with `tails` (one count per row) also the summed loss of each row's last tails[i] scored
    tokens from the same forward pass (the target and </s> of an example scored from its input on); None without."""
    import torch

    order, sums, tail_sums, counts = [], [], [], []
    for idx, per_token, mask in _forward(net, rows, pad, batch_size, device):
        order += idx
        sums.append(per_token.sum(dim=1))
        if tails is not None:
            # per_token[:, j] is the loss of token j + 1: a row's last t tokens are j >= len - t - 1
            start = torch.tensor([len(rows[i][0]) - tails[i] - 1 for i in idx])
            tail = (torch.arange(per_token.size(1))[None, :] >= start[:, None]) & mask
            tail_sums.append((per_token * tail.to(per_token.device)).sum(dim=1))
        counts += mask.sum(dim=1).tolist()
    values = torch.cat(sums).tolist() if sums else []
    tail_values = torch.cat(tail_sums).tolist() if tail_sums else []
    out_sums, out_counts, out_tails = [0.0] * len(rows), [0] * len(rows), [0.0] * len(rows)
    for k, i in enumerate(order):
        out_sums[i], out_counts[i] = values[k], counts[k]
        if tails is not None:
            out_tails[i] = tail_values[k]
    return out_sums, out_counts, out_tails if tails is not None else None


def row_token_losses(net, rows: Sequence[tuple[list[int], int]], pad: int, batch_size: int,
                     device: str) -> list[list[float]]:
    """Per-example loss of each scored token in order (the terms row_losses sums), in the rows' order."""
    out: list[list[float]] = [[] for _ in rows]
    for idx, per_token, mask in _forward(net, rows, pad, batch_size, device):
        for r, (i, values) in enumerate(zip(idx, per_token.cpu())):
            out[i] = values[mask[r]].tolist()
    return out


def validation_loss(net, corpus, task: str, batch_size: int, device: str) -> tuple[list[float], list[int]]:
    """Per-example summed loss and scored token counts over the task's whole validation split (its loss_on)."""
    return validation_losses(net, corpus, task, batch_size, device)["val"]


def validation_losses(net, corpus, task: str, batch_size: int,
                      device: str) -> dict[str, tuple[list[float], list[int]]]:
    """{"val": ..., "target": ...}, each (per-example summed loss, scored token counts) over the task's validation
    split: the loss as the task takes it (corpus.loss_on_of: data.tasks.<task>.loss_on, else data.loss_on; val_loss)
    and on the target and </s> alone, the task loss of the two-step law (Bhagia et al. 2024 score a task by its
    correct answer's loss), from one forward pass (the same numbers twice where the task's loss is on the target)."""
    rows, n_target = _rows_and_targets(corpus, task, corpus.split(task, "validation"), net.config.max_position_embeddings)
    if corpus.loss_on_of(task) == "target":
        val = row_losses(net, rows, corpus.vocab.pad, batch_size, device)
        return {"val": val, "target": val}
    sums, counts, tails = row_losses_and_tails(net, rows, corpus.vocab.pad, batch_size, device, n_target)
    return {"val": (sums, counts), "target": (tails, n_target)}


def losses_by_part(net, corpus, task: str, batch_size: int, device: str) -> dict[str, tuple[float, int]]:
    """Summed loss and scored tokens of the task's validation split by difficulty level ("level k") and by part:
    "part input" is the input and <sep> (scored when data.loss_on is "text"); where the task's generator names the
    parts of a target (benchmark.tasks.PARTS), its tokens go by part ("part <name>"; "part end" is </s>, "part rest"
    a token outside every span; a token belongs to the part holding its first character), else they are "part
    target". Each grouping sums to the task's validation loss: this is that loss read by skill, for telling which
    skill a seed's model has learned (bench/seed_spread.py --parts)."""
    from benchmark.tasks import PARTS

    examples = corpus.split(task, "validation")
    rows, n_target = _rows_and_targets(corpus, task, examples, net.config.max_position_embeddings)
    losses = row_token_losses(net, rows, corpus.vocab.pad, batch_size, device)
    parts_of = PARTS.get(corpus.generator(task) or "")
    offsets = ([e.offsets for e in corpus.tokenizer.encode_batch([x["target"] for x in examples], add_special_tokens=False)]
               if parts_of else None)
    out: dict[str, list] = {}

    def add(key: str, value: float) -> None:
        acc = out.setdefault(key, [0.0, 0])
        acc[0] += value
        acc[1] += 1

    for k, (ex, values) in enumerate(zip(examples, losses)):
        for v in values:
            add(f"level {ex.get('difficulty', 0)}", v)
        cut = len(values) - n_target[k]
        for v in values[:cut]:
            add("part input", v)
        target = values[cut:]
        if parts_of:
            spans = parts_of(ex["target"])
            labels = [next((name for a, b, name in spans if a <= start < b), "rest") for start, _ in offsets[k]]
            for v, label in zip(target, labels[:len(target) - 1] + ["end"]):  # the target may be cut (example_ids)
                add(f"part {label}", v)
        elif cut:
            for v in target:
                add("part target", v)
    return {key: (s, n) for key, (s, n) in sorted(out.items())}


def fixed_subset(n: int, k: int, seed: int, task_index: int) -> list[int]:
    """Indices of k of n validation examples: a pure function of (data.seed, task position), in order."""
    rng = np.random.default_rng([seed, task_index])
    return sorted(int(i) for i in rng.choice(n, size=min(k, n), replace=False))


# Sequences per forward pass of a curve evaluation: fixed, so that the curve depends on train params only (not on
# evaluate.batch_size) and the logits of long sequences with a large vocabulary fit a GPU (16 x 1024 x 32k fp32 = 2 GB).
CURVE_BATCH = 16


class Curve:
    """The learning curve of one run: validation loss on a fixed subset (per task and 'all') and the train
    loss beside it, every `every` tokens and at the end. Its state (points so far, the recent train
    losses) goes into each checkpoint, so a resumed run continues the same curve.

    It never changes training: it reads the losses the loop has already brought to the host, evaluates
    under torch.no_grad with the model in eval mode (then back to train mode), and restores every torch
    RNG state it could have touched.
    """

    def __init__(self, every: int, rows: dict[str, list], pad: int, batch_size: int, window: int):
        self.every, self.rows, self.pad, self.batch_size = every, rows, pad, batch_size
        self.recent: deque = deque(maxlen=max(1, window))  # (summed loss, targets) of the last steps read
        self.points: list[dict] = []  # {split, task, tokens, step, loss}
        self.seconds = 0.0  # spent evaluating (over every segment of a resumed run)

    @classmethod
    def build(cls, p, corpus, max_len: int) -> "Curve":
        """The run's curve from params: train.eval_every, train.curve_examples per task (0 = off: no rows)."""
        rows: dict[str, list] = {}
        if p.train.eval_every:
            for i, task in enumerate(corpus.task_names):
                examples = corpus.split(task, "validation")
                pick = fixed_subset(len(examples), p.train.curve_examples, p.data.seed, i)
                rows[task] = encode_rows(corpus, task, [examples[j] for j in pick], max_len)
        return cls(p.train.eval_every, rows, corpus.vocab.pad, CURVE_BATCH, max(10, p.train.log_every))

    def due(self, tokens: int, step_tokens: int) -> bool:
        """Whether the step that brought the run to `tokens` crossed a multiple of `every`."""
        return bool(self.every) and tokens // self.every > (tokens - step_tokens) // self.every

    def observe(self, summed_loss: float, n_targets: int) -> None:
        """A step's train loss, once read from the device (no extra host sync): the training objective per scored
        token, so a task with data.tasks.<task>.target_weight above 1 counts its answers that many times here (the
        validation loss counts every token once)."""
        self.recent.append((float(summed_loss), int(n_targets)))

    def measure(self, net, step: int, tokens: int, device: str) -> None:
        """Add the points at (step, tokens): train loss over the recent steps, validation loss per task and 'all'."""
        import torch

        from benchmark.evaluation.metrics import token_weighted_loss

        if not self.every:
            return
        t0 = time.perf_counter()
        cpu_rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if device == "cuda" else None
        was_training = net.training
        net.eval()
        try:
            all_s, all_c, val = [], [], []
            for task, rows in self.rows.items():
                sums, counts = row_losses(net, rows, self.pad, self.batch_size, device)
                val.append((task, token_weighted_loss(sums, counts)[0]))
                all_s += sums
                all_c += counts
            val.append(("all", token_weighted_loss(all_s, all_c)[0]))
        finally:
            net.train(was_training)
            torch.set_rng_state(cpu_rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)
        finite = lambda v: v if math.isfinite(v) else None  # noqa: E731  (JSON has no NaN: null)
        if self.recent:
            total, n = (sum(x) for x in zip(*self.recent))
            self.points.append({"split": "train", "task": "all", "tokens": tokens, "step": step,
                                "loss": finite(total / max(1, n))})
        self.points += [{"split": "val", "task": t, "tokens": tokens, "step": step, "loss": finite(v)} for t, v in val]
        self.seconds += time.perf_counter() - t0

    def state_dict(self) -> dict:
        return {"points": list(self.points), "recent": [list(x) for x in self.recent], "seconds": self.seconds}

    def load_state_dict(self, d: dict | None) -> None:
        d = d or {}
        self.points = [dict(x) for x in d.get("points", [])]
        self.recent.clear()
        self.recent.extend((float(s), int(n)) for s, n in d.get("recent", []))
        self.seconds = float(d.get("seconds", 0.0))

    def records(self, run_id: str) -> list[dict]:
        """The points as rows of the `curves` table (benchmark.results.schema)."""
        return [{"source": "local", "run_id": run_id, **pt} for pt in self.points]

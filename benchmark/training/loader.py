"""The train stage's input: rows packed from the token shards, planned in the training process and built by
DataLoader workers (pinned memory, prefetch), one item per micro-batch.

The plan is a pure function of the shard index, `data.seed`, the run's seed, `seq_len` and the batch: the
k-th example of the mixture is task `mixture(k)`; a task's j-th example is its shard's j-th (generated
tasks) or the j-th of an epoch-wise permutation (Hub tasks, cycled). Rows never split an example, so the
position between steps is one number, the index of the example that opens the next row: a resumed run
sees exactly the rows an uninterrupted one would, whatever the number of workers.
Each process of a DDP run plans the whole global batch (lengths only) and builds only its own rows
(rank, rank + world, ...), so the step's global token and target counts need no communication.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from benchmark.training import shards
from benchmark.training.data import IGNORE, first_scored_by_task

MIX_BLOCK = 1 << 16  # mixture draws come in blocks with a generator seeded by (seed, block)
STRATUM = 64  # ... and each block in strata of 64 examples that hold every task in its share
BUFFER = 8192  # examples planned at a time
CAPACITY_STEPS = 8  # the compiled path's static token counts are set from the first steps of the plan


class ShardExhausted(RuntimeError):
    """A generated task's shard is shorter than the run needs (one line, naming data.train_tokens)."""


def mixture(seed: int, cum: np.ndarray, k0: int, k1: int) -> np.ndarray:
    """Task number of examples k0..k1-1 of the mixture (cumulative task weights `cum`).

    Stratified: every STRATUM consecutive examples hold each task in its share of the weights, to one example
    (systematic sampling, one uniform offset per stratum), in a random order. Runs that differ only in their
    seed then see the same number of examples of each task, so the task mix adds no seed noise: with
    independent draws, 3,000 examples' task counts varied by 3 % between seeds, and the validation loss with them.
    """
    out = []
    n = MIX_BLOCK // STRATUM
    for b in range(k0 // MIX_BLOCK, (k1 - 1) // MIX_BLOCK + 1 if k1 > k0 else k0 // MIX_BLOCK):
        rng = np.random.default_rng([seed, b])
        u = (np.arange(STRATUM) + rng.random((n, 1))) / STRATUM
        tasks = np.minimum(np.searchsorted(cum, u.ravel(), side="right"), len(cum) - 1).reshape(n, STRATUM)
        tasks = np.take_along_axis(tasks, np.argsort(rng.random((n, STRATUM)), axis=1), axis=1).ravel()
        lo, hi = max(k0, b * MIX_BLOCK) - b * MIX_BLOCK, min(k1, (b + 1) * MIX_BLOCK) - b * MIX_BLOCK
        out.append(tasks[lo:hi])
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + n) for every (s, n)."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    first = np.cumsum(lengths) - lengths
    return np.repeat(starts - first, lengths) + np.arange(total)


def _target_weights(target_weight: Sequence[int] | None, n_tasks: int) -> np.ndarray:
    """One data.tasks.<task>.target_weight per task (None: 1 for every task), as an int array."""
    return np.asarray(target_weight if target_weight is not None else [1] * n_tasks, np.int64)


class Planner:
    """Packs the mixture into rows from example lengths alone (no token is read)."""

    def __init__(self, index: list[np.ndarray], finite: list[bool], names: list[str], weights: list[float],
                 seed: int, run_seed: int, seq_len: int, state: dict | None = None,
                 loss_on: str | Sequence[str] = "target", target_weight: Sequence[int] | None = None):
        self.index, self.finite, self.names, self.seq_len, self.loss_on = index, finite, names, seq_len, loss_on
        self.target_weight = _target_weights(target_weight, len(names))
        self.mix_seed, self.perm_seed = seed * 1_000_003 + run_seed, (seed, run_seed)
        w = np.asarray(weights, dtype=float)
        self.cum = np.cumsum(w / w.sum())
        self.k = int((state or {}).get("index", 0))  # example that opens the next row
        self.counts = np.zeros(len(names), np.int64)  # examples of each task before the buffer
        for a in range(0, self.k, 1 << 22):
            self.counts += np.bincount(mixture(self.mix_seed, self.cum, a, min(self.k, a + (1 << 22))), minlength=len(names))
        self._perm: dict[tuple[int, int], np.ndarray] = {}
        self._buf = np.zeros((0, 5), np.int64)  # task, shard row, input len, target len (with </s>), length
        self._p = 0
        self._cum: np.ndarray | None = None  # prefix sums of the buffer's lengths

    def state_dict(self) -> dict:
        return {"index": self.k}

    def _rows_of(self, t: int, js: np.ndarray) -> np.ndarray:
        n = len(self.index[t])
        if not self.finite[t]:
            return np.where(js < n, js, -1)  # past the end: an error only if a row reaches it (next_row)
        out = np.empty_like(js)
        epochs, within = np.divmod(js, n)
        for e in np.unique(epochs):
            if (t, e) not in self._perm:
                if len(self._perm) > 2 * len(self.names):
                    self._perm.clear()
                self._perm[(t, e)] = np.random.default_rng([*self.perm_seed, t, int(e)]).permutation(n)
            sel = epochs == e
            out[sel] = self._perm[(t, e)][within[sel]]
        return out

    def _fill(self) -> None:
        k_end = self.k + (len(self._buf) - self._p)
        self.counts += np.bincount(self._buf[:self._p, 0], minlength=len(self.names))
        tasks = mixture(self.mix_seed, self.cum, k_end, k_end + BUFFER)
        new = np.zeros((BUFFER, 5), np.int64)
        new[:, 0] = tasks
        ahead = self.counts + np.bincount(self._buf[self._p:, 0], minlength=len(self.names))
        T = self.seq_len
        for t in range(len(self.names)):
            sel = np.flatnonzero(tasks == t)
            if not len(sel):
                continue
            rows = self._rows_of(t, ahead[t] + np.arange(len(sel)))
            n_in, n_tgt = self.index[t][np.maximum(rows, 0), 1], self.index[t][np.maximum(rows, 0), 2]
            t_len = np.minimum(n_tgt, T - 4) + 1  # example_ids: the target cut to T - 4, then </s>
            i_len = np.minimum(n_in, T - t_len - 3)  # the input cut from the left to the room left
            new[sel, 1], new[sel, 2], new[sel, 3], new[sel, 4] = rows, i_len, t_len, 3 + i_len + t_len
        self._buf = np.concatenate([self._buf[self._p:], new])
        self._p, self._cum = 0, None

    def scored(self, rows: np.ndarray) -> int:
        """Tokens that carry the loss in these examples (rows of `next_row`): from `first_scored` to </s>."""
        return int((rows[:, 4] - first_scored_by_task(3 + rows[:, 2], rows[:, 0], self.loss_on)).sum())

    def loss_entries(self, rows: np.ndarray) -> int:
        """Entries of the loss these examples give (ShardRows' `out`): `scored`, plus each answer token (the target
        but its </s>) once more for every count of its task's target_weight above 1."""
        return self.scored(rows) + int(((self.target_weight[rows[:, 0]] - 1) * (rows[:, 3] - 1)).sum())

    def next_row(self) -> np.ndarray:
        """The examples of the next row, [n, 5] (task, shard row, input len, target len, length)."""
        if len(self._buf) - self._p < self.seq_len:
            self._fill()
        if self._cum is None:
            self._cum = np.concatenate([[0], np.cumsum(self._buf[:, 4])])
        n = int(np.searchsorted(self._cum, self._cum[self._p] + self.seq_len, side="right")) - 1 - self._p
        row = self._buf[self._p:self._p + n]
        gone = np.flatnonzero(self._buf[self._p:self._p + n + 1, 1] < 0)  # the row and the example that closes it
        if len(gone):
            name = self.names[int(self._buf[self._p + gone[0], 0])]
            raise ShardExhausted(f"data.train_tokens: the {name} shard ends before this run does; raise "
                                 "data.train_tokens and run the prepare stage again")
        self._p += n
        self.k += n
        return row


@dataclass
class Batching:
    """How a global batch is split: `batch_size` rows per step, this process's rows in micro-batches."""

    batch_size: int
    micro_batch_size: int
    rank: int = 0
    world: int = 1

    @property
    def micro_steps(self) -> int:
        return self.batch_size // self.world // self.micro_batch_size


def micro_batches(planner: Planner, b: Batching, tokens: int, budget: int,
                  capacity: tuple[int, int] | None = None) -> Iterator[dict]:
    """Descriptors of the micro-batches of this process until the run's token budget is reached.
    `capacity` = (kept tokens, target-predicting tokens) of the compiled path's static shapes;
    a micro-batch above it is marked for the eager path."""
    step = 0
    while tokens < budget:
        rows = [planner.next_row() for _ in range(b.batch_size)]
        n_real = int(sum(int(r[:, 4].sum()) for r in rows))
        n_tgt = sum(planner.scored(r) for r in rows)
        tokens += n_real
        step += 1
        mine = rows[b.rank::b.world]
        for m in range(b.micro_steps):
            part = mine[m * b.micro_batch_size:(m + 1) * b.micro_batch_size]
            need = sum(int((r[:, 4] - 1).sum()) for r in part)
            use = sum(planner.loss_entries(r) for r in part)
            static = capacity is not None and need <= capacity[0] and use <= capacity[1]
            yield {"rows": part, "micro": m, "last": m == b.micro_steps - 1, "n_real": n_real, "n_targets": n_tgt,
                   "state": planner.state_dict(), "capacity": capacity if static else None}


def capacity(planner_factory, b: Batching, margin: float = 1.05, multiple: int = 64) -> tuple[int, int]:
    """Static (kept, target-predicting) token counts per micro-batch for the compiled path: the largest of
    the plan's first steps, with a margin, rounded up (capped at the micro-batch's positions)."""
    top, plan = (0, 0), planner_factory()
    for i, d in enumerate(micro_batches(plan, b, 0, 1 << 62)):
        if i >= CAPACITY_STEPS * b.micro_steps:
            break
        need = sum(int((r[:, 4] - 1).sum()) for r in d["rows"])
        use = sum(plan.loss_entries(r) for r in d["rows"])
        top = (max(top[0], need), max(top[1], use))
    full = b.micro_batch_size * plan.seq_len
    up = lambda v, cap: min(cap, -(-int(v * margin) // multiple) * multiple)  # noqa: E731
    return up(top[0], full), up(top[1], full * int(plan.target_weight.max()))


class ShardRows(torch.utils.data.Dataset):
    """Builds a micro-batch from its descriptor: input ids and position ids [rows, T], and the flat
    positions the decoder keeps (`idx`), the entries of idx that predict a token carrying the loss (`out`; which
    tokens do is `loss_on`, one value or one per task of `names`, benchmark.training.data.first_scored_by_task) and
    those tokens (`tgt`), as trainer.TargetLoss takes them. A task whose `target_weight` w is above 1
    (data.tasks.<task>.target_weight) has its answer tokens (the target but its </s>) in out and tgt w times: the
    first time in place, then in blocks, one per extra count, after every other entry (the loss is a sum over
    entries, so the answer weighs w times as much). Shards are opened lazily (in each worker)."""

    def __init__(self, root: Path, names: list[str], special: dict[str, int], task_tokens: list[int], seq_len: int,
                 loss_on: str | Sequence[str] = "target", target_weight: Sequence[int] | None = None):
        self.root, self.names, self.special, self.task_tokens, self.seq_len = root, names, special, task_tokens, seq_len
        self.loss_on = loss_on
        self.target_weight = _target_weights(target_weight, len(names))
        self._shards = None

    def __len__(self) -> int:  # a map-style dataset addressed by descriptors, not by 0..n-1
        return 1 << 62

    def _open(self):
        if self._shards is None:
            self._shards = [shards.read(self.root / n) for n in self.names]
        return self._shards

    def __getitem__(self, d: dict) -> dict:
        T, sp = self.seq_len, self.special
        rows = d["rows"]
        n_rows = len(rows)
        ex = np.concatenate(rows)
        ln, i_len, t_len = ex[:, 4], ex[:, 2], ex[:, 3]
        row_of = np.repeat(np.arange(n_rows), [len(r) for r in rows])
        start = np.concatenate([np.cumsum(r[:, 4]) - r[:, 4] for r in rows]) + row_of * T  # flat start of each example
        # one entry per real token: its example e and its place k in the example
        e = np.repeat(np.arange(len(ex)), ln)
        k = np.arange(len(e)) - np.repeat(np.cumsum(ln) - ln, ln)
        flat = start[e] + k
        ids = np.full(n_rows * T, sp["pad"], dtype=np.int64)
        # padding: its own block, positions 0, 1, ... after each row's last example
        pos = np.tile(np.arange(T), n_rows)
        ends = np.array([int(r[:, 4].sum()) for r in rows])
        pos -= np.repeat(ends, T) * (pos >= np.repeat(ends, T))
        pos[flat] = k
        ie, le = i_len[e], ln[e]
        ids[flat[k == 0]] = sp["bos"]
        ids[flat[k == 1]] = np.asarray(self.task_tokens)[ex[e[k == 1], 0]]
        ids[flat[k == 2 + ie]] = sp["sep"]
        ids[flat[k == le - 1]] = sp["eos"]
        text = ((k >= 2) & (k < 2 + ie)) | ((k >= 3 + ie) & (k < le - 1))  # input, then target tokens
        task_of = ex[e, 0]
        for t, (tok, index) in enumerate(self._open()):
            sel = text & (task_of == t)
            if not sel.any():
                continue
            es, ks = e[sel], k[sel]
            off, n_in = index[ex[es, 1], 0], index[ex[es, 1], 1]
            # input: its last i_len tokens (cut from the left); target: its first t_len - 1
            src = np.where(ks < 2 + i_len[es], off + n_in - i_len[es] + ks - 2, off + n_in + ks - 3 - i_len[es])
            ids[flat[sel]] = tok[src]
        # kept: each example but its final </s>; predicting: from the token before the first scored one (<sep> when
        # only the target is scored) to the token before </s>
        keep = k < le - 1
        idx = flat[keep]
        first = first_scored_by_task(3 + ie, task_of, self.loss_on)
        out = np.flatnonzero((k >= first - 1)[keep])
        scored = k >= first
        tgt = ids[flat[scored]]
        w = self.target_weight[task_of[scored]]
        if (w > 1).any():  # the answer's tokens again, once per count of target_weight above 1
            answer = (k[scored] >= 3 + ie[scored]) & (k[scored] < le[scored] - 1)
            extra = [np.flatnonzero(answer & (w > r)) for r in range(1, int(w.max()))]
            out, tgt = np.concatenate([out] + [out[x] for x in extra]), np.concatenate([tgt] + [tgt[x] for x in extra])
        if d["capacity"] is not None:
            idx, out, tgt = _pad(idx, out, tgt, n_rows * T, *d["capacity"])
        meta = {key: d[key] for key in ("micro", "last", "n_real", "n_targets", "state")}
        return {"input_ids": ids.reshape(n_rows, T), "position_ids": pos.reshape(n_rows, T), "idx": idx, "out": out,
                "tgt": tgt, "static": d["capacity"] is not None, **meta}


def _pad(idx: np.ndarray, out: np.ndarray, tgt: np.ndarray, positions: int, k_idx: int, k_out: int):
    """Fill idx up to k_idx with positions nothing kept attends to (padding, each example's final </s>:
    they follow every kept position of their block, under a causal mask) and out up to k_out with
    entries whose target is IGNORE (no loss, no gradient): static shapes, the same loss and gradients."""
    free = np.ones(positions, bool)
    free[idx] = False
    idx = np.concatenate([idx, np.flatnonzero(free)[:k_idx - len(idx)]])
    unused = np.ones(k_idx, bool)
    unused[out] = False
    free_out = np.flatnonzero(unused)
    # entries with an IGNORE target carry no loss wherever they point: positions out does not use, repeated where
    # out holds more entries than idx has positions (a target_weight above 1)
    extra = np.resize(free_out if len(free_out) else np.arange(k_idx), max(0, k_out - len(out)))
    return idx, np.concatenate([out, extra]), np.concatenate([tgt, np.full(len(extra), IGNORE, np.int64)])


class _Descriptors(torch.utils.data.Sampler):
    def __init__(self, make):
        self.make = make

    def __iter__(self):
        return iter(self.make())


def loader(dataset: ShardRows, descriptors, *, workers: int, pin_memory: bool, prefetch: int = 4):
    """A DataLoader over micro-batch descriptors (an iterable): workers build, the loader keeps order."""
    return torch.utils.data.DataLoader(dataset, batch_size=None, sampler=_Descriptors(lambda: descriptors),
                                       num_workers=workers, pin_memory=pin_memory,
                                       prefetch_factor=prefetch if workers else None, persistent_workers=False)

"""Token shards: each task's training examples tokenized once by `prepare`, read by memory map.

The layout of nanoGPT's `train.bin`, OLMo's and Megatron's indexed datasets: per task, one flat
array of token ids (`tokens.npy`, uint16 when the vocabulary fits, else uint32) and an example
index (`index.npy`, int64 [n, 3]: offset, input length, target length). An example's ids are its
input then its target, without special tokens; the loader adds `<s> <task> ... <sep> ... </s>`
and cuts to the run's `seq_len` (so one shard serves every sequence length).

Generated tasks: the first examples of the task's stream (held-out examples redrawn, as before),
enough for a run of `data.train_tokens` real tokens at the grid's `seq_len` (`examples_needed`);
generation and tokenization run in parallel processes. Hub tasks: the whole train split (the loader cycles
it, reshuffled every epoch), tokenized with `datasets.Dataset.map(num_proc=...)`.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

CHUNK = 2048  # examples per parallel generation job


def _dtype(vocab_size: int):
    return np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32


def _procs() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def write(path: Path, inputs: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], vocab_size: int) -> dict:
    """Write one task's shard; returns its summary for the manifest."""
    path.mkdir(parents=True, exist_ok=True)
    n_in = np.fromiter((len(a) for a in inputs), dtype=np.int64, count=len(inputs))
    n_tgt = np.fromiter((len(b) for b in targets), dtype=np.int64, count=len(targets))
    lens = n_in + n_tgt
    offsets = np.zeros(len(lens), dtype=np.int64)
    np.cumsum(lens[:-1], out=offsets[1:])
    tokens = np.empty(int(lens.sum()), dtype=_dtype(vocab_size))
    for off, a, b in zip(offsets.tolist(), inputs, targets):
        tokens[off:off + len(a)] = a
        tokens[off + len(a):off + len(a) + len(b)] = b
    for name, arr in (("tokens.npy", tokens), ("index.npy", np.stack([offsets, n_in, n_tgt], axis=1))):
        tmp = path / f".{name}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            np.save(f, arr)
        os.replace(tmp, path / name)
    return {"examples": len(lens), "tokens": int(lens.sum()) + 4 * len(lens)}  # + <s> <task> <sep> </s>


def read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, index) of one task's shard, memory-mapped (nothing is read until used)."""
    return np.load(path / "tokens.npy", mmap_mode="r"), np.load(path / "index.npy", mmap_mode="r")


def _generate_chunk(args) -> tuple[list[list[int]], list[list[int]]]:
    generator, seed, held, tok_json, start, stop = args
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tokenizers import Tokenizer

    from benchmark.training.corpus import generated_source

    src = generated_source(generator, seed, 0, held)
    tok = Tokenizer.from_str(tok_json)
    exs = [src(j) for j in range(start, stop)]
    enc = tok.encode_batch([e["input"] for e in exs] + [e["target"] for e in exs], add_special_tokens=False)
    n = len(exs)
    return [e.ids for e in enc[:n]], [e.ids for e in enc[n:]]


def generated(generator: str, seed: int, held: set[str], tok_json: str, n: int,
              procs: int | None = None) -> tuple[list[list[int]], list[list[int]]]:
    """The first n examples of a generated task's training stream, tokenized (parallel, deterministic)."""
    procs = procs or _procs()
    jobs = [(generator, seed, held, tok_json, a, min(n, a + CHUNK)) for a in range(0, n, CHUNK)]
    inputs: list[list[int]] = []
    targets: list[list[int]] = []
    if procs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(procs, len(jobs))) as pool:
            parts = list(pool.map(_generate_chunk, jobs))
    else:
        parts = [_generate_chunk(j) for j in jobs]
    for a, b in parts:
        inputs += a
        targets += b
    return inputs, targets


def examples_needed(train_tokens: int, shares: dict[str, float], mean_len: dict[str, float]) -> dict[str, int]:
    """Examples of each generated task a run of `train_tokens` real tokens draws, with room to spare: the
    mixture draws examples (not tokens) by task weight, so N = train_tokens / sum(share * mean length),
    and task t takes a binomial N * share of them (+ 5 % + 4 standard deviations)."""
    n_total = train_tokens / sum(shares[t] * mean_len[t] for t in shares)
    return {t: int(math.ceil(n_total * s * 1.05 + 4 * math.sqrt(n_total * s) + 16)) for t, s in shares.items()}


def _encode_batch(batch: dict, tok_json: str) -> dict:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tok_json)
    enc = tok.encode_batch(batch["input"] + batch["target"], add_special_tokens=False)
    n = len(batch["input"])
    return {"input_ids": [e.ids for e in enc[:n]], "target_ids": [e.ids for e in enc[n:]]}


def hub(rows: list[dict], tok_json: str, procs: int | None = None) -> tuple[list[list[int]], list[list[int]]]:
    """A Hub task's train split, tokenized with datasets' parallel `map` (in process when small)."""
    import datasets

    procs = procs or _procs()
    ds = datasets.Dataset.from_dict({"input": [r["input"] for r in rows], "target": [r["target"] for r in rows]})
    use = procs if len(rows) >= 20_000 and procs > 1 else None
    out = ds.map(_encode_batch, batched=True, batch_size=1000, num_proc=use, fn_kwargs={"tok_json": tok_json},
                 remove_columns=["input", "target"], keep_in_memory=True, desc=None)
    return out["input_ids"], out["target_ids"]

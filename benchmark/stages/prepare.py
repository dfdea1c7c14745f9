"""DVC stage `prepare`: validation/test splits of every task, the training text of Hub tasks, the tokenizer
and the token shards the train stage reads.

Writes `<out>/<task>/{validation,test}.jsonl` (and `train.jsonl` for Hub tasks), `<out>/tokenizer.json`,
`<out>/shards/<task>/{tokens,index}.npy` (benchmark/training/shards.py) and `<out>/manifest.json`, whose hash is
the data revision every run records.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from benchmark import cli
from benchmark.training import shards
from benchmark.config import params as params_mod
from benchmark.results import io
from benchmark.training import corpus
from benchmark.training.data import Vocab, example_ids
from benchmark.tasks import example_id, generated_split

_NO_VOCAB = Vocab(pad=0, bos=0, eos=0, sep=0, tasks={"t": 0})  # lengths only


def _digest(rows: list[dict]) -> str:
    return hashlib.sha256("".join(json.dumps(r, sort_keys=True) for r in rows).encode()).hexdigest()[:16]


def _held_out(task, p) -> tuple[list[dict], list[dict], list[dict] | None, dict]:
    """(validation, test, train or None, source description) of one task."""
    n_val, n_test = p.data.validation_examples, task.test_examples or p.data.test_examples
    if task.generator is not None:
        val = generated_split(task.generator, p.data.seed, "validation", n_val)
        test = generated_split(task.generator, p.data.seed, "test", n_test, exclude={example_id(e) for e in val})
        return val, test, None, {"generator": task.generator, "seed": p.data.seed}
    from benchmark.tasks import hub

    val = hub.load_split(task.hub, "validation", n_val)
    test = hub.load_split(task.hub, "test", n_test)
    held = {example_id(e) for e in val + test}
    train_all = hub.load_split(task.hub, "train")
    train = [e for e in train_all if example_id(e) not in held]
    if not train:
        raise hub.HubDataError(f"data.tasks.{task.name}.hub: the train split is empty after removing validation/test examples")
    src = {"hub": {"path": task.hub.path, "name": task.hub.name, "revision": task.hub.revision,
                   "splits": task.hub.splits, "columns": task.hub.columns},
           "train_removed_overlap": len(train_all) - len(train)}
    return val, test, train, src


def prepare(p: params_mod.Params, out: Path) -> dict:
    from tqdm import tqdm

    from benchmark.training.tokenizer import train_tokenizer

    manifest = {"seed": p.data.seed, "loss_on": p.data.loss_on, "tasks": {}, "tokenizer": {}}
    hub_train = {}
    with tqdm(p.data.tasks, desc="prepare tasks", unit="task", file=sys.stderr) as bar:  # closed on errors too
        for task in bar:
            val, test, train, src = _held_out(task, p)
            io.write_jsonl_atomic(out / task.name / "validation.jsonl", val)
            io.write_jsonl_atomic(out / task.name / "test.jsonl", test)
            entry = {"kind": task.kind, "weight": task.weight, "source": src,
                     "validation": {"n": len(val), "sha256": _digest(val)}, "test": {"n": len(test), "sha256": _digest(test)}}
            if task.loss_on is not None:  # the task's own (data.tasks.<task>.loss_on); else the manifest's loss_on
                entry["loss_on"] = task.loss_on
            if task.target_weight != 1:  # data.tasks.<task>.target_weight; absent: 1
                entry["target_weight"] = task.target_weight
            if train is not None:
                io.write_jsonl_atomic(out / task.name / "train.jsonl", train)
                entry["train"] = {"n": len(train), "sha256": _digest(train)}
                hub_train[task.name] = train
            manifest["tasks"][task.name] = entry

    # Tokenizer: trained on training text only (the first examples of each task's stream).
    names = [t.name for t in p.data.tasks]
    sources = corpus.training_sources(p.data.tasks, p.data.seed, run_seed=0, out=out, hub_train=hub_train)
    texts = []
    for name in names:
        for j in range(p.tokenizer.train_examples):
            ex = sources[name](j)
            texts += [ex["input"], ex["target"]]
    tok = train_tokenizer(texts, p.tokenizer.vocab_size, names)
    # mean example length of each task in a row of seq_len tokens, from these same examples (sizes the shards)
    mean_len, n = {}, p.tokenizer.train_examples
    for i, name in enumerate(names):
        enc = tok.encode_batch(texts[2 * i * n:2 * (i + 1) * n], add_special_tokens=False)
        mean_len[name] = float(np.mean([len(example_ids(_NO_VOCAB, "t", a.ids, b.ids, p.model.seq_len)[0])
                                        for a, b in zip(enc[0::2], enc[1::2])]))
    io.write_text_atomic(out / "tokenizer.json", tok.to_str())
    manifest["tokenizer"] = {"vocab_size": tok.get_vocab_size(), "train_examples_per_task": p.tokenizer.train_examples,
                             "sha256": hashlib.sha256(tok.to_str().encode()).hexdigest()[:16]}
    manifest["shards"] = _write_shards(p, out, tok, hub_train, mean_len)
    manifest["revision"] = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    io.write_json_atomic(out / "manifest.json", manifest)
    return manifest


def _write_shards(p: params_mod.Params, out: Path, tok, hub_train: dict, mean_len: dict[str, float]) -> dict:
    """Every task's training examples, tokenized once (benchmark/training/shards.py); their summary for the manifest."""
    tok_json, vocab = tok.to_str(), tok.get_vocab_size()
    total_w = sum(t.weight for t in p.data.tasks)
    need = shards.examples_needed(p.data.train_tokens, {t.name: t.weight / total_w for t in p.data.tasks}, mean_len)
    summary = {"train_tokens": p.data.train_tokens, "seq_len": p.model.seq_len}
    for task in p.data.tasks:
        if task.generator is not None:
            held = {example_id(e) for split in ("validation", "test") for e in io.read_jsonl(out / task.name / f"{split}.jsonl")}
            inputs, targets = shards.generated(task.generator, p.data.seed, held, tok_json, need[task.name])
        else:
            inputs, targets = shards.hub(hub_train[task.name], tok_json)
        summary[task.name] = {**shards.write(out / "shards" / task.name, inputs, targets, vocab),
                              "finite": task.generator is None}
    return summary


def main(argv: list[str]) -> int:
    ap = cli.parser("prepare", __doc__, params=True)
    ap.add_argument("--out", default="data")
    args, p = cli.parse(ap, argv)
    m = prepare(p, Path(args.out))
    for name, t in m["tasks"].items():
        print(f"{name}: {t['validation']['n']} validation, {t['test']['n']} test"
              + (f", {t['train']['n']} train" if "train" in t else
                 f", {m['shards'][name]['examples']} generated train examples in its shard"))
    print(f"tokenizer: {m['tokenizer']['vocab_size']} tokens; data revision {m['revision']}")
    return 0

"""The prepared data folder as objects: tokenizer, held-out splits and per-task training sources."""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from benchmark.results import io
from benchmark.training.data import Vocab
from benchmark.errors import StageError
from benchmark.tasks import example_id, generated_example


def _generated_source(generator: str, seed: int, run_seed: int, held_out: set[str]) -> Callable[[int], dict]:
    """j -> the j-th training example: a pure function of j; held-out examples are replaced by redraws."""
    def source(j: int) -> dict:
        split = f"train-{run_seed}"
        for attempt in range(1000):
            ex = generated_example(generator, seed, split if attempt == 0 else f"{split}-redraw{attempt}", j)
            if example_id(ex) not in held_out:
                return ex
        raise RuntimeError(f"{generator}: could not draw a training example outside validation/test")
    return source


generated_source = _generated_source


def _cyclic_source(rows: list[dict], seed: int, run_seed: int) -> Callable[[int], dict]:
    """j -> row of a finite train split, reshuffled every epoch (deterministically)."""
    cache: dict[int, list[int]] = {}

    def source(j: int) -> dict:
        epoch, i = divmod(j, len(rows))
        if epoch not in cache:
            order = list(range(len(rows)))
            random.Random(f"epoch:{seed}:{run_seed}:{epoch}").shuffle(order)
            cache.clear()
            cache[epoch] = order
        return rows[cache[epoch][i]]
    return source


def training_sources(tasks, seed: int, run_seed: int, out: Path, hub_train: dict | None = None) -> dict[str, Callable[[int], dict]]:
    """Per-task training sources; held-out ids are read from the prepared validation/test files."""
    sources = {}
    for task in tasks:
        if task.generator is not None:
            held = {example_id(e) for split in ("validation", "test") for e in io.read_jsonl(out / task.name / f"{split}.jsonl")}
            sources[task.name] = _generated_source(task.generator, seed, run_seed, held)
        else:
            rows = (hub_train or {}).get(task.name) or io.read_jsonl(out / task.name / "train.jsonl")
            sources[task.name] = _cyclic_source(rows, seed, run_seed)
    return sources


@dataclass
class Corpus:
    """Everything train and evaluate need from the prepared data folder."""

    root: Path
    manifest: dict
    tokenizer: object
    vocab: Vocab

    @property
    def task_names(self) -> list[str]:
        return list(self.manifest["tasks"])

    @property
    def revision(self) -> str:
        return self.manifest["revision"]

    @property
    def loss_on(self) -> str:
        """Which tokens of an example carry the loss (data.loss_on; folders prepared before it existed: "target")."""
        return self.manifest.get("loss_on", "target")

    def loss_on_of(self, task: str) -> str:
        """Which tokens of `task`'s examples carry the loss: its own (data.tasks.<task>.loss_on), else `loss_on`."""
        return self.manifest["tasks"][task].get("loss_on", self.loss_on)

    def target_weight_of(self, task: str) -> int:
        """How many times each answer token of `task` counts in the training loss (data.tasks.<task>.target_weight)."""
        return int(self.manifest["tasks"][task].get("target_weight", 1))

    def kind(self, task: str) -> str:
        return self.manifest["tasks"][task]["kind"]

    def generator(self, task: str) -> str | None:
        """The generator a task's examples come from; None for a Hub dataset."""
        return self.manifest["tasks"][task].get("source", {}).get("generator")

    def split(self, task: str, split: str) -> list[dict]:
        return io.read_jsonl(self.root / task / f"{split}.jsonl")


def load(root: str | Path) -> Corpus:
    from benchmark.training.tokenizer import load_tokenizer

    root = Path(root)
    if not (root / "manifest.json").exists():
        raise StageError(f"{root}/manifest.json not found: run the prepare stage first (dvc repro prepare)")
    manifest = io.read_json(root / "manifest.json")
    tok = load_tokenizer(root / "tokenizer.json")
    return Corpus(root=root, manifest=manifest, tokenizer=tok, vocab=Vocab.of(tok, list(manifest["tasks"])))

"""Examples as token ids, the deterministic training stream, and packing into fixed-length rows.

A training row is whole examples back to back, each `<s> <task> input <sep> target </s>`, padded
at the end. Which tokens carry the loss is `data.loss_on` (`first_scored`): every token after the task token
("text", a language model's loss, as on natural text) or the target and `</s>` only ("target"); a task may set its
own (`data.tasks.<task>.loss_on`, `first_scored_by_task`), and may weigh its answer in the training loss
(`data.tasks.<task>.target_weight`: loader.ShardRows counts each answer token that many times; the validation loss
counts every token once). The stream is a
pure function of its seed and position, so a resumed run sees exactly the rows an uninterrupted run would.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

PAD, BOS, EOS, SEP = "<pad>", "<s>", "</s>", "<sep>"
SPECIAL = [PAD, BOS, EOS, SEP]
IGNORE = -100  # label of positions that carry no loss
LOSS_ON = {
    "text": "every token after the task token (input words, <sep>, target words, </s>)",
    "target": "the target words and </s>",
}


def first_scored(n_prompt, loss_on: str):
    """Index in an example (`example_ids`) of the first token that carries the loss, given its prompt length
    (an int or a numpy array): the one rule training, validation and learning curves share."""
    if loss_on not in LOSS_ON:
        raise ValueError(f"loss_on: {loss_on!r} is not one of {', '.join(LOSS_ON)}")
    return 2 if loss_on == "text" else n_prompt


def first_scored_by_task(n_prompt, task, loss_on):
    """`first_scored` where each task may take its own loss_on (data.tasks.<task>.loss_on): `loss_on` is one value
    for every task or a sequence of one per task, indexed by `task` (an int or an int array, as `n_prompt`)."""
    if isinstance(loss_on, str):
        return first_scored(n_prompt, loss_on)
    kinds = set(loss_on)
    if len(kinds) == 1:
        return first_scored(n_prompt, kinds.pop())
    for v in kinds:
        first_scored(0, v)  # an unknown value raises
    text = np.array([v == "text" for v in loss_on], bool)[task]
    return np.where(text, 2, n_prompt)


def task_token(task: str) -> str:
    return f"<{task}>"


@dataclass(frozen=True)
class Vocab:
    """Ids of the special tokens and the task tokens of a trained tokenizer."""

    pad: int
    bos: int
    eos: int
    sep: int
    tasks: dict[str, int]

    @classmethod
    def of(cls, tokenizer, task_names: Sequence[str]) -> "Vocab":
        tid = tokenizer.token_to_id
        return cls(pad=tid(PAD), bos=tid(BOS), eos=tid(EOS), sep=tid(SEP), tasks={t: tid(task_token(t)) for t in task_names})


def prompt_ids(vocab: Vocab, task: str, input_ids: Sequence[int]) -> list[int]:
    return [vocab.bos, vocab.tasks[task], *input_ids, vocab.sep]


def example_ids(vocab: Vocab, task: str, input_ids: Sequence[int], target_ids: Sequence[int],
                max_len: int) -> tuple[list[int], int]:
    """(ids, n_prompt) for one training example; the input is cut from the left if it is too long."""
    target = list(target_ids)[: max_len - 4] + [vocab.eos]
    room = max_len - len(target) - 3
    inp = list(input_ids)[-room:] if room > 0 else []
    prompt = prompt_ids(vocab, task, inp)
    return prompt + target, len(prompt)


@dataclass
class StreamState:
    """Position in the training stream: examples taken so far, overall and per task."""

    index: int = 0
    per_task: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"index": self.index, "per_task": dict(self.per_task)}

    @classmethod
    def from_dict(cls, d: dict) -> "StreamState":
        return cls(index=int(d["index"]), per_task={k: int(v) for k, v in d["per_task"].items()})


class TrainStream:
    """Deterministic mixture of task streams.

    `sources[task](j)` returns the j-th training example of a task; the task of the k-th example
    is drawn with the task weights from an RNG seeded by (seed, k).
    """

    def __init__(self, sources: dict[str, Callable[[int], dict]], weights: dict[str, float], seed: int):
        self.sources, self.seed = sources, seed
        self.names = list(sources)
        w = np.array([weights[n] for n in self.names], dtype=float)
        self.cum = np.cumsum(w / w.sum())

    def task_at(self, k: int) -> str:
        u = random.Random(f"mix:{self.seed}:{k}").random()
        return self.names[min(int(np.searchsorted(self.cum, u, side="right")), len(self.names) - 1)]

    def take(self, state: StreamState, n: int) -> list[tuple[str, dict]]:
        """The next n (task, example) pairs; advances `state`."""
        out = []
        for _ in range(n):
            task = self.task_at(state.index)
            j = state.per_task.get(task, 0)
            out.append((task, self.sources[task](j)))
            state.per_task[task] = j + 1
            state.index += 1
        return out


class Packer:
    """Packs encoded examples into rows of `seq_len` tokens with loss masks.

    Rows never split an example; the state between rows is the stream position of the example
    that opens the next row, so `state_dict()` taken between batches resumes exactly.
    """

    def __init__(self, stream: TrainStream, encode: Callable[[list[str]], list[list[int]]], vocab: Vocab,
                 seq_len: int, state: StreamState | None = None, chunk: int = 256,
                 loss_on: str | Mapping[str, str] = "target"):
        self.stream, self.encode, self.vocab, self.seq_len, self.chunk = stream, encode, vocab, seq_len, chunk
        self.loss_on = loss_on  # one value for every task, or one per task name
        self.state = state or StreamState()  # position of the first example of the next row
        self._end = StreamState.from_dict(self.state.to_dict())  # position after the buffer
        self._buf: list[tuple[list[int], int, StreamState]] = []  # (ids, first scored, state before it)

    def _fill(self) -> None:
        st = StreamState.from_dict(self._end.to_dict())
        before, pairs = [], []
        for _ in range(self.chunk):
            before.append(StreamState.from_dict(st.to_dict()))
            pairs += self.stream.take(st, 1)
        self._end = st
        enc = self.encode([ex["input"] for _, ex in pairs] + [ex["target"] for _, ex in pairs])
        n = len(pairs)
        for i, (task, _) in enumerate(pairs):
            ids, n_prompt = example_ids(self.vocab, task, enc[i], enc[n + i], self.seq_len)
            lo = self.loss_on if isinstance(self.loss_on, str) else self.loss_on[task]
            self._buf.append((ids, first_scored(n_prompt, lo), before[i]))

    def _head(self):
        if not self._buf:
            self._fill()
        return self._buf[0]

    def next_row(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(input_ids, labels, position_ids, n_real_tokens) of the next row.

        labels[p] is ids[p] on the tokens that carry the loss (`first_scored`); position ids restart at 0 with every example, which
        transformers reads as a packed row and turns into a block-diagonal causal mask: an example
        never attends to the one before it, exactly as at evaluation.
        """
        ids = np.full(self.seq_len, self.vocab.pad, dtype=np.int64)
        labels = np.full(self.seq_len, IGNORE, dtype=np.int64)
        positions = np.zeros(self.seq_len, dtype=np.int64)
        pos = 0
        while True:
            ex_ids, first, _ = self._head()
            if pos + len(ex_ids) > self.seq_len:
                break
            ids[pos:pos + len(ex_ids)] = ex_ids
            labels[pos + first:pos + len(ex_ids)] = ex_ids[first:]
            positions[pos:pos + len(ex_ids)] = np.arange(len(ex_ids))
            pos += len(ex_ids)
            self._buf.pop(0)
        positions[pos:] = np.arange(self.seq_len - pos)  # padding forms its own block
        self.state = StreamState.from_dict(self._head()[2].to_dict())
        return ids, labels, positions, pos

    def next_batch(self, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(input_ids, labels, position_ids, n_real_tokens) of `batch_size` rows."""
        rows = [self.next_row() for _ in range(batch_size)]
        return tuple(np.stack([r[i] for r in rows]) for i in range(3)) + (sum(r[3] for r in rows),)

    def state_dict(self) -> dict:
        return self.state.to_dict()

    def load_state_dict(self, d: dict) -> None:
        self.state = StreamState.from_dict(d)
        self._end = StreamState.from_dict(d)
        self._buf = []

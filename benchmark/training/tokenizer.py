"""A byte-level BPE tokenizer trained on the training text with the `tokenizers` library."""
from __future__ import annotations

from typing import Iterable, Sequence

from benchmark.training.data import SPECIAL, task_token


def train_tokenizer(texts: Iterable[str], vocab_size: int, task_names: Sequence[str]):
    """Byte-level BPE (as GPT-2): every string is encodable, decoding restores it exactly.

    Special tokens first, so their ids are fixed: <pad>=0, <s>=1, </s>=2, <sep>=3, then one
    token per task.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = SPECIAL + [task_token(t) for t in task_names]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def load_tokenizer(path: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


def encoder(tok):
    """texts -> lists of ids, without special tokens."""
    def encode(texts: list[str]) -> list[list[int]]:
        return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    return encode

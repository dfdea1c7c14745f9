"""Packing: whole examples per row, loss only on targets, positions restart, and exact resumption."""
from __future__ import annotations

import numpy as np
import pytest

from benchmark.training import corpus
from benchmark.config import params
from benchmark.training.data import IGNORE, Packer, StreamState, TrainStream
from benchmark.training.tokenizer import encoder


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    import yaml

    from benchmark.stages.prepare import prepare
    from tests_paths import TINY

    p = params.parse(yaml.safe_load(TINY.read_text()))
    out = tmp_path_factory.mktemp("data")
    prepare(p, out)
    return p, corpus.load(out)


def _packer(p, c, state=None):
    sources = corpus.training_sources(p.data.tasks, p.data.seed, 0, c.root)
    stream = TrainStream(sources, {t.name: t.weight for t in p.data.tasks}, seed=11)
    return Packer(stream, encoder(c.tokenizer), c.vocab, p.model.seq_len, state=state)


def test_rows_hold_whole_examples_with_target_only_labels(prepared):
    p, c = prepared
    pk = _packer(p, c)
    for _ in range(20):
        ids, labels, pos, n = pk.next_row()
        assert n <= p.model.seq_len and (ids[n:] == c.vocab.pad).all()
        starts = np.flatnonzero(pos[:n] == 0)
        assert (ids[starts] == c.vocab.bos).all()  # every example opens with <s> at position 0
        for a, b in zip(starts, list(starts[1:]) + [n]):
            ex, lab = ids[a:b], labels[a:b]
            sep = int(np.flatnonzero(ex == c.vocab.sep)[0])
            assert (lab[:sep + 1] == IGNORE).all()  # prompt carries no loss
            assert (lab[sep + 1:] == ex[sep + 1:]).all() and ex[-1] == c.vocab.eos
            assert (pos[a:b] == np.arange(b - a)).all()
        assert (labels[n:] == IGNORE).all()


def test_task_mix_follows_the_weights(prepared):
    p, c = prepared
    pk = _packer(p, c)
    pairs = pk.stream.take(StreamState(), 3000)
    share = sum(t == "classification" for t, _ in pairs) / len(pairs)
    assert abs(share - 0.5) < 0.04  # weights 1 : 1 : 2 in the tiny config


def test_resuming_from_a_state_gives_the_same_rows(prepared):
    p, c = prepared
    a = _packer(p, c)
    first = [a.next_batch(3) for _ in range(4)]
    state = a.state_dict()
    rest = [a.next_batch(3) for _ in range(4)]
    b = _packer(p, c)
    b.load_state_dict(state)
    again = [b.next_batch(3) for _ in range(4)]
    for x, y in zip(rest, again):
        for u, v in zip(x[:3], y[:3]):
            assert (u == v).all()
        assert x[3] == y[3]
    assert not all((x[0] == y[0]).all() for x, y in zip(first, rest))


def test_needed_positions_are_each_examples_prefix_through_its_last_target_predicting_position():
    """Hand-made packed rows, the rule checked position by position: j is needed iff some i >= j of
    the same example predicts a target (labels[i + 1] is set)."""
    import torch

    from benchmark.training.trainer import needed_positions

    pos = torch.tensor([[0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 0, 0],
                        [0, 1, 2, 0, 1, 2, 3, 4, 0, 1, 2, 3]])
    labels = torch.full_like(pos, IGNORE)
    labels[0, [2, 3]] = 7  # example 1: targets at 2, 3 (predicted by 1, 2); 3..5 are dead
    labels[0, 9] = 7  # example 2: target at 9, predicted by 8; 9 is dead; 10, 11 are padding (own blocks)
    labels[1, 6] = 7  # row 1: example 1 has no target; example 2 has one mid-way; example 3 starts at 8
    labels[1, 8] = 7  # a label on an example's first position is predicted across the boundary, by 7
    expect = torch.tensor([[1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0],
                           [0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    assert (needed_positions(labels, pos) == expect).all()


def test_unpadded_decoder_and_target_only_head_give_the_loss_and_gradients_of_the_padded_model(prepared):
    """TargetLoss runs the decoder on the positions some target depends on, its last layer and the head
    on target-predicting positions only; the loss and every gradient match the transformers model on
    the padded rows with the full head."""
    import torch
    from transformers import LlamaForCausalLM

    from benchmark.training import model as model_mod
    from benchmark.training.trainer import TargetLoss, loss_sum, needed_positions

    p, c = prepared
    ids, labels, pos, _ = (torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in _packer(p, c).next_batch(4))
    assert 0 < int((labels[:, 1:] != IGNORE).sum()) < labels[:, 1:].numel()  # some positions are skipped
    assert (ids == c.vocab.pad).any()  # and some are padding, which the decoder skips
    # every example ends with an EOS it learns to emit; that token predicts nothing, so it is skipped too
    assert (needed_positions(labels, pos) == ((ids != c.vocab.pad) & (ids != c.vocab.eos))).all()
    grads = []
    for full in (True, False):
        torch.manual_seed(0)
        cfg = model_mod.llama_config(d_model=32, n_layers=2, n_heads=2, vocab_size=c.tokenizer.get_vocab_size(),
                                     seq_len=p.model.seq_len)
        cfg._attn_implementation = "sdpa"
        net = LlamaForCausalLM(cfg).double()
        if full:
            total = loss_sum(net(input_ids=ids, position_ids=pos, use_cache=False).logits, labels)
        else:
            total = TargetLoss(net)(ids, pos, labels)
        total.backward()
        grads.append((float(total.detach()), {k: v.grad.clone() for k, v in net.named_parameters()}))
    (la, ga), (lb, gb) = grads
    assert abs(la - lb) <= 1e-9 * abs(la)
    assert ga.keys() == gb.keys() and all(torch.allclose(ga[k], gb[k], rtol=1e-7, atol=1e-12) for k in ga)


def test_a_task_can_size_its_own_test_split():
    """data.tasks.<name>.test_examples overrides data.test_examples for that task alone (BLEU needs more
    examples than accuracy for the same standard error)."""
    import yaml

    from benchmark.stages.prepare import _held_out
    from tests_paths import TINY

    raw = yaml.safe_load(TINY.read_text())
    raw["data"]["tasks"]["translation"]["test_examples"] = 30
    p = params.parse(raw)
    sizes = {t.name: tuple(len(s) for s in _held_out(t, p)[:2]) for t in p.data.tasks}
    n_val, n_test = p.data.validation_examples, p.data.test_examples
    assert n_test != 30
    assert sizes == {t.name: (n_val, 30 if t.name == "translation" else n_test) for t in p.data.tasks}

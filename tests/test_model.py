"""Parameter counts by group and FLOP formulas, checked by hand and against a built model."""
from __future__ import annotations

import pytest

from benchmark.training import model


@pytest.mark.parametrize("d_model, n_layers, n_heads", [(16, 1, 1), (48, 2, 2), (128, 4, 4)])
def test_closed_form_counts_match_the_built_model(d_model, n_layers, n_heads):
    from transformers import LlamaForCausalLM

    cfg = model.llama_config(d_model=d_model, n_layers=n_layers, n_heads=n_heads, vocab_size=300, seq_len=64)
    built = model.count_params_of(LlamaForCausalLM(cfg))
    closed = model.count_params(d_model=d_model, n_layers=n_layers, vocab_size=300)
    assert built == closed
    assert built.embedding + built.nonembedding == built.total
    assert built.embedding == 300 * d_model


def test_counts_by_hand():
    # d=16: f = 48; per layer 4*256 + 3*16*48 + 2*16 = 1024 + 2304 + 32 = 3360; + final norm 16
    c = model.count_params(d_model=16, n_layers=1, vocab_size=100)
    assert model.intermediate_size(16) == 48
    assert (c.embedding, c.nonembedding, c.total) == (1600, 3376, 4976)


def test_flops():
    assert model.flops_6nd(1000, 10) == 60000
    # attention adds 12 * layers * T * d per token
    assert model.flops_with_attention(n_params=1000, tokens=10, n_layers=2, d_model=8, seq_len=4) == 60000 + 12 * 2 * 4 * 8 * 10

"""Which model is size S: a Llama-architecture config, parameter counts by group, and FLOPs.

How S is trained (batch, learning rate, duration) lives in params and train, not here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


def intermediate_size(d_model: int) -> int:
    """SwiGLU width: 8/3 * d_model (Shazeer 2020; Touvron et al. 2023), rounded up to a multiple of 16."""
    return 16 * math.ceil(8 * d_model / 3 / 16)


def llama_config(*, d_model: int, n_layers: int, n_heads: int, vocab_size: int, seq_len: int,
                 pad_token_id: int = 0, bos_token_id: int = 1, eos_token_id: int = 2):
    """A transformers LlamaConfig for a model trained from scratch (no pretrained weights)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=d_model,
        intermediate_size=intermediate_size(d_model),
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_heads,
        max_position_embeddings=seq_len,
        tie_word_embeddings=True,  # input embedding and output head share weights: counted once
        initializer_range=0.02,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        attention_dropout=0.0,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        use_cache=True,
    )


@dataclass(frozen=True)
class ParamCounts:
    embedding: int  # token embedding (tied with the output head)
    nonembedding: int  # attention, MLP and norms
    total: int  # embedding + nonembedding

    def __post_init__(self):
        assert self.embedding + self.nonembedding == self.total


def count_params(*, d_model: int, n_layers: int, vocab_size: int, **_) -> ParamCounts:
    """Closed-form parameter counts of `llama_config`, without building the model.

    Per block: q, k, v, o projections (4 d^2, no biases), SwiGLU gate/up/down (3 d f), two RMSNorm
    weights (2 d); plus the final RMSNorm (d). The non-embedding count is what Kaplan et al. 2020
    call N; Hoffmann et al. 2022 include the embedding, which with a tied head is counted once here.
    """
    f = intermediate_size(d_model)
    nonemb = n_layers * (4 * d_model * d_model + 3 * d_model * f + 2 * d_model) + d_model
    emb = vocab_size * d_model
    return ParamCounts(embedding=emb, nonembedding=nonemb, total=emb + nonemb)


def count_params_of(model) -> ParamCounts:
    """Parameter counts of a built model, grouped by whether the tensor is the token embedding."""
    emb_weight = model.get_input_embeddings().weight
    total = sum(p.numel() for p in model.parameters())  # parameters() yields a tied tensor once
    emb = emb_weight.numel()
    return ParamCounts(embedding=emb, nonembedding=total - emb, total=total)


def flops_6nd(n_params: int, tokens: int) -> float:
    """Training compute C = 6 N D (Kaplan et al. 2020, Sec. 2.1; Hoffmann et al. 2022, Sec. 3)."""
    return 6.0 * n_params * tokens


def flops_with_attention(*, n_params: int, tokens: int, n_layers: int, d_model: int, seq_len: int) -> float:
    """6 N D plus attention: per token and layer, 2*T*d FLOPs for QK^T and 2*T*d for the weighted
    sum of values in the forward pass, x3 for forward + backward (Hoffmann et al. 2022, App. F,
    which counts the full context; no causal halving)."""
    return 6.0 * n_params * tokens + 12.0 * n_layers * seq_len * d_model * tokens

"""The pieces of the training loop that take values: schedule, optimizer, loss, divergence, peak FLOP/s."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from benchmark.training.data import IGNORE


def lr_at(fraction: float, *, peak: float, warmup_fraction: float, min_lr_ratio: float) -> float:
    """Linear warmup, then cosine decay to min_lr_ratio * peak at exactly the end of the run's token
    budget: the schedule length matches the run (Hoffmann et al. 2022, Sec. 3 and Fig. A1, show that
    a cosine cycle longer than the run biases the loss and the fitted law)."""
    fraction = min(max(fraction, 0.0), 1.0)
    if warmup_fraction > 0 and fraction < warmup_fraction:
        return peak * fraction / warmup_fraction
    progress = (fraction - warmup_fraction) / max(1e-12, 1.0 - warmup_fraction)
    return peak * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def build_optimizer(model, *, lr: float, weight_decay: float, betas: tuple[float, float]):
    """AdamW; weight decay on matrices only (not on norms); PyTorch's fused kernel (one pass over every
    tensor, on the CPU as on CUDA, as transformers.Trainer's default `adamw_torch_fused`)."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=1e-8, fused=True)


def loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy (nats) over target positions; labels are aligned with inputs."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE, reduction="sum")


def packed_segments(position_ids: torch.Tensor) -> torch.Tensor:
    """[B, T] example number of each position within its packed row (0, 1, ...).

    A new example starts wherever the position id does not grow by one, the rule transformers uses
    for packed rows (`find_packed_sequence_indices`).
    """
    first = position_ids[:, :1] - 1
    return (torch.diff(position_ids, prepend=first, dim=-1) != 1).cumsum(-1)


def packed_causal_mask(position_ids: torch.Tensor) -> torch.Tensor:
    """Block-diagonal causal mask (True = may attend) of packed rows, [B, 1, T, T]: the mask
    transformers' LlamaModel builds for packed rows."""
    segment = packed_segments(position_ids)
    same = segment[:, :, None] == segment[:, None, :]
    t = position_ids.size(1)
    causal = torch.ones(t, t, dtype=torch.bool, device=position_ids.device).tril()
    return (same & causal)[:, None]


def predicts_target(labels: torch.Tensor) -> torch.Tensor:
    """[B, T] bool: the positions whose next token is a target (where the loss reads the logits)."""
    out = torch.zeros_like(labels, dtype=torch.bool)
    out[:, :-1] = labels[:, 1:] != IGNORE
    return out


def needed_positions(labels: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
    """[B, T] bool: the positions the loss depends on, in a causal LM over packed rows.

    Position j of an example matters only if some position i >= j of the same example predicts a
    target: under the block-diagonal causal mask nothing else ever reads j's hidden states. So each
    example's tail after its last target-predicting position is dead: the padding after a row's
    last example, and each example's final token (the EOS it is trained to emit predicts nothing).
    Within an example the needed positions are a prefix.
    """
    b, t = labels.shape
    uses = predicts_target(labels)
    segment = packed_segments(position_ids) + torch.arange(b, device=labels.device)[:, None] * t  # unique ids
    where = torch.arange(t, device=labels.device).expand(b, t)
    last = torch.full((b * t,), -1, dtype=where.dtype, device=labels.device)
    last = last.scatter_reduce(0, segment.reshape(-1), torch.where(uses, where, -1).reshape(-1), "amax")
    return where <= last[segment]


def unpadded_decoder(decoder, input_ids: torch.Tensor, position_ids: torch.Tensor, idx: torch.Tensor,
                     out: torch.Tensor | None = None) -> torch.Tensor:
    """Final hidden states of the tokens at flat positions `idx[out]` of the [B, T] rows (all of
    `idx` when `out` is None), as [len, d_model], computed without touching the other positions
    except inside attention.

    The same arithmetic as transformers' LlamaModel.forward on packed rows, with its own modules and
    weights: embeddings, norms, projections and MLPs run on the kept tokens only (padding-free
    training); attention scatters q, k, v back into the padded rows and uses the packed
    block-diagonal causal mask (Krell et al. 2021, "Efficient sequence packing without
    cross-contamination"), so a kept token sees exactly what it sees in the padded model. The caller
    keeps, with each token, every earlier token of its example (`needed_positions`); the positions
    left out are then never attended to, so their zeros change nothing.
    In the last layer only the keys and values of every kept token are read by anything; the
    query, attention output, o_proj and MLP run on the `out` tokens alone (dead-code elimination:
    the other tokens' last-layer outputs reach no loss term).
    """
    from transformers.models.llama.modeling_llama import rotate_half

    def rope(z, cos, sin):  # apply_rotary_pos_emb's arithmetic on one tensor
        return z * cos.unsqueeze(1) + rotate_half(z) * sin.unsqueeze(1)

    b, t = input_ids.shape
    x = decoder.embed_tokens(input_ids.reshape(-1).index_select(0, idx))
    cos, sin = decoder.rotary_emb(x, position_ids.reshape(-1).index_select(0, idx))
    mask = packed_causal_mask(position_ids)
    n = idx.numel()

    def rows(z: torch.Tensor, at: torch.Tensor) -> torch.Tensor:  # [len(at), h, hd] -> [b, h, t, hd], zeros elsewhere
        full = z.new_zeros(b * t, *z.shape[1:]).index_copy(0, at, z)
        return full.view(b, t, *z.shape[1:]).transpose(1, 2)

    last = len(decoder.layers) - 1
    for i, layer in enumerate(decoder.layers):
        attn = layer.self_attn
        h = layer.input_layernorm(x)
        k = attn.k_proj(h).view(n, -1, attn.head_dim)
        v = attn.v_proj(h).view(n, -1, attn.head_dim)
        at, q_cos, q_sin = idx, cos, sin
        if i == last and out is not None:  # queries of the `out` tokens only
            at, q_cos, q_sin = idx.index_select(0, out), cos.index_select(0, out), sin.index_select(0, out)
            x, h = x.index_select(0, out), h.index_select(0, out)
        q = attn.q_proj(h).view(h.size(0), -1, attn.head_dim)
        q, k = rope(q, q_cos, q_sin), rope(k, cos, sin)
        o = F.scaled_dot_product_attention(rows(q, at), rows(k, idx), rows(v, idx), attn_mask=mask, scale=attn.scaling,
                                           enable_gqa=attn.num_key_value_groups > 1)
        o = o.transpose(1, 2).reshape(b * t, -1).index_select(0, at)
        x = x + attn.o_proj(o)
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    return decoder.norm(x)


class TargetLoss(torch.nn.Module):
    """A causal LM that returns the summed next-token cross-entropy over target positions only.

    It computes only what the loss depends on, so neither the loss nor the gradients change
    (tests/test_data.py checks both in float64 against the transformers model on the padded rows):
    - the decoder runs only on the positions some target depends on (`needed_positions`,
      `unpadded_decoder`): not on the padding after a row's last example (about a fifth of a
      packed row of the default tasks) nor on each example's final token;
    - its last layer, the final norm, the LM head and the softmax run only on positions whose next
      token is a target (about a quarter of a row); the other tokens give that layer keys and
      values and nothing else.
    DDP wraps this module. With `compile`, the token-wise work goes through torch.compile with
    dynamic shapes (the token and target counts change with every batch).
    """

    def __init__(self, lm, compile: bool = False):
        super().__init__()
        self.lm = lm
        run = torch.compile(unpadded_decoder, dynamic=True) if compile else unpadded_decoder
        # kept out of the module tree, so that parameter names and the checkpoint stay those of `lm`
        self.__dict__["decoder"] = lambda ids, pos, idx, out: run(lm.model, ids, pos, idx, out)

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        keep = needed_positions(labels, position_ids)
        uses = predicts_target(labels)  # a subset of keep
        # outside the compiled part: their lengths depend on the data
        idx = keep.reshape(-1).nonzero().squeeze(1)
        out = uses.reshape(-1)[idx].nonzero().squeeze(1)  # rows of idx (kept tokens, row-major) that predict a target
        hidden = self.decoder(input_ids, position_ids, idx, out)  # [n_targets, d], in row-major order
        logits = self.lm.lm_head(hidden)
        return F.cross_entropy(logits.float(), labels[:, 1:][labels[:, 1:] != IGNORE], reduction="sum")


def n_targets(labels) -> int:
    return int((labels[:, 1:] != IGNORE).sum())


def autocast_for(device: str):
    """bf16 autocast on CUDA; plain fp32 on the CPU (bit-reproducible)."""
    if device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def train_step(model, opt, batch, *, lr: float, grad_clip: float, device: str, rank: int = 0, world: int = 1,
               clip_params=None) -> tuple[float, float]:
    """One optimizer step on a global batch (numpy input_ids, labels, position_ids, n_real_tokens).

    `model` is a `TargetLoss` (or DDP around one): called on (input_ids, position_ids, labels) it
    returns the summed loss.

    Each of `world` processes takes rows rank, rank + world, ...; the loss is the global mean over
    target tokens, so any process count gives the same update (DDP averages the gradients).
    Returns (loss, gradient norm before clipping).
    """
    import numpy as np

    ids, labels, positions, _ = batch
    for g in opt.param_groups:
        g["lr"] = lr
    n_t = max(1, n_targets(labels))
    x, y, pos = (torch.from_numpy(np.ascontiguousarray(a[rank::world])).to(device, non_blocking=True)
                 for a in (ids, labels, positions))
    with autocast_for(device):
        total = model(x, pos, y)
    (total * (world / n_t)).backward()
    params = clip_params if clip_params is not None else [p for p in model.parameters()]
    gnorm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf"))
    opt.step()
    opt.zero_grad(set_to_none=True)
    total = total.detach()
    if world > 1:
        torch.distributed.all_reduce(total)
    return float(total) / n_t, float(gnorm)


@dataclass
class DivergenceMonitor:
    """Flags NaN/inf, or an exponential moving average of the loss above `factor` x its minimum."""

    factor: float
    decay: float = 0.9
    ema: float | None = None
    best: float | None = None
    steps: int = 0

    def update(self, loss: float) -> str | None:
        """Returns a reason string if the run diverged at this step, else None."""
        if not math.isfinite(loss):
            return f"loss is {loss}"
        self.ema = loss if self.ema is None else self.decay * self.ema + (1 - self.decay) * loss
        self.steps += 1
        self.best = self.ema if self.best is None else min(self.best, self.ema)
        if self.steps > 10 and self.ema > self.factor * self.best:
            return f"smoothed loss {self.ema:.3g} > {self.factor:g} x its minimum {self.best:.3g}"
        return None

    def state_dict(self) -> dict:
        return {"ema": self.ema, "best": self.best, "steps": self.steps}

    def load_state_dict(self, d: dict) -> None:
        self.ema, self.best, self.steps = d["ema"], d["best"], d["steps"]


# Dense bf16 tensor-core peaks from the vendors' data sheets (FLOP/s, without sparsity).
GPU_BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12,
                 "L4": 121e12, "RTX 4090": 165e12, "A6000": 155e12, "V100": 125e12, "T4": 65e12}


def gpu_peak_flops(name: str) -> float | None:
    for key, peak in GPU_BF16_PEAK.items():
        if key.lower() in name.lower():
            return peak
    return None


def measure_matmul_peak(seconds: float = 0.6, n: int = 1024, dtype=torch.float32) -> float:
    """FLOP/s of a square matmul on the CPU, measured now: the best of several short windows after a
    warm-up (the CPU has no data-sheet peak we trust, and its clock ramps up under load)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    flops = 2 * n**3
    end = time.perf_counter() + max(0.5, seconds / 3)
    while time.perf_counter() < end:  # warm-up: thread pool start and clock ramp
        a @ b
    best = 0.0
    for _ in range(5):
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 7.5:
            a @ b
            reps += 1
        best = max(best, flops * reps / (time.perf_counter() - t0))
    return best
